//! `POST /api/auth/backchannel-logout/{id}`: OpenID Connect Back-Channel Logout 1.0. The
//! provider posts a `logout_token` (form-encoded) from its server; a valid one ends every
//! session that signed in through that provider as its `sub` (or in its session `sid`), on
//! every gateway instance (the rows go; other instances' caches let go within their bound).
//!
//! The endpoint reads no cookie and no session, the cross-site checks do not apply to it (the
//! caller is a server), and every answer is `Cache-Control: no-store` (the scope's). A token is
//! used once: its `jti` is kept in `logout_tokens_used` until its `exp`, so a replay at any
//! instance is refused. A bad token is a 400 and ends nothing.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use sqlx::PgPool;
use web_common::Problem;

use super::providers::Providers;
use super::providers::oauth::OAuth;
use super::providers::oauth::http::ProviderHttp;
use super::state::Identity;
use crate::error::Error;

fn refused() -> Problem {
    Problem::bad_request("The logout token is not valid.")
}

/// The handler.
pub async fn logout(
    path: web::Path<String>,
    form: Result<web::Form<HashMap<String, String>>, actix_web::Error>,
    identity: web::Data<Identity>,
    providers: web::Data<Providers>,
    http: web::Data<ProviderHttp>,
) -> Result<HttpResponse, Error> {
    let Some(OAuth::Oidc(oidc)) = providers.oauth(&path) else {
        return Err(Problem::not_found("There is no such OpenID Connect provider.").into());
    };
    let provider = oidc.client.id.as_str();
    let Some(token) = form
        .ok()
        .and_then(|f| f.into_inner().remove("logout_token"))
    else {
        return Err(Problem::bad_request("A form with a logout_token is required.").into());
    };
    let claims = match oidc.verify_logout_token(&http, &token).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(provider, reason = %e, "back-channel logout token refused");
            return Err(refused().into());
        }
    };
    if !first_use(&identity.users, provider, &claims.jti, claims.expires_at).await? {
        tracing::warn!(provider, "back-channel logout token replayed");
        return Err(refused().into());
    }
    let ended = identity
        .sessions
        .end_provider_sessions(provider, claims.subject.as_deref(), claims.sid.as_deref())
        .await?;
    tracing::info!(provider, sessions_ended = ended, "back-channel logout");
    Ok(HttpResponse::Ok().finish())
}

/// Records `jti` as used; `false` when it was already.
async fn first_use(
    pool: &PgPool,
    provider: &str,
    jti: &str,
    expires_at: time::OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO logout_tokens_used (provider, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (provider, jti) DO NOTHING",
    )
    .bind(provider)
    .bind(jti)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets used token ids past their expiry; returns how many.
pub async fn delete_expired(db: impl sqlx::PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM logout_tokens_used WHERE expires_at <= now()")
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
