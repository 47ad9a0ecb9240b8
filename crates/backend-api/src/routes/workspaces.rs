//! `/workspaces`: the caller's workspaces.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};
use time::OffsetDateTime;
use uuid::Uuid;
use web_common::Problem;

use crate::auth::{AuthUser, CallerQuery, TokenSubject};
use crate::error::ApiError;
use crate::openapi::{Forbidden, JsonBodyErrors, Unauthorized, WorkspaceNotFound};
use crate::roles::{Action, Role, decide, lock_workspace, role_of};
use crate::state::AppState;

/// The longest page `GET /workspaces` returns, and its default.
pub const MAX_LIMIT: i64 = 100;
const DEFAULT_LIMIT: i64 = 50;

/// A workspace, as seen by the caller.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    /// The caller's role in it.
    pub role: Role,
    /// Who created it (null once that user is deleted).
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The columns a [`Workspace`] is read from, in the order it decodes them.
macro_rules! workspace_columns {
    () => {
        "w.id, w.name, m.role, w.created_by, w.created_at, w.updated_at"
    };
}

/// By position, in the order of `workspace_columns!`: a page of `GET /workspaces` decodes
/// six columns of up to a hundred rows per request, and looking each column up by name cost
/// about 3% of the backend's instructions per request (callgrind).
impl<'r> FromRow<'r, PgRow> for Workspace {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            role: row.try_get(2)?,
            created_by: row.try_get(3)?,
            created_at: row.try_get(4)?,
            updated_at: row.try_get(5)?,
        })
    }
}

/// One page of workspaces.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkspacePage {
    pub items: Vec<Workspace>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /workspaces` (and of every list paged the same way).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// Body of `POST /workspaces` and `PATCH /workspaces/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct WorkspaceName {
    /// 1 to 100 characters after trimming white space, none of them a control character.
    // The pattern says exactly what `valid_name` checks: optional white space (Rust's
    // `char::is_whitespace`), then 1 to 100 characters that are not control characters
    // (`char::is_control`, i.e. U+0000-U+001F and U+007F-U+009F), the first and last of them not
    // white space, then optional white space. Spelled with `\uXXXX` escapes, which the
    // ECMA-262, Python and Rust regex dialects all read the same way.
    #[schema(
        pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f]{0,98}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
}

/// Trims a workspace name and checks its length (in characters) and content.
pub fn valid_name(name: &str) -> Result<String, Problem> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(Problem::invalid_field("name", "must not be empty"));
    }
    if len > 100 {
        return Err(Problem::invalid_field(
            "name",
            "must be at most 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Keyset position: `(created_at, id)` of the last item of a page.
fn encode_cursor(w: &Workspace) -> String {
    cursor(w.created_at, w.id)
}

/// The cursor of a page that ends at the item created at `created_at` with `id` (a list
/// ordered by `created_at, id`).
pub(crate) fn cursor(created_at: OffsetDateTime, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}_{}", created_at.unix_timestamp_nanos(), id))
}

fn decode_cursor(cursor: &str) -> Result<(OffsetDateTime, Uuid), Problem> {
    let bad = || {
        Problem::bad_request("`cursor` is not a cursor this API returned.")
            .field("cursor", "is invalid")
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (nanos, id) = raw.split_once('_').ok_or_else(bad)?;
    let nanos: i128 = nanos.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad())?;
    // `time` reaches years Postgres' timestamptz cannot hold (before 4713 BC); no row was ever
    // created outside years 1..=9999, so anything else is not a cursor we returned (and must
    // not reach the database as a parameter it refuses, which would be a 500).
    if !(1..=9999).contains(&at.year()) {
        return Err(bad());
    }
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// One workspace as seen by the member `$2`: `$1` its id.
pub(crate) const SELECT_FOR_MEMBER: &str = concat!(
    "SELECT ",
    workspace_columns!(),
    " FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id AND m.user_id = $2 \
     WHERE w.id = $1"
);

async fn fetch_for(
    state: &AppState,
    id: Uuid,
    user: Uuid,
) -> Result<Option<Workspace>, sqlx::Error> {
    state
        .reads
        .run(async |c| {
            sqlx::query_as(SELECT_FOR_MEMBER)
                .bind(id)
                .bind(user)
                .fetch_optional(c)
                .await
        })
        .await
}

/// The page of `GET /workspaces`: `$2`/`$3` the cursor's position (NULL for the first page),
/// `$4` the page size plus one (to tell whether there is a next page).
static PAGE: CallerQuery<Workspace> = CallerQuery::new(
    concat!(
        "SELECT ",
        workspace_columns!(),
        " FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id \
     WHERE m.user_id = $1 \
       AND ($2::timestamptz IS NULL OR (w.created_at, w.id) > ($2, $3)) \
     ORDER BY w.created_at, w.id LIMIT $4"
    ),
    "created_at, id",
);

/// The caller's workspaces, oldest first, with the caller's role.
#[utoipa::path(
    get, path = "/workspaces", tag = "workspaces", params(ListQuery),
    operation_id = "list_workspaces",
    responses(
        (status = 200, body = WorkspacePage),
        (status = 400, description = "bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: TokenSubject,
    query: Result<web::Query<ListQuery>, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<web::Json<WorkspacePage>, ApiError> {
    let params = query
        .map_err(|e| ApiError::from_extractor(&e))
        .and_then(|q| list_params(&q));
    let (limit, after) = match params {
        Ok(params) => params,
        Err(e) => return Err(caller.reject(&state, e).await),
    };
    // One round trip: the page, and whether the caller is still a user.
    let mut items = caller
        .rows(&state, &PAGE, |q| {
            q.bind(after.map(|(at, _)| at))
                .bind(after.map(|(_, id)| id))
                .bind(limit + 1)
        })
        .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(encode_cursor)
    } else {
        None
    };
    Ok(web::Json(WorkspacePage { items, next_cursor }))
}

/// `limit` (checked, defaulted) and the decoded `cursor` of `GET /workspaces` (and of every
/// list paged the same way).
pub(crate) fn list_params(
    query: &ListQuery,
) -> Result<(i64, Option<(OffsetDateTime, Uuid)>), ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request("`limit` must be between 1 and 100.")
            .field("limit", "must be between 1 and 100")
            .into());
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    Ok((limit, after))
}

/// Creates a workspace; the caller becomes its owner in the same transaction.
#[utoipa::path(
    post, path = "/workspaces", tag = "workspaces", request_body = WorkspaceName,
    operation_id = "create_workspace",
    responses(
        (status = 201, body = Workspace, headers(("Location" = String))),
        JsonBodyErrors,
        (status = 422, description = "bad name", body = Problem, content_type = "application/problem+json"),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    user: AuthUser,
    body: web::Json<WorkspaceName>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = valid_name(&body.name)?;
    let id = Uuid::now_v7();
    let mut tx = state.pool.begin().await?;
    let (created_at, updated_at): (OffsetDateTime, OffsetDateTime) = sqlx::query_as(
        "INSERT INTO workspaces (id, name, created_by) VALUES ($1, $2, $3) RETURNING created_at, updated_at",
    )
    .bind(id)
    .bind(&name)
    .bind(user.id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'owner')",
    )
    .bind(id)
    .bind(user.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(workspace = %id, "workspace created");
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/workspaces/{id}")))
        .json(Workspace {
            id,
            name,
            role: Role::Owner,
            created_by: Some(user.id),
            created_at,
            updated_at,
        }))
}

/// One workspace the caller is a member of.
#[utoipa::path(
    get, path = "/workspaces/{id}", tag = "workspaces", params(("id" = Uuid, Path)),
    operation_id = "get_workspace",
    responses(
        (status = 200, body = Workspace),
        WorkspaceNotFound,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    user: AuthUser,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<Workspace>, ApiError> {
    let workspace = fetch_for(&state, *path, user.id).await?;
    decide(workspace.as_ref().map(|w| w.role), Action::View)?;
    workspace
        .map(web::Json)
        .ok_or_else(ApiError::workspace_not_found)
}

/// Renames a workspace (admin or owner).
#[utoipa::path(
    patch, path = "/workspaces/{id}", tag = "workspaces", params(("id" = Uuid, Path)),
    operation_id = "rename_workspace",
    request_body = WorkspaceName,
    responses(
        (status = 200, body = Workspace),
        Forbidden,
        WorkspaceNotFound,
        JsonBodyErrors,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn rename(
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<WorkspaceName>,
    state: web::Data<AppState>,
) -> Result<web::Json<Workspace>, ApiError> {
    let id = *path;
    let mut tx = lock_workspace(&state.pool, id).await?;
    decide(role_of(&mut *tx, id, user.id).await?, Action::Rename)?;
    let name = valid_name(&body.name)?;
    sqlx::query("UPDATE workspaces SET name = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    let workspace: Workspace = sqlx::query_as(SELECT_FOR_MEMBER)
        .bind(id)
        .bind(user.id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(web::Json(workspace))
}

/// Deletes a workspace and its memberships (owner only).
#[utoipa::path(
    delete, path = "/workspaces/{id}", tag = "workspaces", params(("id" = Uuid, Path)),
    operation_id = "delete_workspace",
    responses(
        (status = 204, description = "deleted"),
        Forbidden,
        WorkspaceNotFound,
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    user: AuthUser,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    let mut tx = lock_workspace(&state.pool, id).await?;
    decide(role_of(&mut *tx, id, user.id).await?, Action::Delete)?;
    sqlx::query("DELETE FROM workspaces WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(workspace = %id, "workspace deleted");
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(valid_name("  Acme  ").unwrap(), "Acme");
        assert_eq!(valid_name(&"é".repeat(100)).unwrap().chars().count(), 100);
        for bad in ["", "   ", &"x".repeat(101), "a\u{0}b", "tab\tname"] {
            let p = valid_name(bad).unwrap_err();
            assert_eq!(p.status, 422);
            assert_eq!(p.errors[0].field, "name");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let w = Workspace {
            id: Uuid::now_v7(),
            name: "x".into(),
            role: Role::Owner,
            created_by: None,
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
        };
        let (at, id) = decode_cursor(&encode_cursor(&w)).unwrap();
        assert_eq!((at, id), (w.created_at, w.id));
        for bad in [
            "",
            "!!!",
            "bm90LWEtY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("1_not-a-uuid"),
            // Valid for `time`, out of range for Postgres (found by the HTTP fuzz suite).
            &URL_SAFE_NO_PAD.encode(format!("-210866803200000000000_{}", Uuid::nil())),
            &URL_SAFE_NO_PAD.encode(format!("-62135596800000000001_{}", Uuid::nil())),
        ] {
            assert_eq!(decode_cursor(bad).unwrap_err().status, 400);
        }
    }
}
