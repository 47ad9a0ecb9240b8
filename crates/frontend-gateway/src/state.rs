//! What every handler shares (one per server, behind `web::Data`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::Key;
use auth_contract::Signer;
use sqlx::PgPool;

use crate::config::PublicOrigin;
use crate::csrf::Csrf;
use crate::forwarded::TrustedProxies;
use crate::rewrite::Rules;
use crate::throttle::SignInThrottle;

/// Shared state.
#[derive(Clone)]
pub struct AppState {
    /// Users and sessions.
    pub pool: PgPool,
    /// Where absolute URLs point, and what `Origin` unsafe requests must carry.
    pub origin: PublicOrigin,
    /// CSRF tokens for the next-auth forms.
    pub csrf: Csrf,
    /// The rewrite table.
    pub rules: Rules,
    /// Mints the tokens injected upstream.
    pub signer: Signer,
    /// Sliding idle timeout of a session.
    pub session_idle: Duration,
    /// Absolute lifetime of a session.
    pub session_absolute: Duration,
    /// The session cookie's name (`session` or `__Host-session`).
    pub session_cookie: &'static str,
    /// The key the session middleware encrypts its cookie with (to find a streaming request's
    /// session row again).
    pub session_cookie_key: Key,
    /// Whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Sign-in attempts, per account and per IP (in memory, this instance only).
    pub throttle: Arc<SignInThrottle>,
    /// The largest request body forwarded upstream.
    pub proxy_max_body_bytes: u64,
    /// Sending a request upstream and receiving its response head.
    pub proxy_timeout: Duration,
    /// Silence allowed in a streamed response body.
    pub proxy_stream_idle_timeout: Duration,
    /// How often a streamed response re-checks its session.
    pub proxy_stream_session_check: Duration,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("origin", &self.origin)
            .field("rules", &self.rules)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}
