//! `/workspaces/{id}/members`: who belongs to a workspace and with which role.
//!
//! Nobody is added here: membership starts only when an invitee accepts an invitation
//! ([`crate::routes::invitations`]). Members' roles are changed and members removed (or leave)
//! here.
//!
//! Every change runs in a transaction that first locks the workspace row, so changes to one
//! workspace's members are serialized and the "at least one owner" rule holds under concurrent
//! requests (the loser of a race sees the winner's result and gets 409). Who may do what is
//! decided by [`crate::roles`].

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use web_common::Problem;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::openapi::{Forbidden, JsonBodyErrors, MemberNotFound, Unauthorized, WorkspaceNotFound};
use crate::roles::{Action, Role, decide, keeps_an_owner, lock_workspace, role_of, standing};
use crate::state::AppState;

/// A member of a workspace.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// When they joined.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The members of a workspace.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberList {
    pub items: Vec<Member>,
}

/// Body of `PATCH /workspaces/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangeRole {
    /// `owner`, `admin`, `member` or `viewer`.
    #[schema(value_type = Role)]
    pub role: String,
}

const SELECT_MEMBER: &str = "SELECT m.user_id, u.email, u.name, m.role, m.created_at \
     FROM workspace_members m JOIN users u ON u.id = m.user_id";

async fn fetch_member(
    conn: &mut PgConnection,
    id: Uuid,
    user: Uuid,
) -> Result<Member, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_MEMBER} WHERE m.workspace_id = $1 AND m.user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_one(conn)
    .await
}

/// Lists the members (any member may).
#[utoipa::path(
    get, path = "/workspaces/{id}/members", tag = "members", params(("id" = Uuid, Path)),
    operation_id = "list_members",
    responses(
        (status = 200, body = MemberList),
        WorkspaceNotFound,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    user: AuthUser,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<MemberList>, ApiError> {
    let id = *path;
    let role = state
        .reads
        .run(async |c| role_of(c, id, user.id).await)
        .await?;
    decide(role, Action::View)?;
    let items = state
        .reads
        .run(async |c| {
            sqlx::query_as(&format!(
                "{SELECT_MEMBER} WHERE m.workspace_id = $1 ORDER BY m.created_at, m.user_id"
            ))
            .bind(id)
            .fetch_all(c)
            .await
        })
        .await?;
    Ok(web::Json(MemberList { items }))
}

/// Changes a member's role (admin or owner; only an owner touches the owner role; the last
/// owner cannot be demoted).
#[utoipa::path(
    patch, path = "/workspaces/{id}/members/{user_id}", tag = "members",
    operation_id = "change_member_role",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = ChangeRole,
    responses(
        (status = 200, body = Member),
        Forbidden,
        MemberNotFound,
        (status = 409, description = "would leave no owner", body = Problem, content_type = "application/problem+json"),
        JsonBodyErrors,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn change_role(
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<ChangeRole>,
    state: web::Data<AppState>,
) -> Result<web::Json<Member>, ApiError> {
    let (id, target) = path.into_inner();
    let role = Role::parse_field(&body.role)?;
    let mut tx = lock_workspace(&state.pool, id).await?;
    let now = standing(&mut *tx, id, user.id, target).await?;
    decide(
        now.caller,
        Action::Change {
            from: now.target,
            to: role,
        },
    )?;
    if let Some(from) = now.target {
        keeps_an_owner(now.owners, from, Some(role))?;
    }
    sqlx::query("UPDATE workspace_members SET role = $3 WHERE workspace_id = $1 AND user_id = $2")
        .bind(id)
        .bind(target)
        .bind(role)
        .execute(&mut *tx)
        .await?;
    let member = fetch_member(&mut tx, id, target).await?;
    tx.commit().await?;
    Ok(web::Json(member))
}

/// Removes a member (admin or owner; only an owner removes an owner), or lets any member
/// leave. The last owner can do neither.
#[utoipa::path(
    delete, path = "/workspaces/{id}/members/{user_id}", tag = "members",
    operation_id = "remove_member",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 204, description = "removed"),
        Forbidden,
        MemberNotFound,
        (status = 409, description = "would leave no owner", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, target) = path.into_inner();
    let mut tx = lock_workspace(&state.pool, id).await?;
    let now = standing(&mut *tx, id, user.id, target).await?;
    let action = if target == user.id {
        Action::Leave
    } else {
        Action::Remove(now.target)
    };
    decide(now.caller, action)?;
    if let Some(from) = now.target {
        keeps_an_owner(now.owners, from, None)?;
    }
    sqlx::query("DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2")
        .bind(id)
        .bind(target)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
