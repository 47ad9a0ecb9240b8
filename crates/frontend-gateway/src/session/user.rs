//! The typed session: who is signed in, behind one small wrapper around actix-session's
//! [`Session`]. Handlers see a [`UserSession`]; what it keeps is a [`SessionUser`].

use std::collections::HashMap;
use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The state key holding the signed-in user.
const USER_KEY: &str = "user";
/// The state key holding where the sign-in happened, for provider sign-ins.
const ORIGIN_KEY: &str = "origin";
/// The state key holding the marker of an explicit provider link in flight.
const LINK_KEY: &str = "link";
/// The state key asking the store for a new session key on this write (see
/// [`UserSession::renew`]); the store removes it and never keeps it.
pub(super) const ROTATE_KEY: &str = "rotate";

/// The signed-in user, as kept in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    /// `users.id`.
    pub id: Uuid,
    /// The email at sign-in.
    pub email: String,
    /// The name at sign-in.
    pub name: String,
    /// When they signed in (Unix seconds): the absolute lifetime counts from here.
    pub signed_in_at: i64,
}

impl SessionUser {
    /// The user in a raw session state (the store uses it to fill `sessions.user_id`).
    pub fn from_state(state: &HashMap<String, String>) -> Option<Self> {
        serde_json::from_str(state.get(USER_KEY)?).ok()
    }
}

/// Where a provider sign-in happened: kept beside the [`SessionUser`] (not inside it, so the
/// proxy's per-request read of the user stays as small as it was), copied by the store into
/// `sessions.provider*` so a back-channel logout can find the session, and read at sign-out
/// for RP-initiated logout.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOrigin {
    /// The provider's id.
    pub provider: String,
    /// Who the provider says the user is (`sub`).
    pub subject: String,
    /// The provider's session id (OIDC `sid`), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The ID token, kept only when the provider's sign-out is to be followed
    /// (`id_token_hint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for SignInOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInOrigin")
            .field("provider", &self.provider)
            .field("subject", &self.subject)
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

impl SignInOrigin {
    /// The origin in a raw session state (the store uses it to fill `sessions.provider*`).
    pub fn from_state(state: &HashMap<String, String>) -> Option<Self> {
        serde_json::from_str(state.get(ORIGIN_KEY)?).ok()
    }
}

/// The current request's session, typed. Also an extractor.
pub struct UserSession(Session);

impl std::fmt::Debug for UserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSession").finish_non_exhaustive()
    }
}

impl UserSession {
    /// The signed-in user, if any (a state that does not parse counts as none).
    pub fn user(&self) -> Option<SessionUser> {
        self.0.get::<SessionUser>(USER_KEY).ok().flatten()
    }

    /// Signs `user` in under a NEW session key (the old session, if any, is deleted): a key
    /// planted before sign-in is worthless after it.
    pub fn sign_in(&self, user: &SessionUser) -> Result<(), actix_session::SessionInsertError> {
        self.sign_in_from(user, None)
    }

    /// [`UserSession::sign_in`], remembering where a provider sign-in happened. Nothing of the
    /// previous session's state survives (not its origin, not a link in flight).
    pub fn sign_in_from(
        &self,
        user: &SessionUser,
        origin: Option<&SignInOrigin>,
    ) -> Result<(), actix_session::SessionInsertError> {
        self.0.renew();
        self.0.remove(ORIGIN_KEY);
        self.0.remove(LINK_KEY);
        self.0.insert(USER_KEY, user)?;
        if let Some(origin) = origin {
            self.0.insert(ORIGIN_KEY, origin)?;
        }
        Ok(())
    }

    /// Where this session's sign-in happened, for a provider sign-in.
    pub fn origin(&self) -> Option<SignInOrigin> {
        self.0.get::<SignInOrigin>(ORIGIN_KEY).ok().flatten()
    }

    /// Marks this session as the one an explicit provider link was started from.
    pub fn set_link_marker(&self, marker: &str) -> Result<(), actix_session::SessionInsertError> {
        self.0.insert(LINK_KEY, marker)
    }

    /// The marker [`UserSession::set_link_marker`] left, if any.
    pub fn link_marker(&self) -> Option<String> {
        self.0.get::<String>(LINK_KEY).ok().flatten()
    }

    /// A new session key for the same state (after a link: whoever watched the old key
    /// learns nothing useful). The store swaps the key in the row itself, in the statement that
    /// writes the state: a session ended meanwhile (signed out everywhere, a back-channel
    /// logout) stays ended. (actix-session's own renewal deletes the old row and inserts the
    /// state afresh, which would bring such a session back, with a new absolute lifetime.)
    pub fn renew(&self) -> Result<(), actix_session::SessionInsertError> {
        self.0.remove(LINK_KEY);
        self.0.insert(ROTATE_KEY, true)
    }

    /// Deletes the session row and clears the cookie.
    pub fn sign_out(&self) {
        self.0.purge();
    }
}

impl FromRequest for UserSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(req.get_session())))
    }
}
