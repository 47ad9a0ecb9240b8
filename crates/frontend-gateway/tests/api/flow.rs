//! The whole story through the gateway in front of a real backend-api.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn register_sign_in_use_the_api_sign_out_then_401() {
    let app = TestApp::spawn().await;
    let browser = app.browser();

    assert_eq!(
        browser.get("/api/me").await.status(),
        401,
        "no session, no token"
    );

    let ada = app.registered("ada@example.com", PASSWORD, "Ada").await;
    let res = browser
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 403, "not before the address is verified");
    app.verify(ada).await;
    let res = browser
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(browser.session().await["user"]["email"], "ada@example.com");

    let me = browser.get("/api/me").await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");

    let created = browser
        .post_json("/api/workspaces", &json!({"name": "Acme"}))
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let listed = browser.get("/api/workspaces").await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert!(
        listed.to_string().contains(created["id"].as_str().unwrap()),
        "{listed}"
    );

    let stolen = browser.cookie("session").unwrap();
    assert_eq!(browser.sign_out().await.status(), 200);
    let res = browser.get("/api/workspaces").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["instance"], "/workspaces",
        "the backend's own problem passes through"
    );
    assert_eq!(
        problem["request_id"],
        request_id.as_str(),
        "one request id end to end"
    );

    let replay = app.browser();
    replay.set_cookie("session", &stolen);
    assert_eq!(
        replay.get("/api/workspaces").await.status(),
        401,
        "a copied cookie is dead"
    );
}
