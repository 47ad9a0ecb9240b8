use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn members_are_not_added_directly_post_is_405_naming_what_remains() {
    // Membership starts with the invitee's consent: an invitation accepted.
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let res = app
        .post(
            &format!("/workspaces/{w}/members"),
            &ada,
            json!({ "email": "bob@example.com", "role": "admin" }),
        )
        .await;
    res.problem(405);
    assert_eq!(res.header("allow"), Some("GET"));
    assert_eq!(app.role_in_db(w, &bob).await, None);
}

#[tokio::test]
async fn an_accepted_invitation_lists_the_invitee_as_a_member_with_its_role() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("Bob@Example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let inv = app.invite(&ada, w, "bob@example.com", "admin").await;
    let res = app
        .send(
            reqwest::Method::POST,
            &format!("/invitations/{inv}/accept"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let list = app.get(&format!("/workspaces/{w}/members"), &bob).await;
    let members: Vec<(String, String, String)> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            (ada.id.to_string(), "ada@example.com".into(), "owner".into()),
            (bob.id.to_string(), "Bob@Example.com".into(), "admin".into()),
        ]
    );
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed_nor_leave() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let me = format!("/workspaces/{w}/members/{}", ada.id);
    app.patch(&me, &ada, json!({ "role": "admin" }))
        .await
        .problem(409);
    app.delete(&me, &ada).await.problem(409);
    assert_eq!(app.role_in_db(w, &ada).await.as_deref(), Some("owner"));
}

#[tokio::test]
async fn an_owner_may_step_down_once_another_owner_exists() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    app.join(w, &bob, "member").await;
    let res = app
        .patch(
            &format!("/workspaces/{w}/members/{}", bob.id),
            &ada,
            json!({ "role": "owner" }),
        )
        .await;
    assert_eq!(res.body["role"], "owner");
    let res = app
        .patch(
            &format!("/workspaces/{w}/members/{}", ada.id),
            &ada,
            json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(app.role_in_db(w, &ada).await.as_deref(), Some("viewer"));
    assert_eq!(app.owner_count(w).await, 1);
}

#[tokio::test]
async fn any_member_may_leave_but_not_remove_others() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let vic = app.user("vic@example.com").await;
    let mel = app.user("mel@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    app.join(w, &vic, "viewer").await;
    app.join(w, &mel, "member").await;
    app.delete(&format!("/workspaces/{w}/members/{}", mel.id), &vic)
        .await
        .problem(403);
    let res = app
        .delete(&format!("/workspaces/{w}/members/{}", vic.id), &vic)
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(app.role_in_db(w, &vic).await, None);
    app.get(&format!("/workspaces/{w}"), &vic)
        .await
        .problem(404);
}

#[tokio::test]
async fn an_admin_cannot_touch_an_owner() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let adm = app.user("adm@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    app.join(w, &adm, "admin").await;
    let owner = format!("/workspaces/{w}/members/{}", ada.id);
    app.patch(&owner, &adm, json!({ "role": "viewer" }))
        .await
        .problem(403);
    app.delete(&owner, &adm).await.problem(403);
    let res = app
        .patch(
            &format!("/workspaces/{w}/members/{}", adm.id),
            &adm,
            json!({ "role": "owner" }),
        )
        .await;
    res.problem(403);
    assert_eq!(app.role_in_db(w, &ada).await.as_deref(), Some("owner"));
    assert_eq!(app.role_in_db(w, &adm).await.as_deref(), Some("admin"));
}

#[tokio::test]
async fn changing_or_removing_someone_who_is_not_a_member_is_404() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let path = format!("/workspaces/{w}/members/{}", bob.id);
    app.patch(&path, &ada, json!({ "role": "viewer" }))
        .await
        .problem(404);
    app.delete(&path, &ada).await.problem(404);
    let res = app.patch(&path, &ada, json!({ "role": "boss" })).await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "role");
}

#[tokio::test]
async fn ids_in_the_body_never_override_the_path() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let other = app.workspace(&bob, "Bob's").await;
    app.join(w, &bob, "member").await;
    let res = app
        .patch(
            &format!("/workspaces/{w}/members/{}", bob.id),
            &ada,
            json!({ "role": "viewer", "workspace_id": other, "user_id": ada.id }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("viewer"));
    assert_eq!(app.role_in_db(w, &ada).await.as_deref(), Some("owner"));
    assert_eq!(app.role_in_db(other, &bob).await.as_deref(), Some("owner"));
}
