//! The full role matrix: owner / admin / member / viewer / outsider x every workspace action.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

#[derive(Clone, Copy, Debug)]
enum Action {
    Read,
    ListMembers,
    Rename,
    Delete,
    AddViewer,
    AddOwner,
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
        AddViewer => [201, 201, 403, 403, 404],
        AddOwner => [201, 403, 403, 403, 404],
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
    Fixture {
        workspace,
        callers,
        target_member,
        second_owner,
        newcomer,
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
        AddViewer => (
            Method::POST,
            format!("/workspaces/{w}/members"),
            Some(json!({ "email": f.newcomer.email, "role": "viewer" })),
        ),
        AddOwner => (
            Method::POST,
            format!("/workspaces/{w}/members"),
            Some(json!({ "email": f.newcomer.email, "role": "owner" })),
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
        Action::AddViewer,
        Action::AddOwner,
        Action::ChangeMemberRole,
        Action::RemoveMember,
        Action::PromoteToOwner,
        Action::RemoveOtherOwner,
    ];
    let roles = ["owner", "admin", "member", "viewer", "outsider"];
    let mut n = 0;
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
        }
    }
}
