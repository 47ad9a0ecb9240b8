//! The proxy against an echo upstream: rewriting, header hygiene, token injection, errors.

use std::time::Duration;

use auth_contract::{DEFAULT_TTL, Secret, Verifier};
use frontend_gateway::proxy::rewrite::{RuleConfig, Rules};
use serde_json::Value;

use crate::helpers::{API_SECRET, TestApp, Upstream};
use crate::upstream;

async fn app() -> TestApp {
    TestApp::spawn_with(Upstream::Url(upstream::spawn()), |_| {}).await
}

fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a Value> {
    echo["headers"].get(name)
}

#[tokio::test]
async fn api_requests_are_rewritten_to_the_upstream_with_their_query() {
    let app = app().await;
    let res = app
        .browser()
        .get("/api/workspaces/42/members?limit=5&q=a%20b")
        .await;
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/workspaces/42/members");
    assert_eq!(echo["query"], "limit=5&q=a%20b");
}

#[tokio::test]
async fn a_validly_signed_client_token_without_a_session_never_reaches_the_upstream() {
    let app = app().await;
    let forged = test_support::mint_token(
        API_SECRET,
        uuid::Uuid::new_v4(),
        "mallory@example.com",
        DEFAULT_TTL,
    );
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/api/me")
                .bearer_auth(forged),
        )
        .await;
    let echo: Value = res.json().await.unwrap();
    assert_eq!(header(&echo, "authorization"), None, "{echo}");
}

#[tokio::test]
async fn with_a_session_the_upstream_gets_a_fresh_token_for_the_user() {
    let app = app().await;
    let (browser, id) = app.signed_in("ada@example.com").await;
    let res = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/api/me")
                .bearer_auth("client-chosen"),
        )
        .await;
    let echo: Value = res.json().await.unwrap();
    let values = header(&echo, "authorization").unwrap().as_array().unwrap();
    assert_eq!(values.len(), 1);
    let token = values[0].as_str().unwrap().strip_prefix("Bearer ").unwrap();
    let claims = Verifier::new(&Secret::new(API_SECRET).unwrap(), &[])
        .verify(token)
        .unwrap();
    assert_eq!(claims.sub, id);
    assert_eq!(claims.email, "ada@example.com");
    assert!(claims.exp - claims.iat <= 60);
}

#[tokio::test]
async fn cookies_hop_by_hop_and_spoofed_forwarding_headers_never_reach_the_upstream() {
    let app = app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let res = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/api/me")
                .header("connection", "keep-alive, x-private")
                .header("x-private", "hop")
                .header("keep-alive", "timeout=5")
                .header("te", "trailers")
                .header("trailer", "x-t")
                .header("upgrade", "websocket")
                .header("proxy-authorization", "Basic Zm9vOmJhcg==")
                .header("x-forwarded-for", "6.6.6.6")
                .header("x-forwarded-host", "evil.example")
                .header("x-forwarded-proto", "https")
                .header("forwarded", "for=6.6.6.6")
                .header("x-request-id", "req-123")
                .header("x_user_id", "someone-else")
                .header("accept", "application/json"),
        )
        .await;
    let echo: Value = res.json().await.unwrap();
    for name in [
        "cookie",
        "x-private",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "forwarded",
        "x_user_id",
    ] {
        assert_eq!(header(&echo, name), None, "{name} leaked: {echo}");
    }
    assert_eq!(
        header(&echo, "x-forwarded-for").unwrap(),
        &serde_json::json!(["127.0.0.1"])
    );
    assert_eq!(
        header(&echo, "x-forwarded-host").unwrap(),
        &serde_json::json!([format!("127.0.0.1:{}", app.port)])
    );
    assert_eq!(
        header(&echo, "x-forwarded-proto").unwrap(),
        &serde_json::json!(["http"])
    );
    assert_eq!(
        header(&echo, "x-request-id").unwrap(),
        &serde_json::json!(["req-123"])
    );
    assert_eq!(
        header(&echo, "accept").unwrap(),
        &serde_json::json!(["application/json"])
    );
}

#[tokio::test]
async fn upstream_set_cookies_and_hop_by_hop_response_headers_are_dropped_on_the_backend_rule() {
    let upstream = upstream::spawn_raw(
        "HTTP/1.1 200 OK\r\n\
         Connection: close, x-upstream-hop\r\n\
         X-Upstream-Hop: must not reach the client\r\n\
         Keep-Alive: timeout=5\r\n\
         Proxy-Authenticate: Basic\r\n\
         Set-Cookie: upstream-a=1; Path=/\r\n\
         Set-Cookie: upstream-b=2; Path=/\r\n\
         X-Upstream-Kept: yes\r\n\
         Content-Length: 2\r\n\
         \r\n\
         ok",
    )
    .await;
    let app = TestApp::spawn_with(Upstream::Url(upstream), |_| {}).await;
    let res = app.browser().get("/api/anything").await;
    assert_eq!(res.status(), 200);
    // The backend's rule does not pass cookies (security_proxy has the rules that do).
    assert!(res.headers().get("set-cookie").is_none());
    for name in ["x-upstream-hop", "keep-alive", "proxy-authenticate"] {
        assert!(res.headers().get(name).is_none(), "{name} leaked");
    }
    assert_eq!(res.headers()["x-upstream-kept"], "yes");
    assert!(res.headers().get("x-request-id").is_some());
    assert_eq!(res.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn request_bodies_are_forwarded() {
    let app = app().await;
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(reqwest::Method::POST, "/api/workspaces")
                .json(&serde_json::json!({"name": "Acme"})),
        )
        .await;
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body_len"], 15);
    assert_eq!(
        header(&echo, "content-type").unwrap(),
        &serde_json::json!(["application/json"])
    );
}

#[tokio::test]
async fn a_backend_that_is_down_gives_a_502_problem_with_the_request_id() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::spawn_with(Upstream::Url(format!("http://127.0.0.1:{port}")), |_| {}).await;
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/api/me")
                .header("x-request-id", "down-1"),
        )
        .await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 502);
    assert_eq!(body["request_id"], "down-1");
}

#[tokio::test]
async fn a_stalled_backend_gives_a_504_problem() {
    let upstream = upstream::spawn();
    let app = TestApp::spawn_with(Upstream::Url(upstream), |s| {
        s.proxy.timeout = Duration::from_secs(1)
    })
    .await;
    let res = app.browser().get("/api/stall").await;
    assert_eq!(res.status(), 504);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn encoded_path_attacks_are_refused_with_400() {
    let app = app().await;
    for path in [
        "/api/../admin",
        "/api/./me",
        "/api/%2e%2e/admin",
        "/api/%2E%2e/admin",
        "/api/.%2e/admin",
        "/api/%252e%252e/admin",
        "/api/a%2fb",
        "/api/a%2Fb",
        "/api/a%5cb",
        "/api/a%00b",
        "/api//me",
        "//api/me",
        "/api/auth/..%2fworkspaces",
    ] {
        let (status, body) = app.raw("GET", path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("\"status\":400"), "{path}: {body}");
    }
    let (status, _) = app.raw("GET", "/api/a\\b").await;
    assert_eq!(status, 400, "a raw backslash");
}

#[tokio::test]
async fn paths_outside_the_rules_are_404_problems() {
    let app = app().await;
    let res = app.browser().get("/not-api").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn configured_rules_without_opt_in_never_get_a_token() {
    let upstream = upstream::spawn();
    let rules = serde_json::json!([{ "source": "/api/files/:path*", "destination": format!("{upstream}/blobs/:path*") }]);
    let app = TestApp::spawn_with(Upstream::Url(upstream.clone()), |s| {
        let extra: Vec<RuleConfig> = serde_json::from_value(rules).unwrap();
        s.proxy.rules = Rules::standard(&s.proxy.backend_api_url, &extra).unwrap();
    })
    .await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let echo: Value = browser
        .get("/api/files/a/b.txt?v=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echo["path"], "/blobs/a/b.txt");
    assert_eq!(echo["query"], "v=2");
    assert_eq!(header(&echo, "authorization"), None);
    let echo: Value = browser.get("/api/me").await.json().await.unwrap();
    assert!(
        header(&echo, "authorization").is_some(),
        "the default rule opted in"
    );
}

#[tokio::test]
async fn connections_to_the_upstream_are_kept_alive_and_reused() {
    let (upstream, connections) = upstream::spawn_counting();
    let app = TestApp::spawn_with(Upstream::Url(upstream), |_| {}).await;
    let browser = app.browser();
    for _ in 0..10 {
        assert_eq!(browser.get("/api/me").await.status(), 200);
    }
    // One browser connection lands on one worker, whose client keeps one upstream connection.
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

// Request smuggling (CL+TE, duplicate Content-Length): see `security.rs`.
