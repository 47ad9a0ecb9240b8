//! Where every sign-in method ends: one call that starts the session.

use time::OffsetDateTime;
use uuid::Uuid;

use super::state::Identity;
use super::users;
use crate::error::Error;
use crate::session::{SessionUser, UserSession};

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

/// Starts a fresh session for `who` (a new session key: nothing planted before survives it)
/// and records the sign-in.
#[tracing::instrument(skip_all, fields(user_id = %who.id))]
pub async fn start_session(
    identity: &Identity,
    session: &UserSession,
    who: Verified,
) -> Result<SessionUser, Error> {
    users::touch_sign_in(&identity.users, who.id).await?;
    let user = SessionUser {
        id: who.id,
        email: who.email,
        name: who.name,
        signed_in_at: OffsetDateTime::now_utc().unix_timestamp(),
    };
    session.sign_in(&user)?;
    tracing::info!("signed in");
    Ok(user)
}
