//! Workspace invitations: membership starts only with the invitee's consent.
//!
//! * `/workspaces/{id}/invitations` (admin or owner, only an owner invites an owner; the rules
//!   are [`crate::roles`]' [`Action::Invite`] and [`Action::ManageInvitations`]): invite an
//!   email with a role, list the workspace's invitations, revoke one. An invitation is a row
//!   addressed to an email KEY (web-common's `email`), and a mail to the address as typed
//!   queued in the same transaction ([`web_common::outbox`]), so the mail goes if and only if
//!   the invitation exists. Inviting answers the same whether or not the address has an
//!   account.
//! * `/invitations` (any user): the caller's open invitations, and accepting or declining one.
//!   An invitation is the caller's only when the caller's VERIFIED email (read from `users`,
//!   never from the token) has its key; for anyone else it does not exist (the same 404 as an
//!   unknown id). An invitation that is no longer open (accepted, declined, revoked, expired)
//!   is a 410 for its addressee.
//!
//! Invitations expire after `INVITATION_TTL_SECS`. At most one is pending per workspace and
//! address (the partial unique index `workspace_invitations_pending_key`): inviting again while
//! one is open answers it (200, no second mail); an expired one is revoked and a new one made.
//!
//! Every change locks the workspace row first and then the invitation's, the order every
//! membership change takes ([`lock_workspace`]): two accepts of one invitation, or an accept
//! racing a revoke, are serialized and the loser sees the winner's result.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use web_common::outbox::{self, MailKind};
use web_common::{Problem, email};

use crate::auth::{AuthUser, CallerQuery, TokenSubject};
use crate::error::ApiError;
use crate::openapi::{
    Forbidden, InvitationClosed, InvitationNotFound, JsonBodyErrors, Unauthorized,
    WorkspaceNotFound,
};
use crate::roles::{Action, Role, decide, lock_workspace, role_of};
use crate::routes::workspaces::{self, ListQuery, Workspace, cursor, list_params};
use crate::state::AppState;

/// Where the invitee sees their invitations (a path under the gateway's `PUBLIC_ORIGIN`).
pub const INVITATIONS_PAGE: &str = "/invitations";

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Open: the invitee may accept or decline it until `expires_at`.
    Pending,
    /// The invitee accepted it and became a member.
    Accepted,
    /// The invitee declined it.
    Declined,
    /// An admin revoked it (or it had expired when the address was invited again).
    Revoked,
    /// Pending, but past `expires_at`: it can no longer be accepted.
    Expired,
}

impl InvitationStatus {
    fn parse(stored: &str) -> Option<Self> {
        Some(match stored {
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "declined" => Self::Declined,
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            _ => return None,
        })
    }

    /// The 410 for an addressee answering an invitation in this state (None: it is open).
    fn closed(self) -> Option<Problem> {
        let detail = match self {
            Self::Pending => return None,
            Self::Accepted => "This invitation was already accepted.",
            Self::Declined => "This invitation was declined.",
            Self::Revoked => "This invitation was revoked.",
            Self::Expired => "This invitation has expired.",
        };
        Some(Problem::new(StatusCode::GONE).detail(detail))
    }
}

/// An invitation to join a workspace.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// The workspace's name.
    pub workspace_name: String,
    /// The address invited, as the inviter typed it.
    pub email: String,
    /// The role accepting grants.
    pub role: Role,
    pub status: InvitationStatus,
    /// Who invited (null once that user is deleted).
    pub invited_by: Option<Uuid>,
    /// The inviter's display name (null once that user is deleted).
    pub inviter_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Past it, the invitation can no longer be accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the invitee accepted or declined it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub responded_at: Option<OffsetDateTime>,
}

impl<'r> FromRow<'r, PgRow> for Invitation {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let status = InvitationStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".to_owned(),
            source: format!("unknown invitation status {status:?}").into(),
        })?;
        Ok(Self {
            id: row.try_get("id")?,
            workspace_id: row.try_get("workspace_id")?,
            workspace_name: row.try_get("workspace_name")?,
            email: row.try_get("email")?,
            role: row.try_get("role")?,
            status,
            invited_by: row.try_get("invited_by")?,
            inviter_name: row.try_get("inviter_name")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            responded_at: row.try_get("responded_at")?,
        })
    }
}

/// One page of a workspace's invitations.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvitationPage {
    pub items: Vec<Invitation>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's open invitations.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvitationList {
    pub items: Vec<Invitation>,
}

/// Body of `POST /workspaces/{id}/invitations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Invite {
    /// The address to invite (an account is not needed: it may register later).
    pub email: String,
    /// `owner` (owners only), `admin`, `member` or `viewer`.
    #[schema(value_type = Role)]
    pub role: String,
}

/// The columns an [`Invitation`] is read from, with the tables they come from (aliases `i`,
/// `w`, `inviter`). A pending invitation past its expiry reads as `expired`.
macro_rules! select_invitation {
    () => {
        "SELECT i.id, i.workspace_id, w.name AS workspace_name, i.email, i.role, \
             CASE WHEN i.status = 'pending' AND i.expires_at <= now() THEN 'expired' \
                  ELSE i.status::text END AS status, \
             i.invited_by, inviter.name AS inviter_name, i.created_at, i.expires_at, \
             i.responded_at \
         FROM workspace_invitations i \
         JOIN workspaces w ON w.id = i.workspace_id \
         LEFT JOIN users inviter ON inviter.id = i.invited_by"
    };
}

async fn fetch_invitation(conn: &mut PgConnection, id: Uuid) -> Result<Invitation, sqlx::Error> {
    sqlx::query_as(concat!(select_invitation!(), " WHERE i.id = $1"))
        .bind(id)
        .fetch_one(conn)
        .await
}

/// The answer for an invitation the caller may not see, whether or not it exists.
fn no_such_invitation() -> ApiError {
    Problem::not_found("No such invitation.").into()
}

/// Invites an address to the workspace with a role (admin or owner; only an owner invites an
/// owner) and mails it. The same answer whether or not the address has an account.
#[utoipa::path(
    post, path = "/workspaces/{id}/invitations", tag = "invitations", params(("id" = Uuid, Path)),
    operation_id = "create_invitation",
    request_body = Invite,
    responses(
        (status = 201, description = "invited, and a mail queued", body = Invitation, headers(("Location" = String))),
        (status = 200, description = "an open invitation of that address already exists: it, unchanged (no second mail)", body = Invitation),
        Forbidden,
        WorkspaceNotFound,
        (status = 409, description = "the address belongs to a member", body = Problem, content_type = "application/problem+json"),
        JsonBodyErrors,
        (status = 422, description = "bad email or role", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<Invite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    let role = Role::parse_field(&body.role)?;
    // The gateway's rules and key (web-common's `email`): any spelling of the address reaches
    // the same invitee, and what could never be an address is refused before the database is
    // asked.
    let email = email::parse(&body.email)
        .map_err(|refused| Problem::invalid_field("email", refused.to_string()))?;
    let mut tx = lock_workspace(&state.pool, id).await?;
    decide(role_of(&mut *tx, id, user.id).await?, Action::Invite(role))?;
    let member: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM workspace_members m JOIN users u ON u.id = m.user_id \
         WHERE m.workspace_id = $1 AND u.email_key = $2)",
    )
    .bind(id)
    .bind(email.key())
    .fetch_one(&mut *tx)
    .await?;
    if member {
        return Err(
            Problem::conflict("That address belongs to a member of this workspace.").into(),
        );
    }
    let open: Option<(Uuid, bool)> = sqlx::query_as(
        "SELECT id, expires_at <= now() FROM workspace_invitations \
         WHERE workspace_id = $1 AND email_key = $2 AND status = 'pending' FOR UPDATE",
    )
    .bind(id)
    .bind(email.key())
    .fetch_optional(&mut *tx)
    .await?;
    match open {
        Some((open, false)) => {
            let invitation = fetch_invitation(&mut tx, open).await?;
            tx.commit().await?;
            return Ok(HttpResponse::Ok().json(invitation));
        }
        // Expired: it makes way for the new one (one pending per workspace and address).
        Some((expired, true)) => {
            sqlx::query("UPDATE workspace_invitations SET status = 'revoked' WHERE id = $1")
                .bind(expired)
                .execute(&mut *tx)
                .await?;
        }
        None => {}
    }
    let invitation_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO workspace_invitations \
             (id, workspace_id, email, email_key, role, invited_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
    )
    .bind(invitation_id)
    .bind(id)
    .bind(email.as_typed())
    .bind(email.key())
    .bind(role)
    .bind(user.id)
    .bind(state.invitation_ttl.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    let invitation = fetch_invitation(&mut tx, invitation_id).await?;
    let expires_at = invitation
        .expires_at
        .format(&Rfc3339)
        .map_err(|_| Problem::internal())?;
    outbox::enqueue(
        &mut tx,
        MailKind::Invitation,
        email.as_typed(),
        json!({
            "workspace": invitation.workspace_name,
            "inviter": user.name,
            "role": role,
            "expires_at": expires_at,
            "link": INVITATIONS_PAGE,
        }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(workspace = %id, invitation = %invitation_id, "invitation created");
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/workspaces/{id}/invitations/{invitation_id}"),
        ))
        .json(invitation))
}

/// Lists the workspace's invitations, every status, oldest first (admin or owner).
#[utoipa::path(
    get, path = "/workspaces/{id}/invitations", tag = "invitations",
    params(("id" = Uuid, Path), ListQuery),
    operation_id = "list_invitations",
    responses(
        (status = 200, body = InvitationPage),
        (status = 400, description = "bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        Forbidden,
        WorkspaceNotFound,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    user: AuthUser,
    path: web::Path<Uuid>,
    query: Result<web::Query<ListQuery>, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<web::Json<InvitationPage>, ApiError> {
    let id = *path;
    let role = state
        .reads
        .run(async |c| role_of(c, id, user.id).await)
        .await?;
    decide(role, Action::ManageInvitations)?;
    let query = query.map_err(|e| ApiError::from_extractor(&e))?;
    let (limit, after) = list_params(&query)?;
    let mut items: Vec<Invitation> = state
        .reads
        .run(async |c| {
            sqlx::query_as(concat!(
                select_invitation!(),
                " WHERE i.workspace_id = $1 \
                   AND ($2::timestamptz IS NULL OR (i.created_at, i.id) > ($2, $3)) \
                 ORDER BY i.created_at, i.id LIMIT $4"
            ))
            .bind(id)
            .bind(after.map(|(at, _)| at))
            .bind(after.map(|(_, id)| id))
            .bind(limit + 1)
            .fetch_all(c)
            .await
        })
        .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|i| cursor(i.created_at, i.id))
    } else {
        None
    };
    Ok(web::Json(InvitationPage { items, next_cursor }))
}

/// Revokes an invitation (admin or owner): it can no longer be accepted. Revoking a revoked
/// one changes nothing; an answered one (accepted or declined) is a 409.
#[utoipa::path(
    delete, path = "/workspaces/{id}/invitations/{invitation_id}", tag = "invitations",
    operation_id = "revoke_invitation",
    params(("id" = Uuid, Path), ("invitation_id" = Uuid, Path)),
    responses(
        (status = 204, description = "revoked"),
        Forbidden,
        (status = 404, description = "no such workspace, or not a member; or no such invitation in it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the invitation was already accepted or declined", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, invitation) = path.into_inner();
    let mut tx = lock_workspace(&state.pool, id).await?;
    decide(
        role_of(&mut *tx, id, user.id).await?,
        Action::ManageInvitations,
    )?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status::text FROM workspace_invitations \
         WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
    )
    .bind(invitation)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    match status.as_deref() {
        None => return Err(no_such_invitation()),
        Some("pending") => {
            sqlx::query("UPDATE workspace_invitations SET status = 'revoked' WHERE id = $1")
                .bind(invitation)
                .execute(&mut *tx)
                .await?;
        }
        Some("revoked") => {}
        Some(_) => {
            return Err(Problem::conflict("This invitation was already answered.").into());
        }
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /invitations`: the caller's open invitations, the newest 100, newest first: `$1` the
/// caller.
static RECEIVED: CallerQuery<Invitation> = CallerQuery::new(
    concat!(
        select_invitation!(),
        " WHERE i.email_key = (SELECT v.email_key FROM users v \
                               WHERE v.id = $1 AND v.email_verified_at IS NOT NULL) \
            AND i.status = 'pending' AND i.expires_at > now() \
          ORDER BY i.created_at DESC, i.id DESC LIMIT 100"
    ),
    "created_at DESC, id DESC",
);

/// The caller's open (pending, unexpired) invitations, newest first (at most 100), addressed
/// to their verified email; none while it is unverified.
#[utoipa::path(
    get, path = "/invitations", tag = "invitations",
    operation_id = "list_my_invitations",
    responses(
        (status = 200, body = InvitationList),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn received(
    caller: TokenSubject,
    state: web::Data<AppState>,
) -> Result<web::Json<InvitationList>, ApiError> {
    let items = caller.rows(&state, &RECEIVED, |q| q).await?;
    Ok(web::Json(InvitationList { items }))
}

/// In `tx`: locks the invitation `id` addressed to `user`'s verified email (and its workspace
/// first), and answers its workspace and role when it is open. 404 when it is not the caller's
/// (or does not exist), 410 when it is no longer open.
async fn lock_open(tx: &mut PgConnection, id: Uuid, user: Uuid) -> Result<(Uuid, Role), ApiError> {
    const ADDRESSED: &str = "FROM workspace_invitations i \
         JOIN users v ON v.email_key = i.email_key \
                     AND v.id = $2 AND v.email_verified_at IS NOT NULL \
         WHERE i.id = $1";
    let workspace: Option<Uuid> = sqlx::query_scalar(&format!("SELECT i.workspace_id {ADDRESSED}"))
        .bind(id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
    let workspace = workspace.ok_or_else(no_such_invitation)?;
    // The workspace's row, then the invitation's: the order of every membership change.
    sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
        .bind(workspace)
        .execute(&mut *tx)
        .await?;
    let locked: Option<(String, Role)> = sqlx::query_as(&format!(
        "SELECT CASE WHEN i.status = 'pending' AND i.expires_at <= now() THEN 'expired' \
                     ELSE i.status::text END, \
                i.role \
         {ADDRESSED} FOR UPDATE OF i"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    // Gone in between: its workspace was deleted (the cascade), or the caller's email changed.
    let (status, role) = locked.ok_or_else(no_such_invitation)?;
    let status = InvitationStatus::parse(&status).ok_or_else(Problem::internal)?;
    match status.closed() {
        Some(gone) => Err(gone.into()),
        None => Ok((workspace, role)),
    }
}

/// Accepts an invitation addressed to the caller's verified email: the caller becomes a member
/// with its role. Answers the workspace as the caller now sees it.
#[utoipa::path(
    post, path = "/invitations/{invitation_id}/accept", tag = "invitations",
    operation_id = "accept_invitation",
    params(("invitation_id" = Uuid, Path)),
    responses(
        (status = 200, description = "a member now", body = Workspace),
        InvitationNotFound,
        (status = 409, description = "already a member of the workspace", body = Problem, content_type = "application/problem+json"),
        InvitationClosed,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn accept(
    user: AuthUser,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<Workspace>, ApiError> {
    let id = *path;
    let mut tx = state.pool.begin().await?;
    let (workspace, role) = lock_open(&mut tx, id, user.id).await?;
    let joined = sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (workspace_id, user_id) DO NOTHING",
    )
    .bind(workspace)
    .bind(user.id)
    .bind(role)
    .execute(&mut *tx)
    .await?;
    if joined.rows_affected() == 0 {
        return Err(Problem::conflict("You are already a member of this workspace.").into());
    }
    sqlx::query(
        "UPDATE workspace_invitations SET status = 'accepted', responded_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let joined: Workspace = sqlx::query_as(workspaces::SELECT_FOR_MEMBER)
        .bind(workspace)
        .bind(user.id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(workspace = %workspace, invitation = %id, "invitation accepted");
    Ok(web::Json(joined))
}

/// Declines an invitation addressed to the caller's verified email.
#[utoipa::path(
    post, path = "/invitations/{invitation_id}/decline", tag = "invitations",
    operation_id = "decline_invitation",
    params(("invitation_id" = Uuid, Path)),
    responses(
        (status = 204, description = "declined"),
        InvitationNotFound,
        InvitationClosed,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn decline(
    user: AuthUser,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    let mut tx = state.pool.begin().await?;
    lock_open(&mut tx, id, user.id).await?;
    sqlx::query(
        "UPDATE workspace_invitations SET status = 'declined', responded_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_their_names_and_only_pending_is_open() {
        for (name, status) in [
            ("pending", InvitationStatus::Pending),
            ("accepted", InvitationStatus::Accepted),
            ("declined", InvitationStatus::Declined),
            ("revoked", InvitationStatus::Revoked),
            ("expired", InvitationStatus::Expired),
        ] {
            assert_eq!(InvitationStatus::parse(name), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), name);
            let closed = status.closed();
            assert_eq!(closed.is_none(), status == InvitationStatus::Pending);
            if let Some(p) = closed {
                assert_eq!(p.status, 410);
            }
        }
        assert_eq!(InvitationStatus::parse("Pending"), None);
    }
}
