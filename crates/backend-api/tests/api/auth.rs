//! The auth extractors end to end: only a valid gateway token for an existing user passes,
//! and every refusal looks the same.

use std::time::Duration;

use auth_contract::{Claims, DEFAULT_TTL, Secret, Signer, unix_now};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use test_support::mint_token;

use crate::helpers::{PREVIOUS_SECRET, SECRET, TestApp, without_request_fields};

async fn me_with(app: &TestApp, authorization: Option<&str>) -> crate::helpers::TestResponse {
    let mut req = app.client.get(format!("{}/me", app.base));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    crate::helpers::read(req.send().await.unwrap()).await
}

fn assert_uniform_401(res: &crate::helpers::TestResponse, reference: &Value) {
    res.problem(401);
    assert_eq!(
        res.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(
        &without_request_fields(&res.body),
        reference,
        "every 401 says the same"
    );
}

#[tokio::test]
async fn me_returns_the_caller_from_the_database() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    let res = app.get("/me", &user).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["id"], user.id.to_string());
    assert_eq!(res.body["email"], "ada@example.com");
    assert_eq!(res.body["name"], "ada");
    assert!(res.body["created_at"].is_string());
    assert!(res.body.get("password_hash").is_none());
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    let res = me_with(&app, Some(&format!("bEaReR {}", user.token))).await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn every_bad_credential_gets_the_same_401_problem() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    let reference = without_request_fields(&me_with(&app, None).await.body);
    assert_eq!(reference["status"], 401);

    // Tokens with a claim deliberately wrong, signed with the app's secret.
    let signer = Signer::new(&Secret::new(SECRET).unwrap());
    let now = unix_now();
    let expired = signer
        .sign(&Claims::issued_at(
            user.id,
            &user.email,
            now - 600,
            Duration::from_secs(60),
        ))
        .unwrap();
    let future = signer
        .sign(&Claims::issued_at(
            user.id,
            &user.email,
            now + 600,
            Duration::from_secs(60),
        ))
        .unwrap();
    let mut wrong_aud = Claims::new(user.id, &user.email);
    wrong_aud.aud = "some-other-service".into();
    let mut wrong_iss = Claims::new(user.id, &user.email);
    wrong_iss.iss = "someone-else".into();
    let (head, rest) = user.token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let tampered_payload = {
        use base64::Engine;
        let mut c = Claims::new(uuid::Uuid::now_v7(), "mallory@example.com");
        c.exp += 3600;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
    };
    let cases = [
        None,
        Some("Basic YWRhOnB3".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer not-a-jwt".to_owned()),
        Some(format!(
            "Bearer {}",
            mint_token(
                "another-secret-that-is-long-enough-0123456789",
                user.id,
                &user.email,
                DEFAULT_TTL
            )
        )),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {future}")),
        Some(format!("Bearer {}", signer.sign(&wrong_aud).unwrap())),
        Some(format!("Bearer {}", signer.sign(&wrong_iss).unwrap())),
        Some(format!("Bearer {head}.{tampered_payload}.{sig}")),
        Some(format!(
            "Bearer {}",
            mint_token(
                SECRET,
                uuid::Uuid::now_v7(),
                "ghost@example.com",
                DEFAULT_TTL
            )
        )),
    ];
    for case in cases {
        let res = me_with(&app, case.as_deref()).await;
        assert_uniform_401(&res, &reference);
    }
}

#[tokio::test]
async fn a_valid_token_for_a_deleted_user_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    assert_eq!(app.get("/me", &user).await.status, StatusCode::OK);
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let res = app.get("/workspaces", &user).await;
    res.problem(401);
}

#[tokio::test]
async fn on_the_workspace_list_a_token_whose_user_is_gone_is_a_401_before_any_400() {
    let app = TestApp::spawn().await;
    let reference = without_request_fields(&me_with(&app, None).await.body);
    let user = app.user("ada@example.com").await;
    app.workspace(&user, "Engines").await;
    let bad_params = ["limit=0", "limit=101", "limit=many", "cursor=garbage!"];
    for query in bad_params {
        let res = app.get(&format!("/workspaces?{query}"), &user).await;
        res.problem(400);
    }
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    for query in ["", "limit=2"].into_iter().chain(bad_params) {
        let res = app.get(&format!("/workspaces?{query}"), &user).await;
        assert_uniform_401(&res, &reference);
    }
}

#[tokio::test]
async fn a_user_without_workspaces_gets_an_empty_page_not_a_401() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    let res = app.get("/workspaces", &user).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["items"], serde_json::json!([]));
    assert!(res.body["next_cursor"].is_null());
}

#[tokio::test]
async fn tokens_from_the_previous_secret_pass_only_while_it_is_configured() {
    let rotating = TestApp::spawn_with_previous(&[PREVIOUS_SECRET]).await;
    let user = rotating.user("ada@example.com").await;
    let token = mint_token(PREVIOUS_SECRET, user.id, &user.email, DEFAULT_TTL);
    let res = me_with(&rotating, Some(&format!("Bearer {token}"))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);

    let rotated = TestApp::spawn().await;
    let user = rotated.user("ada@example.com").await;
    let token = mint_token(PREVIOUS_SECRET, user.id, &user.email, DEFAULT_TTL);
    let res = me_with(&rotated, Some(&format!("Bearer {token}"))).await;
    res.problem(401);
}

#[tokio::test]
async fn protected_routes_all_require_a_token() {
    let app = TestApp::spawn().await;
    let id = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::GET, "/me".to_owned()),
        (Method::GET, "/workspaces".to_owned()),
        (Method::POST, "/workspaces".to_owned()),
        (Method::GET, format!("/workspaces/{id}")),
        (Method::PATCH, format!("/workspaces/{id}")),
        (Method::DELETE, format!("/workspaces/{id}")),
        (Method::GET, format!("/workspaces/{id}/members")),
        (Method::GET, format!("/workspaces/{id}/invitations")),
        (Method::POST, format!("/workspaces/{id}/invitations")),
        (Method::DELETE, format!("/workspaces/{id}/invitations/{id}")),
        (Method::GET, "/invitations".to_owned()),
        (Method::POST, format!("/invitations/{id}/accept")),
        (Method::POST, format!("/invitations/{id}/decline")),
        (Method::PATCH, format!("/workspaces/{id}/members/{id}")),
        (Method::DELETE, format!("/workspaces/{id}/members/{id}")),
    ] {
        let res = app
            .send(
                method.clone(),
                &path,
                None,
                Some(serde_json::json!({"name": "x", "role": "viewer", "email": "a@b.c"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(res.header("www-authenticate").is_some());
    }
}
