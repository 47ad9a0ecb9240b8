//! `/workspaces/{id}/members`: who belongs to a workspace and with which role.
//!
//! Every change runs in a transaction that first locks the workspace row, so changes to one
//! workspace's members are serialized and the "at least one owner" rule holds under concurrent
//! requests (the loser of a race sees the winner's result and gets 409). Who may do what is
//! decided by [`crate::roles`].

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use web_common::{Problem, email};

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

/// Body of `POST /workspaces/{id}/members`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddMember {
    /// The email of an existing user.
    pub email: String,
    /// `owner` (owners only), `admin`, `member` or `viewer`.
    #[schema(value_type = Role)]
    pub role: String,
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

/// Adds an existing user by email (admin or owner; only an owner grants owner).
#[utoipa::path(
    post, path = "/workspaces/{id}/members", tag = "members", params(("id" = Uuid, Path)),
    operation_id = "add_member",
    request_body = AddMember,
    responses(
        (status = 201, body = Member, headers(("Location" = String))),
        Forbidden,
        WorkspaceNotFound,
        (status = 409, description = "already a member", body = Problem, content_type = "application/problem+json"),
        JsonBodyErrors,
        (status = 422, description = "bad email or role", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn add(
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<AddMember>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    let role = Role::parse_field(&body.role)?;
    // The gateway's rules and key (web-common's `email`): any spelling of a user's address
    // finds them, and what could never be an address (a NUL, an invisible character, over 254
    // bytes) is refused before the database is asked.
    let email = email::parse(&body.email)
        .map_err(|refused| Problem::invalid_field("email", refused.to_string()))?;
    let mut tx = lock_workspace(&state.pool, id).await?;
    decide(role_of(&mut *tx, id, user.id).await?, Action::Add(role))?;
    let target: Option<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE email_key = $1")
        .bind(email.key())
        .fetch_optional(&mut *tx)
        .await?;
    let target =
        target.ok_or_else(|| Problem::invalid_field("email", "does not belong to any user"))?;
    let inserted = sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (workspace_id, user_id) DO NOTHING",
    )
    .bind(id)
    .bind(target)
    .bind(role)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(Problem::conflict("That user is already a member of this workspace.").into());
    }
    let member = fetch_member(&mut tx, id, target).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/workspaces/{id}/members/{target}"),
        ))
        .json(member))
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
