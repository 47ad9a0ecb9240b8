//! The adversarial suite: one test per attack on the gateway (SECURITY.md maps each attack to
//! its test). Each test's name says the property it proves.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use frontend_gateway::identity::throttle::Limits;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ORIGIN, PASSWORD, TestApp, Upstream};
use crate::upstream;

async fn echo_app() -> TestApp {
    TestApp::spawn_with(Upstream::Url(upstream::spawn()), |_| {}).await
}

/// A problem+json answer of `status`; its body.
pub(crate) async fn assert_problem(res: reqwest::Response, status: u16, context: &str) -> Value {
    assert_eq!(res.status(), status, "{context}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{context}"
    );
    res.json().await.unwrap()
}

const UNSAFE: [Method; 4] = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

// 1. CSRF on the proxied API ------------------------------------------------------------------

#[tokio::test]
async fn csrf_unsafe_proxied_requests_with_a_session_cookie_need_a_same_origin_signal() {
    let app = echo_app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let host_origin = format!("http://127.0.0.1:{}", app.port);
    for method in UNSAFE {
        let refused: [(&str, &[(&str, &str)]); 7] = [
            ("no signal at all", &[]),
            ("cross-site", &[("sec-fetch-site", "cross-site")]),
            ("same-site", &[("sec-fetch-site", "same-site")]),
            ("another origin", &[("origin", "https://evil.example")]),
            ("origin null", &[("origin", "null")]),
            // The origin the Host header would suggest is not the configured one.
            ("the Host's origin", &[("origin", &host_origin)]),
            (
                "X-Forwarded-Host naming the request's origin",
                &[
                    ("origin", "http://evil.example"),
                    ("x-forwarded-host", "evil.example"),
                ],
            ),
        ];
        for (what, headers) in refused {
            let mut req = browser.bare(method.clone(), "/api/workspaces/1");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let body =
                assert_problem(browser.send(req).await, 403, &format!("{method} {what}")).await;
            assert!(body["request_id"].is_string());
        }
        let allowed: [&[(&str, &str)]; 3] = [
            &[("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "none")],
            &[("origin", ORIGIN)],
        ];
        for headers in allowed {
            let mut req = browser.bare(method.clone(), "/api/workspaces/1");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let res = browser.send(req).await;
            assert_eq!(res.status(), 200, "{method} {headers:?}");
            let echo: Value = res.json().await.unwrap();
            assert_eq!(echo["method"], method.as_str());
            assert!(echo["headers"].get("authorization").is_some());
        }
        // Without a session cookie this rule refuses nothing: the request is forwarded (with
        // no token; the real backend answers 401).
        let res = app
            .browser()
            .send(app.browser().bare(method.clone(), "/api/workspaces/1"))
            .await;
        assert_eq!(res.status(), 200, "{method} without a cookie");
        let echo: Value = res.json().await.unwrap();
        assert!(echo["headers"].get("authorization").is_none());
    }
    // Safe methods need no signal.
    let res = browser
        .send(browser.bare(Method::GET, "/api/workspaces"))
        .await;
    assert_eq!(res.status(), 200);
}

// 2. Login CSRF ----------------------------------------------------------------------------------

#[tokio::test]
async fn login_csrf_json_auth_endpoints_refuse_cross_site_browsers_and_allow_non_browser_clients() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |_| {}).await;
    let (victim, _) = app.signed_in("ada@example.com").await;
    let signals: [(&str, &str); 4] = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ];
    let endpoints = [
        (
            "/api/auth/signin",
            json!({"email": "ada@example.com", "password": PASSWORD}),
        ),
        (
            "/api/auth/register",
            json!({"email": "mallory@example.com", "password": PASSWORD, "name": "M"}),
        ),
        (
            "/api/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "attacker's choice"}),
        ),
        ("/api/auth/signout", json!({"json": true})),
        ("/api/auth/signout-everywhere", json!({})),
    ];
    for (path, body) in &endpoints {
        for (name, value) in signals {
            let res = victim
                .send(
                    victim
                        .bare(Method::POST, path)
                        .header(name, value)
                        .json(body),
                )
                .await;
            assert_problem(res, 403, &format!("{path} with {name}: {value}")).await;
        }
    }
    assert!(
        victim.session().await.get("user").is_some(),
        "the victim is still signed in"
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "no cross-site registration");

    // A non-browser client (no Sec-Fetch-Site, no Origin) may register and sign in...
    let curl = app.browser();
    let res = curl
        .send(curl.bare(Method::POST, "/api/auth/register").json(&json!({
            "email": "script@example.com", "password": PASSWORD, "name": "Script"
        })))
        .await;
    assert_eq!(res.status(), 202);
    let script = app.user_id("script@example.com").await;
    app.verify(script).await;
    let res = curl
        .send(curl.bare(Method::POST, "/api/auth/signin").json(&json!({
            "email": "script@example.com", "password": PASSWORD
        })))
        .await;
    assert_eq!(res.status(), 200);
    // ...but what acts on its session needs the csrfToken: the cookie alone is refused.
    let res = curl
        .send(
            curl.bare(Method::POST, "/api/auth/password")
                .json(&json!({"currentPassword": PASSWORD, "newPassword": "a new password"})),
        )
        .await;
    assert_problem(res, 403, "a bare password change").await;
    let res = curl
        .send(curl.bare(Method::POST, "/api/auth/signout-everywhere"))
        .await;
    assert_problem(res, 403, "a bare sign-out everywhere").await;
    assert!(curl.session().await.get("user").is_some());
    let token = curl.csrf_token().await;
    let res = curl
        .send(curl.bare(Method::POST, "/api/auth/password").json(&json!({
            "currentPassword": PASSWORD, "newPassword": "a new password", "csrfToken": token
        })))
        .await;
    assert_eq!(res.status(), 200);
    let res = curl
        .send(
            curl.bare(Method::POST, "/api/auth/signout-everywhere")
                .header("x-csrf-token", &token),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = curl
        .send(
            curl.bare(Method::POST, "/api/auth/signin")
                .json(&json!({"email": "script@example.com", "password": "a new password"})),
        )
        .await;
    assert_eq!(res.status(), 200);

    // The form endpoints keep their csrfToken check, even same-origin.
    let res = victim
        .post_form(
            "/api/auth/callback/credentials",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrfToken", "forged"),
                ("json", "true"),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = victim
        .post_form(
            "/api/auth/signout",
            &[("csrfToken", "forged"), ("json", "true")],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(victim.session().await.get("user").is_some());
}

// 3. Sign-in throttling ------------------------------------------------------------------------

/// `POST /api/auth/signin` from a fresh browser, through a proxy when `xff` is given.
pub(crate) async fn json_sign_in(
    app: &TestApp,
    email: &str,
    password: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let browser = app.browser();
    let mut req = browser
        .request(Method::POST, "/api/auth/signin")
        .json(&json!({"email": email, "password": password}));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    browser.send(req).await
}

pub(crate) fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn signin_is_throttled_per_account_with_429_and_retry_after_without_running_argon2() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.limits = Limits {
            account_failures: 3,
            account_window: Duration::from_secs(900),
            ip_attempts: 1000,
            ip_window: Duration::from_secs(60),
        };
    })
    .await;
    let (ada, _) = app.signed_in("ada@example.com").await;
    let mut slowest_failure = Duration::ZERO;
    // Three failures, whatever the case and spacing of the email (one account).
    for email in ["ada@example.com", " ADA@example.com", "Ada@Example.COM "] {
        let started = Instant::now();
        let res = json_sign_in(&app, email, "wrong password", None).await;
        assert_eq!(res.status(), 401);
        slowest_failure = slowest_failure.max(started.elapsed());
    }
    // Now even the right password is refused, quickly: no database lookup, no argon2.
    let started = Instant::now();
    let mut throttled = Vec::new();
    for password in [PASSWORD, "wrong password", PASSWORD] {
        throttled.push(json_sign_in(&app, "ada@example.com", password, None).await);
    }
    let three_throttled = started.elapsed();
    for res in throttled {
        let wait = retry_after(&res);
        assert!((800..=900).contains(&wait), "Retry-After: {wait}");
        let body = assert_problem(res, 429, "throttled").await;
        assert_eq!(body["status"], 429);
    }
    eprintln!(
        "3 throttled answers: {three_throttled:?}; slowest argon2 failure: {slowest_failure:?}"
    );
    assert!(
        three_throttled < slowest_failure,
        "3 throttled answers took {three_throttled:?}, one argon2 failure {slowest_failure:?}"
    );
    // The next-auth callback is throttled too.
    let res = app
        .browser()
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    // So is checking the current password to change it (the same guessing oracle).
    let res = ada
        .send(
            ada.request(Method::POST, "/api/auth/password")
                .json(&json!({"currentPassword": PASSWORD, "newPassword": "brand new password"})),
        )
        .await;
    assert_problem(res, 429, "password change").await;
    // Another account from the same client is not affected.
    let res = json_sign_in(&app, "bob@example.com", "wrong password", None).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn signin_is_throttled_per_client_ip_and_forwarded_for_counts_only_from_trusted_proxies() {
    let limits = Limits {
        account_failures: 1000,
        account_window: Duration::from_secs(900),
        ip_attempts: 3,
        ip_window: Duration::from_secs(60),
    };
    // Untrusted peer: a spoofed X-Forwarded-For changes nothing.
    let app = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.sign_in.limits = limits;
    })
    .await;
    for i in 0..3 {
        let res = json_sign_in(
            &app,
            &format!("u{i}@example.com"),
            "wrong password",
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        assert_eq!(res.status(), 401);
    }
    let res = json_sign_in(
        &app,
        "u9@example.com",
        "wrong password",
        Some("203.0.113.99"),
    )
    .await;
    assert!(retry_after(&res) <= 60);
    assert_problem(res, 429, "the peer address is the key").await;

    // Behind a trusted proxy (the test client's 127.0.0.1), the right-most untrusted
    // X-Forwarded-For entry is the client.
    let app = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.sign_in.limits = limits;
        s.trusted_proxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
    })
    .await;
    for xff in [
        "198.51.100.1",
        "6.6.6.6, 198.51.100.1",
        "198.51.100.1, 10.0.0.7",
    ] {
        let res = json_sign_in(&app, "a@example.com", "wrong password", Some(xff)).await;
        assert_eq!(res.status(), 401, "{xff}");
    }
    let res = json_sign_in(
        &app,
        "a@example.com",
        "wrong password",
        Some("7.7.7.7, 198.51.100.1"),
    )
    .await;
    assert_problem(res, 429, "the same client behind the proxy").await;
    let res = json_sign_in(
        &app,
        "a@example.com",
        "wrong password",
        Some("198.51.100.2"),
    )
    .await;
    assert_eq!(res.status(), 401, "another client behind the proxy");

    // The same rule for the X-Forwarded-* headers sent upstream.
    let browser = app.browser();
    let echo: Value = browser
        .send(
            browser
                .request(Method::GET, "/api/me")
                .header("x-forwarded-for", "6.6.6.6, 198.51.100.5")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "gateway.test"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echo["headers"]["x-forwarded-for"], json!(["198.51.100.5"]));
    assert_eq!(echo["headers"]["x-forwarded-proto"], json!(["https"]));
    assert_eq!(echo["headers"]["x-forwarded-host"], json!(["gateway.test"]));
    let app = echo_app().await;
    let browser = app.browser();
    let echo: Value = browser
        .send(
            browser
                .request(Method::GET, "/api/me")
                .header("x-forwarded-for", "198.51.100.5")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "evil.example"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echo["headers"]["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(echo["headers"]["x-forwarded-proto"], json!(["http"]));
    assert_eq!(
        echo["headers"]["x-forwarded-host"],
        json!([format!("127.0.0.1:{}", app.port)])
    );
}

// 4. Password change and sign-out everywhere ------------------------------------------------------

#[tokio::test]
async fn password_change_revokes_every_other_session_and_keeps_this_client_signed_in() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |_| {}).await;
    let (this, id) = app.signed_in("ada@example.com").await;
    let mut others = Vec::new();
    for _ in 0..2 {
        let other = app.browser();
        assert_eq!(
            other
                .sign_in_like_next_auth("ada@example.com", PASSWORD)
                .await
                .status(),
            200
        );
        others.push(other);
    }
    let (bob, _) = app.signed_in("bob@example.com").await;
    assert_eq!(app.session_rows().await, 4);

    let change = |current: &str, new: &str| {
        this.request(Method::POST, "/api/auth/password")
            .json(&json!({"currentPassword": current, "newPassword": new}))
    };
    assert_problem(
        this.send(change("wrong password", "brand new password"))
            .await,
        403,
        "wrong current",
    )
    .await;
    let body = assert_problem(this.send(change(PASSWORD, "short")).await, 422, "short new").await;
    assert_eq!(body["errors"][0]["field"], "newPassword");
    assert_eq!(app.session_rows().await, 4, "nothing changed yet");
    let anonymous = app.browser();
    assert_problem(
        anonymous
            .send(
                anonymous.request(Method::POST, "/api/auth/password").json(
                    &json!({"currentPassword": PASSWORD, "newPassword": "brand new password"}),
                ),
            )
            .await,
        401,
        "signed out",
    )
    .await;

    let before = this.cookie("session").unwrap();
    let res = this.send(change(PASSWORD, "brand new password")).await;
    assert_eq!(res.status(), 200);
    assert_ne!(
        this.cookie("session").unwrap(),
        before,
        "this session was renewed"
    );
    assert_eq!(this.session().await["user"]["id"], id.to_string());
    for other in &others {
        assert_eq!(
            other.session().await,
            json!({}),
            "another session of ada survived"
        );
    }
    let ada_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(ada_rows, 1, "only the renewed session is left");
    assert!(
        bob.session().await.get("user").is_some(),
        "other users keep theirs"
    );
    // The old cookie of this very client is dead too.
    let replay = app.browser();
    replay.set_cookie("session", &before);
    assert_eq!(replay.session().await, json!({}));
    assert_eq!(
        json_sign_in(&app, "ada@example.com", PASSWORD, None)
            .await
            .status(),
        401
    );
    assert_eq!(
        json_sign_in(&app, "ada@example.com", "brand new password", None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn signout_everywhere_ends_all_of_the_users_sessions_and_clears_the_cookie() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |_| {}).await;
    let (this, id) = app.signed_in("ada@example.com").await;
    let other = app.browser();
    assert_eq!(
        other
            .sign_in_like_next_auth("ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let (bob, _) = app.signed_in("bob@example.com").await;
    let res = this
        .send(this.request(Method::POST, "/api/auth/signout-everywhere"))
        .await;
    assert_eq!(res.status(), 200);
    let cleared = res.headers().get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap().to_ascii_lowercase();
        c.starts_with("session=") && c.contains("max-age=0")
    });
    assert!(cleared, "the cookie is cleared");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"url": format!("{ORIGIN}/")})
    );
    assert_eq!(this.session().await, json!({}));
    assert_eq!(other.session().await, json!({}));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert!(bob.session().await.get("user").is_some());
    let res = this
        .send(this.request(Method::POST, "/api/auth/signout-everywhere"))
        .await;
    assert_problem(res, 401, "nobody to sign out").await;
}

// 5. Idle and absolute timeouts ------------------------------------------------------------------

async fn live_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sessions WHERE idle_expires_at > now()")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn idle_timeout_is_enforced_server_side_and_the_session_endpoint_does_not_extend_it() {
    let app = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.session.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let cookie = browser.cookie("session").unwrap();
    assert!(browser.session().await.get("user").is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The cookie is still sent (the browser would still have it): the server says no.
    for _ in 0..3 {
        let replay = app.browser();
        replay.set_cookie("session", &cookie);
        assert_eq!(replay.session().await, json!({}));
    }
    assert_eq!(live_rows(&app).await, 0, "asking did not revive the row");
    let replay = app.browser();
    replay.set_cookie("session", &cookie);
    let echo: Value = replay.get("/api/me").await.json().await.unwrap();
    assert!(
        echo["headers"].get("authorization").is_none(),
        "no token for an idle session"
    );
}

#[tokio::test]
async fn absolute_timeout_is_enforced_server_side_however_busy_the_session() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.session.idle_timeout = Duration::from_secs(2);
        s.session.absolute_timeout = Duration::from_secs(3);
    })
    .await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let cookie = browser.cookie("session").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        assert!(
            browser.session().await.get("user").is_some(),
            "busy and young: alive"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let replay = app.browser();
    replay.set_cookie("session", &cookie);
    assert_eq!(replay.session().await, json!({}));
    assert_eq!(browser.session().await, json!({}));
    assert_eq!(live_rows(&app).await, 0);
}

// 6. Open redirects ------------------------------------------------------------------------------

const EVIL_CALLBACKS: [&str; 18] = [
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http://evil.example/",
    "HTTP://GATEWAY.TEST.evil.example",
    "http://gateway.test.evil",
    "http://gateway.test@evil",
    "http://gateway.test:80@evil",
    "http://user:pass@gateway.test/",
    "/\t/evil.example",
    "\t//evil.example",
    "/\r\n/evil.example",
    "/x\r\nLocation: https://evil.example",
    "javascript:alert(1)",
    "https:evil.example",
];

#[tokio::test]
async fn open_redirects_are_refused_for_the_callback_signout_and_signin_page() {
    // Many sign-ins from one address: lift the per-IP sign-in limit.
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.limits.ip_attempts = 0;
    })
    .await;
    app.signed_in("ada@example.com").await;
    let home = format!("{ORIGIN}/");
    for evil in EVIL_CALLBACKS {
        let browser = app.browser();
        let token = browser.csrf_token().await;
        let res = browser
            .post_form(
                "/api/auth/callback/credentials",
                &[
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                    ("csrfToken", &token),
                    ("callbackUrl", evil),
                    ("json", "true"),
                ],
            )
            .await;
        assert_eq!(res.status(), 200, "{evil:?}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["url"],
            home,
            "callback {evil:?}"
        );
        let res = browser
            .post_form(
                "/api/auth/callback/credentials",
                &[
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                    ("csrfToken", &token),
                    ("callbackUrl", evil),
                ],
            )
            .await;
        assert_eq!(res.status(), 302);
        assert_eq!(
            res.headers()["location"],
            home.as_str(),
            "callback 302 {evil:?}"
        );
        let res = browser
            .post_form(
                "/api/auth/signout",
                &[
                    ("csrfToken", &token),
                    ("callbackUrl", evil),
                    ("json", "true"),
                ],
            )
            .await;
        assert_eq!(
            res.json::<Value>().await.unwrap()["url"],
            home,
            "signout {evil:?}"
        );
        let res = browser
            .send(
                browser
                    .request(Method::GET, "/api/auth/signin")
                    .query(&[("callbackUrl", evil)]),
            )
            .await;
        assert_eq!(
            res.headers()["location"],
            format!("{ORIGIN}/signin?callbackUrl=%2F").as_str(),
            "GET signin {evil:?}"
        );
    }
    // A same-origin path or URL is kept.
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(Method::GET, "/api/auth/signin")
                .query(&[("callbackUrl", "/workspaces?x=1")]),
        )
        .await;
    assert_eq!(
        res.headers()["location"],
        format!("{ORIGIN}/signin?callbackUrl=%2Fworkspaces%3Fx%3D1").as_str()
    );
}

// 7. Paths and identity-looking headers ----------------------------------------------------------

#[tokio::test]
async fn path_attacks_are_refused_with_400_and_underscore_identity_headers_are_dropped() {
    let app = echo_app().await;
    let overlong = format!("/api/{}", "a".repeat(3000));
    for path in [
        "/api/%2e%2e/x",
        "/api/%2E%2E/x",
        "/api/.%2e/x",
        "/api/%252e%252e/x",
        "/api/auth/..%2fworkspaces",
        "/api/auth/..%2Fworkspaces",
        "/api/x/..",
        "//api",
        "//api/me",
        "/api//me",
        "/api/a%5cb",
        "/api/a%5Cb",
        "/api/a\\b",
        "/api/a%00b",
        "/api/%00",
        "/api/a%0d%0ab",
        "/api/a%zzb",
        overlong.as_str(),
    ] {
        let (status, body) = app.raw("GET", path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("\"status\":400"), "{path}: {body}");
    }
    // A raw NUL in the request line is refused by the parser itself.
    let (status, _) = app
        .raw_bytes("GET /api/a\0b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, 400);

    let (browser, _) = app.signed_in("ada@example.com").await;
    let echo: Value = browser
        .send(
            browser
                .request(Method::GET, "/api/me")
                .header("X_User_Id", "00000000-0000-0000-0000-000000000001")
                .header("x_forwarded_for", "6.6.6.6")
                .header("X_Forwarded_Host", "evil.example")
                .header("x_real_ip", "6.6.6.6")
                .header("x_request_id", "forged")
                .header("authorization_", "Bearer forged"),
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&String> = echo["headers"].as_object().unwrap().keys().collect();
    assert!(names.iter().all(|n| !n.contains('_')), "{names:?}");
    assert_eq!(echo["headers"]["x-forwarded-for"], json!(["127.0.0.1"]));
}

// 8. Size and time limits --------------------------------------------------------------------------

/// Sends `head` (and nothing more) on a fresh connection; returns what came back (possibly
/// nothing) once the gateway closes, or `None` if it did not within `wait`.
async fn send_raw_lossy(port: u16, head: &[u8], wait: Duration) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let _ = stream.write_all(head).await;
    let mut response = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut response)).await {
        Ok(_) => Some(String::from_utf8_lossy(&response).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn oversized_request_headers_are_refused_with_431() {
    let app = echo_app().await;
    let browser = app.browser();
    // Over the gateway's 32 KiB: a 431 problem.
    let res = browser
        .send(
            browser
                .request(Method::GET, "/api/me")
                .header("x-big", "a".repeat(40 * 1024)),
        )
        .await;
    assert_problem(res, 431, "40 KiB of headers").await;
    let mut req = browser.request(Method::GET, "/api/me");
    for i in 0..40 {
        req = req.header(format!("x-h{i}"), "b".repeat(1000));
    }
    assert_problem(browser.send(req).await, 431, "40 headers of 1 KB").await;
    // Past what the HTTP parser holds (128 KiB or 96 headers): 431 and the connection closed.
    let huge = format!(
        "GET /api/me HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let answer = send_raw_lossy(app.port, huge.as_bytes(), Duration::from_secs(5))
        .await
        .expect("the connection is closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.100}");
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = send_raw_lossy(
        app.port,
        format!("GET /api/me HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes(),
        Duration::from_secs(5),
    )
    .await
    .expect("the connection is closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.100}");
}

#[tokio::test]
async fn oversized_json_on_auth_endpoints_is_refused_with_413() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |_| {}).await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let big = "x".repeat(20 * 1024);
    for (path, body) in [
        (
            "/api/auth/signin",
            json!({"email": "ada@example.com", "password": big}),
        ),
        (
            "/api/auth/register",
            json!({"email": "b@example.com", "password": big, "name": "B"}),
        ),
        (
            "/api/auth/password",
            json!({"currentPassword": big, "newPassword": big}),
        ),
        (
            "/api/auth/callback/credentials",
            json!({"email": "ada@example.com", "password": big, "csrfToken": "x"}),
        ),
    ] {
        let res = browser.post_json(path, &body).await;
        assert_problem(res, 413, path).await;
        // The same, chunked (no Content-Length to refuse up front).
        let bytes = Bytes::from(body.to_string());
        let stream = futures_util::stream::iter(
            bytes
                .chunks(1024)
                .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let res = browser
            .send(
                browser
                    .request(Method::POST, path)
                    .header("content-type", "application/json")
                    .body(reqwest::Body::wrap_stream(stream)),
            )
            .await;
        assert_problem(res, 413, &format!("{path} chunked")).await;
    }
    let form_big = [
        ("csrfToken", big.as_str()),
        ("email", "a"),
        ("password", "b"),
    ];
    assert_problem(
        browser
            .post_form("/api/auth/callback/credentials", &form_big)
            .await,
        413,
        "form",
    )
    .await;
}

/// Sends `head` on a fresh connection, then `byte` every `every` (50 times at most), and reads
/// until the gateway closes: its whole answer (lossy UTF-8) and how long that took. Panics if
/// the gateway has not closed within `wait`.
pub(crate) async fn drip(
    port: u16,
    head: &[u8],
    byte: &[u8],
    every: Duration,
    wait: Duration,
) -> (String, Duration) {
    let connection = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut read_half, mut write_half) = tokio::io::split(connection);
    let started = Instant::now();
    let dripping = async {
        write_half.write_all(head).await.unwrap();
        for _ in 0..50 {
            if write_half.write_all(byte).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
        // Keep the connection open, silently, until the reader is done.
        std::future::pending::<()>().await;
    };
    let reading = async {
        let mut response = Vec::new();
        let _ = read_half.read_to_end(&mut response).await;
        (
            String::from_utf8_lossy(&response).into_owned(),
            started.elapsed(),
        )
    };
    tokio::time::timeout(wait, async {
        tokio::select! {
            r = reading => r,
            () = dripping => unreachable!(),
        }
    })
    .await
    .expect("the gateway never hung up on the slow client")
}

#[tokio::test]
async fn slow_loris_request_heads_time_out_with_408_and_a_closed_connection() {
    let app = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.client_request_timeout = Duration::from_secs(1);
    })
    .await;
    // The request line, then one header byte every 200 ms: the head never completes in time.
    let (text, took) = drip(
        app.port,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n",
        b"X",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await;
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

/// An upstream that records the sizes of the uploads it received completely.
pub(crate) struct Recording {
    pub url: String,
    /// The length of every request body received whole.
    pub uploads: Arc<Mutex<Vec<usize>>>,
    /// Connections accepted.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Requests whose head reached a handler.
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
}

pub(crate) fn spawn_recording_upstream() -> Recording {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let uploads = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (recorded, counter, counted) = (uploads.clone(), connections.clone(), requests.clone());
    let server = HttpServer::new(move || {
        let (recorded, counted) = (recorded.clone(), counted.clone());
        App::new().default_service(web::to(move |mut payload: web::Payload| {
            let (recorded, counted) = (recorded.clone(), counted.clone());
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut bytes = 0usize;
                while let Some(chunk) = payload.next().await {
                    match chunk {
                        Ok(chunk) => bytes += chunk.len(),
                        Err(_) => return HttpResponse::BadRequest().finish(),
                    }
                }
                recorded.lock().unwrap().push(bytes);
                HttpResponse::Ok().json(json!({ "bytes": bytes }))
            }
        }))
    })
    .on_connect(move |_, _| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Recording {
        url: format!("http://127.0.0.1:{port}"),
        uploads,
        connections,
        requests,
    }
}

fn chunked_body(total: usize) -> reqwest::Body {
    let stream = futures_util::stream::iter((0..total.div_ceil(100)).map(move |i| {
        let len = 100.min(total - i * 100);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'u'; len]))
    }));
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn proxied_bodies_over_the_cap_are_refused_with_413_and_never_forwarded_truncated() {
    let Recording {
        url: upstream,
        uploads,
        connections,
        ..
    } = spawn_recording_upstream();
    let app = TestApp::spawn_with(Upstream::Url(upstream), |s| {
        s.proxy.max_body_bytes = 1024;
    })
    .await;
    let browser = app.browser();
    // Content-Length over the cap: refused before anything is sent upstream.
    let res = browser
        .send(
            browser
                .request(Method::POST, "/api/upload")
                .body(vec![b'u'; 2000]),
        )
        .await;
    assert_problem(res, 413, "Content-Length over the cap").await;
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Chunked over the cap: aborted mid-way, 413, and the upstream never got a whole body.
    let res = browser
        .send(
            browser
                .request(Method::POST, "/api/upload")
                .body(chunked_body(3000)),
        )
        .await;
    assert_problem(res, 413, "chunked over the cap").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        uploads.lock().unwrap().is_empty(),
        "{:?}",
        uploads.lock().unwrap()
    );
    // At the cap, both ways: forwarded whole.
    let res = browser
        .send(
            browser
                .request(Method::POST, "/api/upload")
                .body(chunked_body(1024)),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = browser
        .send(
            browser
                .request(Method::POST, "/api/upload")
                .body(vec![b'u'; 1024]),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(*uploads.lock().unwrap(), vec![1024, 1024]);
}

// 9. Request smuggling ---------------------------------------------------------------------------

#[tokio::test]
async fn request_smuggling_cl_te_and_duplicate_content_length_are_refused_and_never_forwarded() {
    let (upstream, connections) = upstream::spawn_counting();
    let app = TestApp::spawn_with(Upstream::Url(upstream), |_| {}).await;
    for request in [
        // CL.TE and TE.CL
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\nConnection: close\r\n\r\n0\r\n\r\n",
        // duplicate Content-Length, different and equal
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde",
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\nConnection: close\r\n\r\nabcde",
        // malformed Content-Length
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\nConnection: close\r\n\r\nabcd",
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\nConnection: close\r\n\r\nabcd",
        // a Transfer-Encoding that is not exactly chunked
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n0\r\n\r\n",
    ] {
        let (status, _) = app.raw_bytes(request).await;
        assert_eq!(status, 400, "{request:?}");
    }
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

// 10. Streams --------------------------------------------------------------------------------------

/// Reads `res`'s body until it ends (`Ok(bytes)`) or fails (`Err(bytes)`), for at most `wait`.
pub async fn read_until_end(
    res: reqwest::Response,
    wait: Duration,
) -> Option<Result<String, String>> {
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
                Err(_) => return false,
            }
        }
        true
    };
    match tokio::time::timeout(wait, read).await {
        Ok(true) => Some(Ok(text)),
        Ok(false) => Some(Err(text)),
        Err(_) => None,
    }
}

async fn stream_app() -> TestApp {
    TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.proxy.timeout = Duration::from_secs(1);
        s.proxy.stream_idle_timeout = Duration::from_secs(2);
        s.proxy.stream_session_check = Duration::from_secs(1);
    })
    .await
}

#[tokio::test]
async fn event_streams_pass_through_unbuffered_outlive_the_response_timeout_and_are_cut_when_idle()
{
    let app = stream_app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let started = Instant::now();
    let res = browser.get("/api/events").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut stream = res.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(3), stream.next())
        .await
        .expect("the first event arrives while the stream goes on")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: tick 0"));
    // Well past PROXY_TIMEOUT_SECS (1 s), events keep coming: only silence ends a stream.
    let mut last = String::new();
    while started.elapsed() < Duration::from_millis(3000) {
        let chunk = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("events keep coming")
            .expect("the stream is still open")
            .unwrap();
        last = String::from_utf8_lossy(&chunk).into_owned();
    }
    assert!(last.contains("data: tick"), "{last}");
    drop(stream);

    // One event, then silence: cut after the 2 s idle timeout.
    let res = browser.get("/api/events-then-silence").await;
    let started = Instant::now();
    let ended = read_until_end(res, Duration::from_secs(6))
        .await
        .expect("the idle stream is cut");
    let took = started.elapsed();
    let text = match ended {
        Ok(t) | Err(t) => t,
    };
    assert!(text.contains("data: hello"), "{text}");
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(5),
        "cut after {took:?}"
    );
}

#[tokio::test]
async fn an_event_stream_is_cut_when_its_session_is_signed_out() {
    let app = stream_app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let res = browser.get("/api/events").await;
    assert_eq!(res.status(), 200);
    let reading = tokio::spawn(read_until_end(res, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !reading.is_finished(),
        "the stream runs while the session lives"
    );
    let signed_out = Instant::now();
    assert_eq!(browser.sign_out().await.status(), 200);
    let ended = reading.await.unwrap().expect("the stream is cut");
    let took = signed_out.elapsed();
    assert!(took < Duration::from_secs(5), "cut {took:?} after sign-out");
    let text = match ended {
        Ok(t) | Err(t) => t,
    };
    assert!(text.contains("data: tick"), "{text}");

    // The same for a session revoked from elsewhere (sign-out everywhere).
    let other = app.browser();
    assert_eq!(
        other
            .sign_in_like_next_auth("ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let res = other.get("/api/events").await;
    let reading = tokio::spawn(read_until_end(res, Duration::from_secs(10)));
    let third = app.browser();
    assert_eq!(
        third
            .sign_in_like_next_auth("ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reading.is_finished());
    assert_eq!(
        third
            .send(third.request(Method::POST, "/api/auth/signout-everywhere"))
            .await
            .status(),
        200
    );
    let revoked = Instant::now();
    let _cut = reading.await.unwrap().expect("the revoked stream is cut");
    assert!(revoked.elapsed() < Duration::from_secs(5));
}

// 11. Database down --------------------------------------------------------------------------------

/// Runs `sql` on the server's maintenance database (not the test's own).
async fn admin(sql: &str) {
    use sqlx::{ConnectOptions, Executor};
    let url = std::env::var("DATABASE_URL").expect("these tests use DATABASE_URL");
    let mut conn = url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap();
    conn.execute(sql).await.unwrap();
}

#[tokio::test]
async fn database_down_fails_closed_with_503_readyz_reports_it_and_everything_recovers() {
    let upstream = upstream::spawn();
    let app = TestApp::spawn_with(Upstream::Url(upstream), |_| {}).await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    assert_eq!(browser.get("/readyz").await.status(), 200);
    let name = app.db.name.clone();
    admin(&format!(
        r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false"#
    ))
    .await;
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    // Past any per-instance session cache (at most 1 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    for res in [
        browser.get("/api/auth/session").await,
        browser.get("/api/me").await,
        browser.get("/workspaces").await,
        app.browser()
            .post_json(
                "/api/auth/signin",
                &json!({"email": "ada@example.com", "password": PASSWORD}),
            )
            .await,
        app.browser()
            .sign_in_like_next_auth("ada@example.com", PASSWORD)
            .await,
        browser.get("/readyz").await,
    ] {
        let url = res.url().path().to_owned();
        let body = assert_problem(res, 503, &url).await;
        assert!(body["request_id"].is_string(), "{url}: {body}");
    }

    admin(&format!(
        r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true"#
    ))
    .await;
    assert_eq!(browser.get("/readyz").await.status(), 200, "ready again");
    assert!(
        browser.session().await.get("user").is_some(),
        "the session is back"
    );
    assert_eq!(
        json_sign_in(&app, "ada@example.com", PASSWORD, None)
            .await
            .status(),
        200,
        "sign-in works again"
    );
}

// 12. Production start-up --------------------------------------------------------------------------

#[test]
fn production_startup_refuses_missing_or_short_secrets_and_a_non_http_backend_url() {
    use frontend_gateway::Settings;
    let good: Vec<(&str, &str)> = vec![
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://app@db:5432/app"),
        (
            "API_SECRET",
            "a production api secret of at least 32 bytes!",
        ),
        (
            "SESSION_KEY",
            "a production session key, which has to be at least sixty-four bytes long",
        ),
        ("PUBLIC_ORIGIN", "https://app.example"),
        ("BACKEND_API_URL", "http://backend-api:8080"),
        (
            "SMTP_URL",
            "smtp://mailer:a-mail-password@mail.example:587?tls=required",
        ),
    ];
    let with = |name: &str, value: Option<&str>| -> Vec<(String, String)> {
        good.iter()
            .filter(|(k, _)| *k != name)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain(value.map(|v| (name.to_owned(), v.to_owned())))
            .collect()
    };
    assert!(
        Settings::from_source(&with("", None)).is_ok(),
        "the good settings start"
    );
    let cases = [
        ("API_SECRET", None),
        ("API_SECRET", Some("short")),
        ("API_SECRET", Some("31 bytes, one short of enough.")),
        ("SESSION_KEY", None),
        ("SESSION_KEY", Some("a session key that is far too short")),
        ("BACKEND_API_URL", Some("ftp://backend-api")),
        ("BACKEND_API_URL", Some("file:///etc/passwd")),
        ("BACKEND_API_URL", Some("backend-api:8080")),
        ("BACKEND_API_URL", Some("javascript:alert(1)")),
        ("BACKEND_API_URL", Some("http://user:pass@backend-api")),
        ("PUBLIC_ORIGIN", None),
        ("TRUSTED_PROXIES", Some("not-an-ip")),
        ("SMTP_URL", None),
        (
            "SMTP_URL",
            Some("smtp://mailer:a-mail-password@mail.example?tls=sometimes"),
        ),
        ("MAIL_FROM", Some("not a mailbox at all")),
    ];
    for (name, value) in cases {
        let err = Settings::from_source(&with(name, value))
            .expect_err(&format!("{name}={value:?} was accepted"));
        assert!(err.to_string().contains(name), "{name}: {err}");
        if let Some(value) = value.filter(|v| v.len() > 8) {
            assert!(
                !err.to_string().contains(value),
                "the value is echoed: {err}"
            );
        }
    }
}
