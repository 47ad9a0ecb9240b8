//! The session middleware (actix-session on [`super::store::PgSessionStore`]) with its cookie
//! flags, and the layer around it that fails closed when the store cannot be reached.

use actix_session::SessionMiddleware;
use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::cookie::SameSite;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::sessions::Sessions;
use super::store::PgSessionStore;
use crate::error::database_unavailable;

/// The session middleware: HttpOnly, SameSite=Lax, Path=/, a persistent cookie.
///
/// The table, not the cookie, enforces both lifetimes: the cookie's `Max-Age` is the absolute
/// lifetime (set once, at sign-in, which starts a new session) and the row's idle expiry slides
/// inside the store. So an unchanged session costs no write and no `Set-Cookie` per request; a
/// cookie whose row has idled out is simply not loaded.
pub fn layer(sessions: &Sessions) -> SessionMiddleware<PgSessionStore> {
    let ttl = actix_web::cookie::time::Duration::seconds(
        i64::try_from(sessions.settings().absolute_timeout.as_secs()).unwrap_or(i64::MAX),
    );
    SessionMiddleware::builder(sessions.store(), sessions.cookie_key().clone())
        .cookie_name(sessions.cookie_name().to_owned())
        .cookie_secure(sessions.secure())
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

/// Middleware around [`layer`]: a session that cannot be loaded or saved (the database is
/// down) fails closed, as a 503 problem carrying the request id, instead of an opaque 500. (It
/// stays an `Err`: the request cannot be cloned before routing, so there is no request to
/// build a response on.)
pub async fn failures(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .extensions()
        .get::<web_common::RequestId>()
        .map(|id| id.as_str().to_owned());
    let path = req.path().to_owned();
    next.call(req).await.map_err(|e| {
        tracing::error!(error = %e, "the session could not be loaded or saved");
        let mut problem = database_unavailable();
        problem.request_id = request_id;
        problem.instance = Some(path);
        problem.into()
    })
}
