//! The full role matrix: owner / admin / member / viewer / outsider x every workspace action,
//! inviting with every role included (who may invite whom with which role).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

#[derive(Clone, Copy, Debug)]
enum Action {
    Read,
    ListMembers,
    Rename,
    Delete,
    InviteViewer,
    InviteMember,
    InviteAdmin,
    InviteOwner,
    ListInvitations,
    RevokeInvitation,
    ChangeMemberRole,
    RemoveMember,
    PromoteToOwner,
    RemoveOtherOwner,
}

/// Expected status per caller role: [owner, admin, member, viewer, outsider].
fn expected(action: Action) -> [u16; 5] {
    use Action::*;
    match action {
        Read | ListMembers => [200, 200, 200, 200, 404],
        Rename => [200, 200, 403, 403, 404],
        Delete => [204, 403, 403, 403, 404],
        InviteViewer | InviteMember | InviteAdmin => [201, 201, 403, 403, 404],
        InviteOwner => [201, 403, 403, 403, 404],
        ListInvitations => [200, 200, 403, 403, 404],
        RevokeInvitation => [204, 204, 403, 403, 404],
        ChangeMemberRole => [200, 200, 403, 403, 404],
        RemoveMember => [204, 204, 403, 403, 404],
        PromoteToOwner => [200, 403, 403, 403, 404],
        RemoveOtherOwner => [204, 403, 403, 403, 404],
    }
}

struct Fixture {
    workspace: uuid::Uuid,
    callers: Vec<TestUser>,
    target_member: TestUser,
    second_owner: TestUser,
    newcomer: TestUser,
    /// A pending invitation of the workspace.
    invitation: uuid::Uuid,
}

async fn fixture(app: &TestApp, n: usize) -> Fixture {
    let owner = app.user(&format!("owner{n}@example.com")).await;
    let workspace = app.workspace(&owner, &format!("matrix {n}")).await;
    let mut callers = vec![owner];
    for role in ["admin", "member", "viewer"] {
        let u = app.user(&format!("{role}{n}@example.com")).await;
        app.join(workspace, &u, role).await;
        callers.push(u);
    }
    callers.push(app.user(&format!("outsider{n}@example.com")).await);
    let target_member = app.user(&format!("target{n}@example.com")).await;
    app.join(workspace, &target_member, "member").await;
    let second_owner = app.user(&format!("owner2-{n}@example.com")).await;
    app.join(workspace, &second_owner, "owner").await;
    let newcomer = app.user(&format!("new{n}@example.com")).await;
    let invitation = app
        .invite(
            &callers[0],
            workspace,
            &format!("invited{n}@example.com"),
            "member",
        )
        .await;
    Fixture {
        workspace,
        callers,
        target_member,
        second_owner,
        newcomer,
        invitation,
    }
}

fn request(action: Action, f: &Fixture) -> (Method, String, Option<Value>) {
    let w = f.workspace;
    use Action::*;
    match action {
        Read => (Method::GET, format!("/workspaces/{w}"), None),
        ListMembers => (Method::GET, format!("/workspaces/{w}/members"), None),
        Rename => (
            Method::PATCH,
            format!("/workspaces/{w}"),
            Some(json!({ "name": "renamed" })),
        ),
        Delete => (Method::DELETE, format!("/workspaces/{w}"), None),
        InviteViewer | InviteMember | InviteAdmin | InviteOwner => {
            let role = match action {
                InviteViewer => "viewer",
                InviteMember => "member",
                InviteAdmin => "admin",
                _ => "owner",
            };
            (
                Method::POST,
                format!("/workspaces/{w}/invitations"),
                Some(json!({ "email": f.newcomer.email, "role": role })),
            )
        }
        ListInvitations => (Method::GET, format!("/workspaces/{w}/invitations"), None),
        RevokeInvitation => (
            Method::DELETE,
            format!("/workspaces/{w}/invitations/{}", f.invitation),
            None,
        ),
        ChangeMemberRole => (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", f.target_member.id),
            Some(json!({ "role": "viewer" })),
        ),
        RemoveMember => (
            Method::DELETE,
            format!("/workspaces/{w}/members/{}", f.target_member.id),
            None,
        ),
        PromoteToOwner => (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", f.target_member.id),
            Some(json!({ "role": "owner" })),
        ),
        RemoveOtherOwner => (
            Method::DELETE,
            format!("/workspaces/{w}/members/{}", f.second_owner.id),
            None,
        ),
    }
}

#[tokio::test]
async fn every_role_gets_exactly_the_expected_status_for_every_action() {
    let app = TestApp::spawn().await;
    let actions = [
        Action::Read,
        Action::ListMembers,
        Action::Rename,
        Action::Delete,
        Action::InviteViewer,
        Action::InviteMember,
        Action::InviteAdmin,
        Action::InviteOwner,
        Action::ListInvitations,
        Action::RevokeInvitation,
        Action::ChangeMemberRole,
        Action::RemoveMember,
        Action::PromoteToOwner,
        Action::RemoveOtherOwner,
    ];
    let roles = ["owner", "admin", "member", "viewer", "outsider"];
    let mut n = 0;
    use Action::*;
    for action in actions {
        for (i, role) in roles.iter().enumerate() {
            // A fresh workspace per case, so a destructive action never changes the next case.
            n += 1;
            let f = fixture(&app, n).await;
            let (method, path, body) = request(action, &f);
            let res = app.send(method, &path, Some(&f.callers[i]), body).await;
            assert_eq!(
                res.status.as_u16(),
                expected(action)[i],
                "{action:?} as {role}: {}",
                res.body
            );
            if res.status.is_client_error() {
                res.problem(res.status.as_u16());
            }
            // An invitation is made exactly when it is allowed, and nobody joins by it.
            if let InviteViewer | InviteMember | InviteAdmin | InviteOwner = action {
                let made: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM workspace_invitations \
                     WHERE workspace_id = $1 AND email_key = $2",
                )
                .bind(f.workspace)
                .bind(&f.newcomer.email)
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
                assert_eq!(
                    made,
                    i64::from(res.status.is_success()),
                    "{action:?} as {role}"
                );
                assert_eq!(app.role_in_db(f.workspace, &f.newcomer).await, None);
            }
            if let RevokeInvitation = action {
                let status = app.invitation_status(f.invitation).await;
                let expected = if res.status.is_success() {
                    "revoked"
                } else {
                    "pending"
                };
                assert_eq!(status.as_deref(), Some(expected), "{action:?} as {role}");
            }
        }
    }
}
