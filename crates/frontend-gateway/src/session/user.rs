//! The typed session: who is signed in, behind one small wrapper around actix-session's
//! [`Session`], plus the middleware configuration (cookie flags, lifetimes).

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::time::Duration;

use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_session::{Session, SessionExt, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::session_store::PgSessionStore;

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

/// Cookie and lifetime settings for the session middleware.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    /// `__Host-` prefixed name and `Secure` (production).
    pub secure: bool,
    /// Sliding idle timeout.
    pub idle: Duration,
}

impl CookieSettings {
    /// The cookie's name: `__Host-session` when secure (the prefix makes browsers insist on
    /// `Secure`, `Path=/` and no `Domain`), `session` otherwise.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-session"
        } else {
            "session"
        }
    }
}

/// The session middleware: HttpOnly, SameSite=Lax, Path=/, a persistent cookie.
///
/// The table, not the cookie, enforces both lifetimes: the cookie's `Max-Age` is the absolute
/// lifetime (set once, at sign-in, which starts a new session) and the row's idle expiry slides
/// inside the store (see [`crate::session_store`]). So an unchanged session costs no write and
/// no `Set-Cookie` per request; a cookie whose row has idled out is simply not loaded.
pub fn middleware(
    store: PgSessionStore,
    key: &[u8],
    settings: &CookieSettings,
) -> SessionMiddleware<PgSessionStore> {
    let store = store.with_idle(settings.idle);
    let ttl = actix_web::cookie::time::Duration::seconds(
        i64::try_from(store.absolute().as_secs()).unwrap_or(i64::MAX),
    );
    SessionMiddleware::builder(store, Key::derive_from(key))
        .cookie_name(settings.cookie_name().to_owned())
        .cookie_secure(settings.secure)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_domain(None)
        .session_lifecycle(
            PersistentSession::default()
                .session_ttl(ttl)
                .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
        )
        .build()
}
