use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, without_request_fields};

#[tokio::test]
async fn creating_a_workspace_makes_the_caller_its_owner() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let res = app
        .post(
            "/workspaces",
            &ada,
            json!({ "name": "  Analytical Engines  " }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let id: Uuid = res.body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        res.header("location"),
        Some(format!("/workspaces/{id}").as_str())
    );
    assert_eq!(res.body["name"], "Analytical Engines");
    assert_eq!(res.body["role"], "owner");
    assert_eq!(res.body["created_by"], ada.id.to_string());

    let (name, created_by): (String, Uuid) =
        sqlx::query_as("SELECT name, created_by FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((name.as_str(), created_by), ("Analytical Engines", ada.id));
    assert_eq!(app.role_in_db(id, &ada).await.as_deref(), Some("owner"));
}

#[tokio::test]
async fn bad_names_are_refused_with_the_field_named_and_nothing_stored() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    for name in [
        json!(""),
        json!("   "),
        json!("x".repeat(101)),
        json!("a\nb"),
    ] {
        let res = app.post("/workspaces", &ada, json!({ "name": name })).await;
        assert_eq!(res.problem(422)["errors"][0]["field"], "name", "{name}");
    }
    let ok = app
        .post("/workspaces", &ada, json!({ "name": "é".repeat(100) }))
        .await;
    assert_eq!(
        ok.status,
        StatusCode::CREATED,
        "100 characters (200 bytes) is fine"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn list_shows_only_the_callers_workspaces_with_their_role() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mine = app.workspace(&ada, "Mine").await;
    let shared = app.workspace(&bob, "Bob's").await;
    app.workspace(&bob, "Private to Bob").await;
    app.join(shared, &ada, "viewer").await;

    let res = app.get("/workspaces", &ada).await;
    assert_eq!(res.status, StatusCode::OK);
    let items = res.body["items"].as_array().unwrap();
    let seen: Vec<(String, String)> = items
        .iter()
        .map(|w| {
            (
                w["id"].as_str().unwrap().to_owned(),
                w["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (mine.to_string(), "owner".into()),
            (shared.to_string(), "viewer".into())
        ]
    );
    assert!(res.body["next_cursor"].is_null());
}

#[tokio::test]
async fn list_pages_with_a_cursor_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.workspace(&ada, &format!("w{i}")).await.to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/workspaces?limit=2&cursor={c}"),
            None => "/workspaces?limit=2".to_owned(),
        };
        let res = app.get(&path, &ada).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let items = res.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|w| w["id"].as_str().unwrap().to_owned()));
        match res.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

#[tokio::test]
async fn a_non_member_gets_exactly_the_404_of_a_workspace_that_does_not_exist() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let eve = app.user("eve@example.com").await;
    let id = app.workspace(&ada, "Secret plans").await;
    let missing = Uuid::now_v7();
    for (existing, absent) in [
        (
            format!("/workspaces/{id}"),
            format!("/workspaces/{missing}"),
        ),
        (
            format!("/workspaces/{id}/members"),
            format!("/workspaces/{missing}/members"),
        ),
    ] {
        let a = app.get(&existing, &eve).await;
        let b = app.get(&absent, &eve).await;
        a.problem(404);
        b.problem(404);
        assert_eq!(
            without_request_fields(&a.body),
            without_request_fields(&b.body)
        );
    }
    let a = app
        .patch(
            &format!("/workspaces/{id}"),
            &eve,
            json!({ "name": "pwned" }),
        )
        .await;
    let b = app
        .patch(
            &format!("/workspaces/{missing}"),
            &eve,
            json!({ "name": "pwned" }),
        )
        .await;
    assert_eq!(
        without_request_fields(&a.problem(404).clone()),
        without_request_fields(b.problem(404))
    );
    let a = app.delete(&format!("/workspaces/{id}"), &eve).await;
    a.problem(404);
    let name: String = sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(name, "Secret plans");
}

#[tokio::test]
async fn renaming_updates_name_and_updated_at() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let id = app.workspace(&ada, "Old").await;
    let before = app.get(&format!("/workspaces/{id}"), &ada).await.body;
    let res = app
        .patch(
            &format!("/workspaces/{id}"),
            &ada,
            json!({ "name": " New " }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["name"], "New");
    assert_ne!(res.body["updated_at"], before["updated_at"]);
    let res = app
        .patch(&format!("/workspaces/{id}"), &ada, json!({ "name": "" }))
        .await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "name");
}

#[tokio::test]
async fn deleting_a_workspace_removes_it_and_its_memberships() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let id = app.workspace(&ada, "Doomed").await;
    app.join(id, &bob, "admin").await;
    let res = app.delete(&format!("/workspaces/{id}"), &ada).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM workspace_members WHERE workspace_id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(rows, 0);
    app.get(&format!("/workspaces/{id}"), &ada)
        .await
        .problem(404);
}
