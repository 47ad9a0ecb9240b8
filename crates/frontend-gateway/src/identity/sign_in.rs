//! Where every sign-in method ends: one call that starts the session.

use time::OffsetDateTime;
use uuid::Uuid;

use super::state::Identity;
use super::users;
use crate::error::Error;
use crate::session::{SessionUser, SignInOrigin, UserSession};

/// Who a sign-in method has established the client to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `users.id`.
    pub id: Uuid,
    /// Their email.
    pub email: String,
    /// Their display name.
    pub name: String,
}

impl From<users::Account> for Verified {
    fn from(account: users::Account) -> Self {
        Self {
            id: account.id,
            email: account.email,
            name: account.name,
        }
    }
}

/// Starts a fresh session for `who` (a new session key: nothing planted before survives it)
/// and records the sign-in; `origin` says where a provider sign-in happened.
#[tracing::instrument(skip_all, fields(user_id = %who.id))]
pub async fn start_session(
    identity: &Identity,
    session: &UserSession,
    who: Verified,
    origin: Option<SignInOrigin>,
) -> Result<SessionUser, Error> {
    users::touch_sign_in(&identity.users, who.id).await?;
    let user = SessionUser {
        id: who.id,
        email: who.email,
        name: who.name,
        signed_in_at: OffsetDateTime::now_utc().unix_timestamp(),
    };
    session.sign_in_from(&user, origin.as_ref())?;
    tracing::info!(
        provider = origin.as_ref().map(|o| o.provider.as_str()),
        "signed in"
    );
    Ok(user)
}
