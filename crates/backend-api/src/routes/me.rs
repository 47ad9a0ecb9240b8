//! `GET /me`: the caller.

use actix_web::web;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use web_common::Problem;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::openapi::Unauthorized;
use crate::state::AppState;

/// The calling user.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sign_in_at: Option<OffsetDateTime>,
}

/// Who the token says is calling.
#[utoipa::path(
    get, path = "/me", tag = "me",
    responses(
        (status = 200, body = Me),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn me(user: AuthUser, state: web::Data<AppState>) -> Result<web::Json<Me>, ApiError> {
    let me: Option<Me> = state
        .reads
        .run(async |c| {
            sqlx::query_as(
                "SELECT id, email, name, created_at, last_sign_in_at FROM users WHERE id = $1",
            )
            .bind(user.id)
            .fetch_optional(c)
            .await
        })
        .await?;
    // Deleted between the extractor's check and now: the same answer as an unknown user.
    me.map(web::Json)
        .ok_or_else(|| Problem::not_found("No such user.").into())
}
