//! Every error is a problem+json body.

use reqwest::{Method, StatusCode};

use crate::helpers::TestApp;

#[tokio::test]
async fn unknown_route_is_a_404_problem_naming_the_path() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::GET, "/no/such/thing", None, None).await;
    assert_eq!(res.problem(404)["instance"], "/no/such/thing");
}

#[tokio::test]
async fn wrong_method_is_a_405_problem_with_allow() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::PUT, "/workspaces", None, None).await;
    res.problem(405);
    assert_eq!(res.header("allow"), Some("GET, POST"));
}

#[tokio::test]
async fn broken_json_is_400_wrong_content_type_415_oversized_413_wrong_shape_422() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    let url = format!("{}/workspaces", app.base);
    let post = |body: Vec<u8>, ct: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&user.token)
            .header("content-type", ct)
            .body(body)
            .send()
    };

    let res = crate::helpers::read(
        post(b"{\"name\": ".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    res.problem(400);

    let res = crate::helpers::read(
        post(b"name=x".to_vec(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    res.problem(415);

    let big = serde_json::to_vec(&serde_json::json!({ "name": "x".repeat(20_000) })).unwrap();
    let res = crate::helpers::read(post(big, "application/json").await.unwrap()).await;
    res.problem(413);

    let res = crate::helpers::read(post(b"{}".to_vec(), "application/json").await.unwrap()).await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "name");

    let res = crate::helpers::read(
        post(b"{\"name\": 42}".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    res.problem(422);

    // Nothing was created by any of these.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn malformed_workspace_id_is_the_same_404_as_an_unknown_one() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    let res = app.get("/workspaces/not-a-uuid", &user).await;
    res.problem(404);
    let res = app.get("/workspaces/not-a-uuid/members", &user).await;
    res.problem(404);
}

#[tokio::test]
async fn bad_limit_or_cursor_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=garbage!", "cursor"),
    ] {
        let res = app.get(&format!("/workspaces?{query}"), &user).await;
        assert_eq!(res.problem(400)["errors"][0]["field"], field, "{query}");
    }
    let res = app.get("/workspaces?limit=many", &user).await;
    res.problem(400);
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}
