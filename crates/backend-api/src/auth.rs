//! Who is calling: the `AuthUser` extractor.
//!
//! The only credential the backend accepts is a gateway token in `Authorization: Bearer`. It is
//! verified with auth-contract and its subject must still be a user. Every failure answers the
//! same 401 (with `WWW-Authenticate: Bearer error="invalid_token"`), whatever the check that
//! failed; the reason is logged at debug level only.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use uuid::Uuid;
use web_common::Problem;

use crate::AppState;
use crate::error::ApiError;

/// The verified caller.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuthUser {
    /// The user id (the token's `sub`).
    pub id: Uuid,
    /// The user's current email (from the database, not the token).
    pub email: String,
    /// The user's display name.
    pub name: String,
}

/// Why the caller is not authenticated. Deliberately carries no detail.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Anything wrong with the credential: missing, malformed, expired, forged, unknown user.
    #[error("invalid or missing bearer token")]
    Unauthorized,
    /// The user lookup could not run.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ResponseError for AuthError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            Self::Unauthorized => actix_web::http::StatusCode::UNAUTHORIZED,
            Self::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unauthorized => {
                let mut res = Problem::new(actix_web::http::StatusCode::UNAUTHORIZED)
                    .detail("A valid bearer token is required.")
                    .error_response();
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                );
                res
            }
            Self::Api(e) => e.error_response(),
        }
    }
}

/// The token in `Authorization: Bearer <token>` (scheme case-insensitive), if any.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The subject of the request's verified bearer token (no database lookup yet).
fn verified_subject(req: &HttpRequest) -> Result<Uuid, AuthError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(AuthError::Unauthorized)?;
    let token = bearer(req).ok_or(AuthError::Unauthorized)?;
    let claims = state.verifier.verify(token).map_err(|e| {
        tracing::debug!(reason = %e, "bearer token refused");
        AuthError::Unauthorized
    })?;
    Ok(claims.sub)
}

/// Looks the token's subject up: it must still be a user.
async fn lookup(state: &AppState, sub: Uuid) -> Result<AuthUser, AuthError> {
    let user = state
        .reads
        .run(async |c| {
            sqlx::query_as::<_, (Uuid, String, String)>(
                "SELECT id, email, name FROM users WHERE id = $1",
            )
            .bind(sub)
            .fetch_optional(c)
            .await
        })
        .await
        .map_err(ApiError::from)?;
    match user {
        Some((id, email, name)) => Ok(AuthUser { id, email, name }),
        None => Err(gone()),
    }
}

/// The answer for a valid token whose user no longer exists.
pub fn gone() -> AuthError {
    tracing::debug!("bearer token for a user that no longer exists");
    AuthError::Unauthorized
}

impl FromRequest for AuthUser {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let sub = verified_subject(req);
        Box::pin(async move {
            let sub = sub?;
            let state = state.ok_or(AuthError::Unauthorized)?;
            lookup(&state, sub).await
        })
    }
}

/// A caller whose bearer token verified, BEFORE the check that its subject is still a user:
/// for a hot handler that makes that check in its own query (one database round trip instead
/// of two). Such a handler must answer [`gone`] when the user is missing, exactly as
/// [`AuthUser`] would, and [`TokenSubject::user`] does the full check when it needs it.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject(pub Uuid);

impl TokenSubject {
    /// [`AuthUser`]'s full check: the subject must still be a user.
    pub async fn user(self, state: &AppState) -> Result<AuthUser, AuthError> {
        lookup(state, self.0).await
    }
}

impl FromRequest for TokenSubject {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(verified_subject(req).map(Self))
    }
}
