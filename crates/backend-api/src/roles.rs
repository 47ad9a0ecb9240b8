//! Workspace roles, and every decision about who may do what to whom.
//!
//! The decisions are pure functions ([`decide`], [`keeps_an_owner`]) of the caller's role, the
//! action (with the role it grants or touches) and the current owner count; handlers load
//! those facts and call them, and a new resource reuses them. A caller who is not a member of
//! a workspace gets exactly the 404 of a workspace that does not exist (no existence leak); a
//! member whose role is too low gets 403.

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

/// Something a caller may try in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the workspace, or list its members.
    View,
    /// Rename the workspace.
    Rename,
    /// Delete the workspace.
    Delete,
    /// Invite someone to join with this role (membership starts when they accept).
    Invite(Role),
    /// List the workspace's invitations, or revoke one.
    ManageInvitations,
    /// Change a member's role: `from` is their current role (None: not a member), `to` the
    /// new one.
    Change {
        /// The target's current role, or None when they are not a member.
        from: Option<Role>,
        /// The role asked for.
        to: Role,
    },
    /// Remove another member, whose current role this is (None: not a member).
    Remove(Option<Role>),
    /// Remove oneself.
    Leave,
}

/// Why an action is refused; each answers one problem ([`ApiError::from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 404: the caller is not a member (exactly the answer for a workspace that does not exist).
    NoSuchWorkspace,
    /// 403: the action needs this role or higher.
    Needs(Role),
    /// 403: only an owner invites an owner, grants the owner role or changes (or removes) an
    /// owner.
    OwnersOnly,
    /// 404: the target is not a member.
    NoSuchMember,
    /// 409: the change or removal would leave the workspace without an owner.
    LastOwner,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NoSuchWorkspace => ApiError::workspace_not_found(),
            Refusal::Needs(role) => ApiError::Denied {
                needed: role.as_str(),
                problem: Problem::forbidden(format!(
                    "This needs the {role} role or higher in this workspace."
                )),
            },
            Refusal::OwnersOnly => ApiError::Denied {
                needed: Role::Owner.as_str(),
                problem: Problem::forbidden(
                    "Only an owner can invite an owner, grant the owner role or change an owner.",
                ),
            },
            Refusal::NoSuchMember => Problem::not_found("No such member in this workspace.").into(),
            Refusal::LastOwner => {
                Problem::conflict("A workspace must keep at least one owner.").into()
            }
        }
    }
}

/// Requires the caller's `role` (None: not a member) to be at least `needed`.
fn require(role: Option<Role>, needed: Role) -> Result<Role, Refusal> {
    match role {
        None => Err(Refusal::NoSuchWorkspace),
        Some(r) if r.at_least(needed) => Ok(r),
        Some(_) => Err(Refusal::Needs(needed)),
    }
}

/// May a caller with `caller` (None: not a member) do `action`? Checked in this order: a
/// member at all (404), the role the action needs (403), the target a member (404), the
/// owner rule (403).
///
/// * viewing the workspace or its members: any member;
/// * renaming: admin or owner; deleting: owner;
/// * inviting someone: admin or owner, and only an owner invites an owner;
/// * listing or revoking invitations: admin or owner;
/// * changing a role: admin or owner, and only an owner changes an owner or makes one;
/// * removing someone else: admin or owner, and only an owner removes an owner;
/// * leaving: any member.
///
/// Whether a change or removal keeps an owner is [`keeps_an_owner`].
pub fn decide(caller: Option<Role>, action: Action) -> Result<(), Refusal> {
    let needed = match action {
        Action::View | Action::Leave => Role::Viewer,
        Action::Rename
        | Action::Invite(_)
        | Action::ManageInvitations
        | Action::Change { .. }
        | Action::Remove(_) => Role::Admin,
        Action::Delete => Role::Owner,
    };
    let caller = require(caller, needed)?;
    let touches_owner = match action {
        Action::View
        | Action::Rename
        | Action::Delete
        | Action::Leave
        | Action::ManageInvitations => false,
        Action::Invite(role) => role == Role::Owner,
        Action::Change { from, to } => {
            let from = from.ok_or(Refusal::NoSuchMember)?;
            from == Role::Owner || to == Role::Owner
        }
        Action::Remove(target) => target.ok_or(Refusal::NoSuchMember)? == Role::Owner,
    };
    if touches_owner && caller != Role::Owner {
        return Err(Refusal::OwnersOnly);
    }
    Ok(())
}

/// The last-owner rule: a member whose role is `from` becomes `to` (None: removed, or leaving)
/// in a workspace that has `owners` owners now. Refused when that leaves no owner.
pub fn keeps_an_owner(owners: i64, from: Role, to: Option<Role>) -> Result<(), Refusal> {
    let loses_an_owner = from == Role::Owner && to != Some(Role::Owner);
    if loses_an_owner && owners <= 1 {
        return Err(Refusal::LastOwner);
    }
    Ok(())
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

/// What a member change is decided on, read in one query: the caller's and the target's
/// roles (None: not a member) and the workspace's owner count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Standing {
    /// The caller's role.
    pub caller: Option<Role>,
    /// The target's role.
    pub target: Option<Role>,
    /// How many owners the workspace has.
    pub owners: i64,
}

/// Reads the [`Standing`] of `caller` and `target` in `workspace`.
pub async fn standing<'e>(
    db: impl sqlx::PgExecutor<'e>,
    workspace: Uuid,
    caller: Uuid,
    target: Uuid,
) -> Result<Standing, sqlx::Error> {
    sqlx::query_as(
        "SELECT \
             (SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2) AS caller, \
             (SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $3) AS target, \
             (SELECT count(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'owner') AS owners",
    )
    .bind(workspace)
    .bind(caller)
    .bind(target)
    .fetch_one(db)
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
        let not_member = ApiError::from(require(None, Role::Viewer).unwrap_err());
        assert!(matches!(not_member, ApiError::Problem(p) if p.status == 404));
        let low = ApiError::from(require(Some(Role::Member), Role::Admin).unwrap_err());
        assert!(
            matches!(low, ApiError::Denied { needed: "admin", problem } if problem.status == 403)
        );
        assert_eq!(
            require(Some(Role::Owner), Role::Admin).unwrap(),
            Role::Owner
        );
    }

    // -----------------------------------------------------------------------------------------
    // The decisions, as a table
    // -----------------------------------------------------------------------------------------

    use Refusal::{NoSuchMember as NM, NoSuchWorkspace as NW, OwnersOnly as OO};

    /// What [`decide`] and [`keeps_an_owner`] answer.
    type Outcome = Result<(), Refusal>;

    /// Allowed.
    const OK: Outcome = Ok(());
    /// 403, needs admin.
    const ADM: Outcome = Err(Refusal::Needs(Role::Admin));
    /// 403, needs owner.
    const OWN: Outcome = Err(Refusal::Needs(Role::Owner));
    const NW_: Outcome = Err(NW);
    const NM_: Outcome = Err(NM);
    const OO_: Outcome = Err(OO);

    /// The callers, in the order of the table's columns.
    const CALLERS: [Option<Role>; 5] = [
        Some(Role::Owner),
        Some(Role::Admin),
        Some(Role::Member),
        Some(Role::Viewer),
        None,
    ];

    const fn change(from: Option<Role>, to: Role) -> Action {
        Action::Change { from, to }
    }

    use Role::{Admin as A, Member as M, Owner as O, Viewer as V};

    /// Every action (with every target and granted role) -> the outcome for a caller who is
    /// `[owner, admin, member, viewer, not a member]`.
    #[rustfmt::skip]
    const TABLE: &[(Action, [Outcome; 5])] = &[
        //                                owner admin member viewer outsider
        (Action::View,                   [OK,   OK,   OK,   OK,   NW_]),
        (Action::Leave,                  [OK,   OK,   OK,   OK,   NW_]),
        (Action::Rename,                 [OK,   OK,   ADM,  ADM,  NW_]),
        (Action::Delete,                 [OK,   OWN,  OWN,  OWN,  NW_]),
        (Action::Invite(O),              [OK,   OO_,  ADM,  ADM,  NW_]),
        (Action::Invite(A),              [OK,   OK,   ADM,  ADM,  NW_]),
        (Action::Invite(M),              [OK,   OK,   ADM,  ADM,  NW_]),
        (Action::Invite(V),              [OK,   OK,   ADM,  ADM,  NW_]),
        (Action::ManageInvitations,      [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(O), O),             [OK,   OO_,  ADM,  ADM,  NW_]),
        (change(Some(O), A),             [OK,   OO_,  ADM,  ADM,  NW_]),
        (change(Some(O), M),             [OK,   OO_,  ADM,  ADM,  NW_]),
        (change(Some(O), V),             [OK,   OO_,  ADM,  ADM,  NW_]),
        (change(Some(A), O),             [OK,   OO_,  ADM,  ADM,  NW_]),
        (change(Some(A), A),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(A), M),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(A), V),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(M), O),             [OK,   OO_,  ADM,  ADM,  NW_]),
        (change(Some(M), A),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(M), M),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(M), V),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(V), O),             [OK,   OO_,  ADM,  ADM,  NW_]),
        (change(Some(V), A),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(V), M),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(Some(V), V),             [OK,   OK,   ADM,  ADM,  NW_]),
        (change(None, O),                [NM_,  NM_,  ADM,  ADM,  NW_]),
        (change(None, A),                [NM_,  NM_,  ADM,  ADM,  NW_]),
        (change(None, M),                [NM_,  NM_,  ADM,  ADM,  NW_]),
        (change(None, V),                [NM_,  NM_,  ADM,  ADM,  NW_]),
        (Action::Remove(Some(O)),        [OK,   OO_,  ADM,  ADM,  NW_]),
        (Action::Remove(Some(A)),        [OK,   OK,   ADM,  ADM,  NW_]),
        (Action::Remove(Some(M)),        [OK,   OK,   ADM,  ADM,  NW_]),
        (Action::Remove(Some(V)),        [OK,   OK,   ADM,  ADM,  NW_]),
        (Action::Remove(None),           [NM_,  NM_,  ADM,  ADM,  NW_]),
    ];

    /// Every action there is, with every role it can grant or touch.
    fn every_action() -> Vec<Action> {
        let targets = || Role::ALL.into_iter().map(Some).chain([None]);
        let mut all = vec![
            Action::View,
            Action::Leave,
            Action::Rename,
            Action::Delete,
            Action::ManageInvitations,
        ];
        all.extend(Role::ALL.map(Action::Invite));
        for from in targets() {
            all.extend(Role::ALL.map(|to| change(from, to)));
        }
        all.extend(targets().map(Action::Remove));
        all
    }

    #[test]
    fn the_table_covers_every_action_once() {
        let listed: Vec<Action> = TABLE.iter().map(|(action, _)| *action).collect();
        let all = every_action();
        assert_eq!(listed.len(), all.len(), "{listed:?}");
        for action in all {
            assert_eq!(
                listed.iter().filter(|a| **a == action).count(),
                1,
                "{action:?}"
            );
        }
    }

    #[test]
    fn every_caller_gets_the_tabled_outcome_for_every_action() {
        for (action, outcomes) in TABLE {
            for (caller, expected) in CALLERS.iter().zip(outcomes) {
                assert_eq!(
                    decide(*caller, *action),
                    *expected,
                    "{caller:?} tries {action:?}"
                );
            }
        }
    }

    /// 409, the last owner.
    const LO_: Outcome = Err(Refusal::LastOwner);

    /// A member whose role is `from` becomes `to` (None: removed or leaving) -> the outcome
    /// with `[1, 2, 5]` owners in the workspace now.
    #[rustfmt::skip]
    const LAST_OWNER: &[(Role, Option<Role>, [Outcome; 3])] = &[
        //                  1 owner  2     5
        (O, Some(O),       [OK,     OK,   OK]),
        (O, Some(A),       [LO_,    OK,   OK]),
        (O, Some(M),       [LO_,    OK,   OK]),
        (O, Some(V),       [LO_,    OK,   OK]),
        (O, None,          [LO_,    OK,   OK]),
        (A, Some(O),       [OK,     OK,   OK]),
        (A, Some(A),       [OK,     OK,   OK]),
        (A, Some(M),       [OK,     OK,   OK]),
        (A, Some(V),       [OK,     OK,   OK]),
        (A, None,          [OK,     OK,   OK]),
        (M, Some(O),       [OK,     OK,   OK]),
        (M, Some(A),       [OK,     OK,   OK]),
        (M, Some(M),       [OK,     OK,   OK]),
        (M, Some(V),       [OK,     OK,   OK]),
        (M, None,          [OK,     OK,   OK]),
        (V, Some(O),       [OK,     OK,   OK]),
        (V, Some(A),       [OK,     OK,   OK]),
        (V, Some(M),       [OK,     OK,   OK]),
        (V, Some(V),       [OK,     OK,   OK]),
        (V, None,          [OK,     OK,   OK]),
    ];

    #[test]
    fn the_last_owner_rule_follows_its_table() {
        assert_eq!(
            LAST_OWNER.len(),
            4 * 5,
            "every current role x every new role or none"
        );
        for (from, to, outcomes) in LAST_OWNER {
            for (owners, expected) in [1, 2, 5].into_iter().zip(outcomes) {
                assert_eq!(
                    keeps_an_owner(owners, *from, *to),
                    *expected,
                    "{from:?} -> {to:?} with {owners} owner(s)"
                );
            }
        }
    }

    #[test]
    fn each_refusal_answers_its_status_and_message() {
        for (refusal, status, detail) in [
            (NW, 404, "No such workspace."),
            (
                Refusal::Needs(Role::Admin),
                403,
                "This needs the admin role or higher in this workspace.",
            ),
            (
                Refusal::Needs(Role::Owner),
                403,
                "This needs the owner role or higher in this workspace.",
            ),
            (
                OO,
                403,
                "Only an owner can invite an owner, grant the owner role or change an owner.",
            ),
            (NM, 404, "No such member in this workspace."),
            (
                Refusal::LastOwner,
                409,
                "A workspace must keep at least one owner.",
            ),
        ] {
            let (ApiError::Problem(p) | ApiError::Denied { problem: p, .. }) =
                ApiError::from(refusal)
            else {
                panic!("{refusal:?} is not a problem");
            };
            assert_eq!(
                (p.status, p.detail.as_deref()),
                (status, Some(detail)),
                "{refusal:?}"
            );
        }
    }
}
