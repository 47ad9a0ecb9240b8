use reqwest::{Method, StatusCode};

use crate::helpers::TestApp;

#[tokio::test]
async fn healthz_answers_ok_without_a_token() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_ready_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["status"], "ready");
}

#[tokio::test]
async fn readyz_answers_503_problem_while_the_database_is_gone_and_recovers() {
    let app = TestApp::spawn().await;
    app.db.cut_off().await;
    let res = app.send(Method::GET, "/readyz", None, None).await;
    res.problem(503);
    // And it recovers by itself once the database is back.
    app.db.restore().await;
    let res = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

#[tokio::test]
async fn openapi_document_lists_every_route_with_the_bearer_scheme() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = &res.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/healthz",
        "/readyz",
        "/me",
        "/workspaces",
        "/workspaces/{id}",
        "/workspaces/{id}/members",
        "/workspaces/{id}/members/{user_id}",
        "/workspaces/{id}/invitations",
        "/workspaces/{id}/invitations/{invitation_id}",
        "/invitations",
        "/invitations/{invitation_id}/accept",
        "/invitations/{invitation_id}/decline",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["paths"]["/workspaces"]["get"]["security"].is_array());
    assert!(doc["paths"]["/healthz"]["get"]["security"].is_null());
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept() {
    let app = TestApp::spawn().await;
    let res = app.send(Method::GET, "/healthz", None, None).await;
    let generated = res.header("x-request-id").unwrap();
    assert_eq!(generated.len(), 36, "a uuid: {generated}");

    let res = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "gateway-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "gateway-req-42");

    let res = app
        .client
        .get(format!("{}/nope", app.base))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let echoed = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(echoed, "bad id with spaces");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["request_id"],
        echoed.as_str(),
        "the problem names the same id"
    );
}

/// Reads reuse their connections without a health ping (`web_common::db::Lane`); when the server
/// drops every connection, a read is answered 200 or 503 (never a 500), nothing broken is kept,
/// and the next read is served again.
#[tokio::test]
async fn reads_survive_the_server_dropping_every_connection() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.workspace(&ada, "Engines").await;
    for _ in 0..3 {
        let res = app.get("/workspaces", &ada).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
    let name = &app.db.name;
    app.db
        .admin_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;
    let res = app.get("/workspaces", &ada).await;
    if res.status != StatusCode::OK {
        res.problem(503);
    }
    let res = app.get("/workspaces", &ada).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["items"][0]["name"], "Engines");
    // While the database refuses connections, reads are 503 problems too, and they recover.
    app.db.cut_off().await;
    app.get("/workspaces", &ada).await.problem(503);
    app.db.restore().await;
    let res = app.get("/workspaces", &ada).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}
