//! Who is calling, and the rule that a token's user must still exist.
//!
//! The only credential the backend accepts is a gateway token in `Authorization: Bearer`. It is
//! verified with auth-contract and its subject must still be a user. Every failure answers the
//! same [`ApiError::Unauthorized`], whatever the check that failed; the reason is logged at
//! debug level only.
//!
//! Two extractors:
//!
//! * [`AuthUser`]: the token verified and its user looked up (one query) before the handler
//!   runs. Every route but the hot one takes it.
//! * [`TokenSubject`]: the token verified, its user NOT yet looked up. Its subject is private:
//!   a handler reaches data only through [`TokenSubject::user`] (the same check as
//!   [`AuthUser`]), [`TokenSubject::rows`] (the handler's query and the check in ONE round trip)
//!   or [`TokenSubject::reject`] (another input was wrong: still a 401 first when the user is
//!   gone). So the rule cannot be skipped, and it is written only here.

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::sync::OnceLock;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use opentelemetry::trace::SpanKind;
use serde::Serialize;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, Postgres, Row, ValueRef};
use uuid::Uuid;
use web_common::trace;

use crate::error::{ApiError, TokenRefusal};
use crate::state::AppState;

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
fn verified_subject(req: &HttpRequest) -> Result<Uuid, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Unauthorized(TokenRefusal::Missing))?;
    let token = bearer(req).ok_or(ApiError::Unauthorized(TokenRefusal::Missing))?;
    let span = trace::span("token.verify", SpanKind::Internal);
    let claims = state.verifier.verify(token).map_err(|e| {
        tracing::debug!(reason = %e, "bearer token refused");
        let why = TokenRefusal::from(&e);
        span.fail(why.as_str());
        ApiError::Unauthorized(why)
    })?;
    Ok(claims.sub)
}

/// The answer for a valid token whose user no longer exists.
fn gone() -> ApiError {
    tracing::debug!("bearer token for a user that no longer exists");
    ApiError::Unauthorized(TokenRefusal::UnknownUser)
}

/// Looks the token's subject up: it must still be a user.
async fn lookup(state: &AppState, sub: Uuid) -> Result<AuthUser, ApiError> {
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
        .await?;
    match user {
        Some((id, email, name)) => Ok(AuthUser { id, email, name }),
        None => Err(gone()),
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let sub = verified_subject(req);
        Box::pin(async move {
            let sub = sub?;
            let state = state.ok_or(ApiError::Unauthorized(TokenRefusal::Missing))?;
            lookup(&state, sub).await
        })
    }
}

/// A caller whose bearer token verified, BEFORE the check that its subject is still a user:
/// for a hot handler that makes that check inside its own query ([`TokenSubject::rows`]: one
/// database round trip instead of two). Extracting it costs no query.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject {
    sub: Uuid,
}

impl FromRequest for TokenSubject {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(verified_subject(req).map(|sub| Self { sub }))
    }
}

impl TokenSubject {
    /// [`AuthUser`]'s full check: the subject must still be a user.
    pub async fn user(self, state: &AppState) -> Result<AuthUser, ApiError> {
        lookup(state, self.sub).await
    }

    /// For a handler whose other input was wrong: `error`, unless the token's user is gone,
    /// which is a 401 first (as on every route, a 401 comes before any 400).
    pub async fn reject(self, state: &AppState, error: impl Into<ApiError>) -> ApiError {
        match self.user(state).await {
            Ok(_) => error.into(),
            Err(refused) => refused,
        }
    }

    /// Runs `query` for the caller, as a LATERAL subquery of the caller's `users` row: one
    /// round trip answers both the rows and whether the user still exists
    /// ([`ApiError::Unauthorized`] when not). `bind` binds the query's own parameters, `$2`
    /// onwards, in order (`$1`, the caller's id, is bound here).
    pub async fn rows<'q, R>(
        self,
        state: &AppState,
        query: &'q CallerQuery<R>,
        bind: impl FnOnce(CallerStatement<'q, R>) -> CallerStatement<'q, R>,
    ) -> Result<Vec<R>, ApiError>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let statement = bind(sqlx::query_as(query.statement()).bind(self.sub));
        let rows = state
            .reads
            .run(async |c| statement.fetch_all(c).await)
            .await?;
        // No row at all: no `users` row. One row without the handler's columns: the user
        // exists and the query found nothing.
        if rows.is_empty() {
            return Err(gone());
        }
        Ok(rows.into_iter().filter_map(|row| row.0).collect())
    }
}

/// A handler's per-caller read for [`TokenSubject::rows`], decoded as `R` (by column name).
///
/// `select` is a complete `SELECT` (joins, `WHERE`, `ORDER BY`, `LIMIT` as needed) in which
/// `$1` is the caller's user id and `$2`... are the handler's parameters. Its FIRST column
/// must never be NULL in a row it returns (a key): that is how the caller's `users` row alone
/// (the query found nothing) is told from a row. `order_by` is the `ORDER BY` list of the
/// rows, by their column names (for example `"created_at, id"`). Declare one as a `static`:
/// the statement is assembled once.
#[derive(Debug)]
pub struct CallerQuery<R> {
    select: &'static str,
    order_by: &'static str,
    statement: OnceLock<String>,
    row: PhantomData<fn() -> R>,
}

impl<R> CallerQuery<R> {
    /// A query over the caller's rows; see the type's documentation.
    pub const fn new(select: &'static str, order_by: &'static str) -> Self {
        Self {
            select,
            order_by,
            statement: OnceLock::new(),
            row: PhantomData,
        }
    }

    /// `select` under the caller's `users` row: always at least one row while the user
    /// exists (one of NULLs when `select` returned nothing), none once it is gone.
    fn statement(&self) -> &str {
        self.statement.get_or_init(|| {
            format!(
                "SELECT p.* FROM users u LEFT JOIN LATERAL ({}) p ON true \
                 WHERE u.id = $1 \
                 ORDER BY {}",
                self.select, self.order_by
            )
        })
    }
}

/// The statement of a [`CallerQuery`], for its handler to bind its parameters to.
pub type CallerStatement<'q, R> = QueryAs<'q, Postgres, CallerRow<R>, PgArguments>;

/// One row of a [`CallerQuery`]: the handler's row, or nothing (the caller's `users` row
/// alone, when the query found nothing).
#[derive(Debug)]
pub struct CallerRow<R>(Option<R>);

impl<'r, R: FromRow<'r, PgRow>> FromRow<'r, PgRow> for CallerRow<R> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        if row.try_get_raw(0)?.is_null() {
            return Ok(Self(None));
        }
        R::from_row(row).map(|r| Self(Some(r)))
    }
}
