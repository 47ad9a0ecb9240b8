//! The adversarial suite, second round (issue 12): proxy. SECURITY.md maps each attack to its test.
//!
//! The upstreams are real HTTP servers on port 0: the echo server of [`upstream`], raw ones
//! answering fixed bytes, and the suite's recording one ([`crate::security::spawn_recording_upstream`]).
//! The gateway's log is not captured by these tests; what a log line would show is asserted
//! through what the client and the upstream see instead.

use std::sync::atomic::Ordering;
use std::time::Duration;

use frontend_gateway::proxy::rewrite::{RuleConfig, Rules};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, Upstream};
use crate::security::{Recording, spawn_recording_upstream};
use crate::upstream;

/// A gateway whose backend is `backend`, with `/api/pass/:path*` (`"passCookies": true`) and
/// `/api/plain/:path*` (the default) both going to `other`.
async fn app_with_rules(backend: String, other: &str) -> TestApp {
    let rules = json!([
        { "source": "/api/pass/:path*", "destination": format!("{other}/:path*"), "passCookies": true },
        { "source": "/api/plain/:path*", "destination": format!("{other}/:path*") },
    ]);
    TestApp::spawn_with(Upstream::Url(backend), |s| {
        let extra: Vec<RuleConfig> = serde_json::from_value(rules).unwrap();
        s.proxy.rules = Rules::standard(&s.proxy.backend_api_url, &extra).unwrap();
    })
    .await
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// `Set-Cookie`s an upstream might use to shadow the gateway's cookies, and one of its own.
const COOKIE_SETTING_UPSTREAM: &str = "HTTP/1.1 200 OK\r\n\
     Set-Cookie: session=evil; Path=/\r\n\
     Set-Cookie: SESSION=evil; Path=/\r\n\
     Set-Cookie: __Host-session=evil; Path=/; Secure\r\n\
     Set-Cookie: __host-Session=evil; Path=/; Secure\r\n\
     Set-Cookie: __Secure-session=evil; Path=/; Secure\r\n\
     Set-Cookie: next-auth.csrf-token=evil; Path=/\r\n\
     Set-Cookie: __Host-NEXT-AUTH.csrf-token=evil; Path=/; Secure\r\n\
     Set-Cookie: next-auth.callback-url=https%3A%2F%2Fevil.example; Path=/\r\n\
     Set-Cookie: auth-flow=evil; Path=/\r\n\
     Set-Cookie: __Host-auth-flow=evil; Path=/; Secure\r\n\
     Set-Cookie: =session=evil; Path=/\r\n\
     Set-Cookie: files-pref=compact; Path=/\r\n\
     Content-Length: 2\r\n\
     \r\n\
     ok";

#[tokio::test]
async fn upstream_set_cookies_named_like_the_gateways_are_dropped_and_others_pass_only_on_pass_cookies_rules()
 {
    let upstream = upstream::spawn_raw(COOKIE_SETTING_UPSTREAM).await;
    let app = app_with_rules(upstream.clone(), &upstream).await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let session = browser.cookie("session").expect("signed in");

    let res = browser.get("/api/pass/x").await;
    assert_eq!(res.status(), 200);
    assert_eq!(set_cookies(&res), vec!["files-pref=compact; Path=/"]);
    for (path, rule) in [
        ("/api/plain/x", "a default rule"),
        ("/api/x", "the backend"),
    ] {
        let res = browser.get(path).await;
        assert_eq!(res.status(), 200, "{rule}");
        assert_eq!(set_cookies(&res), Vec::<String>::new(), "{rule}");
    }
    // The browser's session was never shadowed: the same cookie, still signed in.
    assert_eq!(browser.cookie("session"), Some(session));
    assert_eq!(browser.session().await["user"]["email"], "ada@example.com");
}

#[tokio::test]
async fn pass_cookies_rules_get_the_browsers_cookies_without_the_gateways_and_the_backend_none() {
    let upstream = upstream::spawn();
    let app = app_with_rules(upstream.clone(), &upstream).await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    assert!(browser.cookie("session").is_some());
    browser.csrf_token().await;
    assert!(browser.cookie("next-auth.csrf-token").is_some());
    for (name, value) in [
        ("theme", "dark"),
        ("__Host-session", "forged"),
        ("Session", "forged"),
        ("next-auth.session-token", "x"),
        ("auth-flow", "y"),
    ] {
        browser.set_cookie(name, value);
    }

    let echo: Value = browser.get("/api/pass/echo").await.json().await.unwrap();
    assert_eq!(echo["path"], "/echo");
    assert_eq!(echo["headers"]["cookie"], json!(["theme=dark"]));
    for path in ["/api/plain/echo", "/api/echo"] {
        let echo: Value = browser.get(path).await.json().await.unwrap();
        assert_eq!(echo["headers"].get("cookie"), None, "{path}");
    }
}

#[tokio::test]
async fn dot_segments_behind_parameters_auth_parameters_double_encoding_and_bad_utf8_are_400() {
    let (upstream, connections) = upstream::spawn_counting();
    let app = app_with_rules(upstream.clone(), &upstream).await;
    for path in [
        "/api/..;/admin",
        "/api/pass/..;/admin",
        "/api/.;x/me",
        "/api/%2e%2e;x/admin",
        "/api/auth;x/session",
        "/api/AUTH;/session",
        "/api;x/auth/session",
        "/api/%252e%252e/admin",
        "/api/%25252f",
        "/api/%2525252e%2525252e/admin",
        "/api/%c0%ae%c0%ae/admin",
        "/api/%ff",
    ] {
        let (status, body) = app.raw("GET", path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let problem: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(problem["status"], 400, "{path}: {body}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "none reached the upstream"
    );
    // Neighbours that mean nothing else still pass.
    for path in ["/api/100%25", "/api/a;b", "/api/authors;v=1"] {
        let (status, body) = app.raw("GET", path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

/// 32 KiB of body.
static FIRST_PART: [u8; 0x8000] = [b'u'; 0x8000];

/// Sends `head`, then [`FIRST_PART`], then after a pause `rest`, then closes the sending half (a client that goes
/// away mid-body); returns the gateway's whole answer.
async fn send_broken(app: &TestApp, head: &str, rest: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Enough body for the gateway to flush it upstream before the rest (awc holds back less).
    stream.write_all(&FIRST_PART).await.unwrap();
    if head.contains("chunked") {
        stream.write_all(b"\r\n").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the gateway answers")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_truncated_or_malformed_client_body_is_a_400_and_never_reaches_the_upstream_whole() {
    let Recording {
        url: upstream,
        uploads: bodies,
        requests,
        ..
    } = spawn_recording_upstream();
    let app = TestApp::spawn_with(Upstream::Url(upstream), |_| {}).await;
    let cases = [
        (
            "a Content-Length body cut short",
            "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n",
            "and no more",
        ),
        (
            "a malformed chunk",
            "POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n",
            "zz\r\nnot a chunk size\r\n0\r\n\r\n",
        ),
        (
            "a chunked body cut short",
            "POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n",
            "20\r\nshort",
        ),
    ];
    for (case, head, rest) in cases {
        let answer = send_broken(&app, head, rest).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{case}: {answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{case}: {answer}"
        );
        assert!(answer.contains("\"status\":400"), "{case}: {answer}");
        assert!(answer.contains("x-request-id"), "{case}: {answer}");
    }
    assert!(
        requests.load(Ordering::SeqCst) > 0,
        "the bodies did start streaming upstream"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*bodies.lock().unwrap(), Vec::<usize>::new());
    // A whole body still goes through.
    let answer = send_broken(
        &app,
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 32772\r\nConnection: close\r\n\r\n",
        "abcd",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(*bodies.lock().unwrap(), vec![32772]);
}

/// An upstream answering with `header` (a caching header, or none).
async fn upstream_with(header: &'static str) -> String {
    let response: &'static str = Box::leak(
        format!("HTTP/1.1 200 OK\r\n{header}Content-Length: 2\r\n\r\nok").into_boxed_str(),
    );
    upstream::spawn_raw(response).await
}

#[tokio::test]
async fn authenticated_proxied_answers_without_caching_headers_are_private_no_store() {
    for (upstream_header, signed_in, expected) in [
        ("", true, Some("private, no-store")),
        ("Pragma: no-cache\r\n", true, Some("private, no-store")),
        ("Cache-Control: max-age=60\r\n", true, Some("max-age=60")),
        ("Expires: Thu, 01 Jan 2037 00:00:00 GMT\r\n", true, None),
        ("", false, None),
        ("Cache-Control: max-age=60\r\n", false, Some("max-age=60")),
    ] {
        let upstream = upstream_with(upstream_header).await;
        let app = TestApp::spawn_with(Upstream::Url(upstream), |_| {}).await;
        let browser = if signed_in {
            app.signed_in("ada@example.com").await.0
        } else {
            app.browser()
        };
        let res = browser.get("/api/data").await;
        assert_eq!(res.status(), 200);
        let cache_control: Vec<_> = res
            .headers()
            .get_all("cache-control")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        let case = format!("{upstream_header:?}, signed in: {signed_in}");
        assert_eq!(cache_control, Vec::from_iter(expected), "{case}");
    }
}
