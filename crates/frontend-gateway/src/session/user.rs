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
        self.0.renew();
        self.0.insert(USER_KEY, user)
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
