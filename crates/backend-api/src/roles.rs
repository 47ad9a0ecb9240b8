//! Workspace roles and the checks every workspace route makes.
//!
//! A caller who is not a member of a workspace gets exactly the 404 of a workspace that does
//! not exist (no existence leak); a member whose role is too low gets 403.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use web_common::Problem;

use crate::error::ApiError;

/// A member's role, from most to least powerful.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "workspace_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including deleting the workspace and granting owner.
    Owner,
    /// Renames the workspace and manages members (but not owners).
    Admin,
    /// Works in the workspace.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
            Role::Viewer => 0,
        }
    }

    /// `true` when this role may do what `needed` may.
    pub fn at_least(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }

    /// The role as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Parses the `role` field of a request body, naming the field when it is wrong.
    pub fn parse_field(value: &str) -> Result<Role, Problem> {
        value.parse().map_err(|()| {
            Problem::invalid_field("role", "must be one of owner, admin, member, viewer")
        })
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requires the caller's `role` (None: not a member) to be at least `needed`.
pub fn require(role: Option<Role>, needed: Role) -> Result<Role, ApiError> {
    match role {
        None => Err(ApiError::workspace_not_found()),
        Some(r) if r.at_least(needed) => Ok(r),
        Some(_) => Err(Problem::forbidden(format!(
            "This needs the {needed} role or higher in this workspace."
        ))
        .into()),
    }
}

/// The caller's role in a workspace, or None when they are not a member (or it does not exist).
pub async fn role_of<'e>(
    db: impl sqlx::PgExecutor<'e>,
    workspace: Uuid,
    user: Uuid,
) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
    )
    .bind(workspace)
    .bind(user)
    .fetch_optional(db)
    .await
}

/// Starts a transaction holding the workspace's row lock; 404 when the workspace does not
/// exist. Every change that depends on a caller's role takes it first, so role changes and the
/// actions they allow are serialized per workspace (a demoted admin cannot rename in between).
pub async fn lock_workspace(
    pool: &sqlx::PgPool,
    id: Uuid,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ApiError> {
    let mut tx = pool.begin().await?;
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM workspaces WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    found.ok_or_else(ApiError::workspace_not_found)?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_owner_admin_member_viewer() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Member));
        assert!(Role::Member.at_least(Role::Viewer));
        assert!(!Role::Viewer.at_least(Role::Member));
        assert!(!Role::Admin.at_least(Role::Owner));
    }

    #[test]
    fn roles_parse_only_their_lowercase_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("Owner".parse::<Role>().is_err());
        assert!("superuser".parse::<Role>().is_err());
    }

    #[test]
    fn require_hides_non_members_and_forbids_low_roles() {
        let not_member = require(None, Role::Viewer).unwrap_err();
        assert!(matches!(not_member, ApiError::Problem(p) if p.status == 404));
        let low = require(Some(Role::Member), Role::Admin).unwrap_err();
        assert!(matches!(low, ApiError::Problem(p) if p.status == 403));
        assert_eq!(
            require(Some(Role::Owner), Role::Admin).unwrap(),
            Role::Owner
        );
    }
}
