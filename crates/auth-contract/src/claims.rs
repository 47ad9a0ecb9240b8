use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who mints tokens, unless told otherwise.
pub const DEFAULT_ISSUER: &str = "frontend-gateway";
/// Who accepts them, unless told otherwise.
pub const DEFAULT_AUDIENCE: &str = "backend-api";
/// How long a minted token lives: long enough for one proxied request, short enough that a
/// leaked token is worth little.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The claims of a gateway token. Times are seconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's email, for logs and convenience; the backend trusts `sub`.
    pub email: String,
    /// Issued at.
    pub iat: u64,
    /// Expires at.
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// A unique token id.
    pub jti: Uuid,
}

impl Claims {
    /// Claims for `user` issued now, living [`DEFAULT_TTL`], with the default issuer and audience.
    pub fn new(user: Uuid, email: impl Into<String>) -> Self {
        Self::with_lifetime(user, email, DEFAULT_TTL)
    }

    /// Claims for `user` issued now and living `lifetime`.
    pub fn with_lifetime(user: Uuid, email: impl Into<String>, lifetime: Duration) -> Self {
        Self::issued_at(user, email, unix_now(), lifetime)
    }

    /// Claims for `user` issued at `iat` (seconds since the epoch) and living `lifetime`.
    pub fn issued_at(user: Uuid, email: impl Into<String>, iat: u64, lifetime: Duration) -> Self {
        Self {
            sub: user,
            email: email.into(),
            iat,
            exp: iat.saturating_add(lifetime.as_secs()),
            iss: DEFAULT_ISSUER.to_owned(),
            aud: DEFAULT_AUDIENCE.to_owned(),
            jti: Uuid::new_v4(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
