use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn adding_a_member_by_email_ignores_case_and_stores_the_role() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("Bob@Example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let res = app
        .post(
            &format!("/workspaces/{w}/members"),
            &ada,
            json!({ "email": " bob@EXAMPLE.com ", "role": "admin" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(
        res.header("location"),
        Some(format!("/workspaces/{w}/members/{}", bob.id).as_str())
    );
    assert_eq!(res.body["user_id"], bob.id.to_string());
    assert_eq!(res.body["email"], "Bob@Example.com");
    assert_eq!(res.body["role"], "admin");
    assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("admin"));

    let list = app.get(&format!("/workspaces/{w}/members"), &bob).await;
    let roles: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles, ["owner", "admin"]);
}

#[tokio::test]
async fn adding_a_member_by_a_look_alike_spelling_finds_the_user() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let kate = app.user("Kate.Strasse@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let path = format!("/workspaces/{w}/members");
    for spelling in [
        "ｋａｔｅ．ｓｔｒａｓｓｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "kate.straße@example.com",
        "\u{212A}ATE.STRASSE@example.com",
    ] {
        let res = app
            .post(&path, &ada, json!({ "email": spelling, "role": "member" }))
            .await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "{spelling:?}: {}",
            res.body
        );
        assert_eq!(res.body["user_id"], kate.id.to_string());
        assert_eq!(
            res.body["email"], "Kate.Strasse@example.com",
            "as registered"
        );
        let res = app.delete(&format!("{path}/{}", kate.id), &ada).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn adding_a_member_by_an_email_no_one_can_have_is_422_naming_it() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let path = format!("/workspaces/{w}/members");
    let long = format!("{}@example.com", "b".repeat(243));
    for email in [
        "bob@example.com\u{0}",
        "b\u{0}ob@example.com",
        "bob\u{202e}@example.com",
        "bo\u{200b}b@example.com",
        long.as_str(),
    ] {
        let res = app
            .post(&path, &ada, json!({ "email": email, "role": "member" }))
            .await;
        assert_eq!(res.problem(422)["errors"][0]["field"], "email", "{email:?}");
    }
    let members = app.get(&path, &ada).await;
    assert_eq!(members.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn adding_an_existing_member_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    app.join(w, &bob, "viewer").await;
    let res = app
        .post(
            &format!("/workspaces/{w}/members"),
            &ada,
            json!({ "email": "bob@example.com", "role": "admin" }),
        )
        .await;
    res.problem(409);
    assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("viewer"));
}

#[tokio::test]
async fn adding_with_an_unknown_email_or_a_bad_role_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let path = format!("/workspaces/{w}/members");
    let res = app
        .post(
            &path,
            &ada,
            json!({ "email": "nobody@example.com", "role": "member" }),
        )
        .await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "email");
    let res = app
        .post(
            &path,
            &ada,
            json!({ "email": "bob@example.com", "role": "superuser" }),
        )
        .await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "role");
    let res = app
        .post(&path, &ada, json!({ "email": "", "role": "member" }))
        .await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "email");
    let res = app.post(&path, &ada, json!({ "role": "member" })).await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "email");
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
