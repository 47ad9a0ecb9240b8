//! The adversarial suite, second round (issue 12): sessions. SECURITY.md maps each attack to its test.
//! Integration tests: real Postgres, real HTTP, the gateway in-process on port 0.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use frontend_gateway::Settings;
use frontend_gateway::identity::password::HasherLoad;
use reqwest::Method;
use serde_json::{Value, json};
use test_support::hostile::{Hostile, HostileConfig, Twist};
use tokio::io::AsyncWriteExt;
use web_common::env::AppEnv;

use crate::helpers::{ORIGIN, PASSWORD, TestApp, Upstream, location_of, provider_redirect};
use crate::security::{assert_problem, drip};
use crate::upstream;

/// Waits (at most 10 s) until the hasher's load satisfies `ready`; its load then.
async fn hasher_until(app: &TestApp, what: &str, ready: impl Fn(HasherLoad) -> bool) -> HasherLoad {
    let started = Instant::now();
    loop {
        let load = app.hasher.load();
        if ready(load) {
            return load;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: the hasher stays at {load:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sign_in_request(email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD}).to_string();
    format!(
        "POST /api/auth/signin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

// 1. The password hashing queue -------------------------------------------------------------

#[tokio::test]
async fn a_full_hashing_queue_answers_503_with_retry_after_at_once_and_a_client_that_left_never_hashes()
 {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.hash_concurrency = NonZeroUsize::MIN;
        s.sign_in.hash_queue = 1;
        s.sign_in.limits.ip_attempts = 0;
        s.sign_in.limits.account_failures = 2;
    })
    .await;
    app.signed_in("ada@example.com").await;
    let before = app.hasher.load().started;

    // The one hashing permit is taken, by work that runs until the test lets it go.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let hasher = app.hasher.clone();
    let busy = tokio::spawn(async move { hasher.run(move || held.recv()).await });
    hasher_until(&app, "the held hash", |l| l.running == 1).await;

    // A sign-in takes the one place in the queue...
    let mut queued = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    queued
        .write_all(sign_in_request("ada@example.com").as_bytes())
        .await
        .unwrap();
    hasher_until(&app, "the queued sign-in", |l| l.waiting == 1).await;

    // ...so the next one is refused at once (the held hash never ends by itself).
    for path in ["/api/auth/signin", "/api/auth/register"] {
        let body = json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"});
        let started = Instant::now();
        let res =
            tokio::time::timeout(Duration::from_secs(5), app.browser().post_json(path, &body))
                .await
                .unwrap_or_else(|_| panic!("{path} waited for the held hash instead of answering"));
        let took = started.elapsed();
        assert_eq!(res.headers()["retry-after"], "1", "{path}");
        let problem = assert_problem(res, 503, path).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("Retry-After"),
            "{problem}"
        );
        assert!(
            took < Duration::from_secs(2),
            "{path}: answered after {took:?}"
        );
    }

    // Sign-ins refused for a full queue were never a guess: they do not count towards the
    // account's limit (2 here), so the last sign-in below is admitted, not throttled.
    for _ in 0..3 {
        let body = json!({"email": "ada@example.com", "password": "a wrong guess"});
        let res = app.browser().post_json("/api/auth/signin", &body).await;
        assert_problem(res, 503, "a sign-in while the queue is full").await;
    }

    // The queued client goes away: its place is given back (and it does not hash below).
    drop(queued);
    hasher_until(&app, "the client that left", |l| l.waiting == 0).await;
    let next = app.browser();
    let signing_in = tokio::spawn(async move {
        next.post_json(
            "/api/auth/signin",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await
        .status()
    });
    hasher_until(&app, "the next sign-in waits its turn", |l| l.waiting == 1).await;
    release.send(()).unwrap();
    assert_eq!(
        signing_in.await.unwrap(),
        200,
        "admitted, neither refused nor throttled"
    );
    busy.await.unwrap().unwrap().unwrap();
    let after = hasher_until(&app, "everything done", |l| l.running == 0).await;
    assert_eq!(
        after.started - before,
        2,
        "the held work and the last sign-in hashed; the client that left never did"
    );
}

// 2. Sessions per user ------------------------------------------------------------------------

#[tokio::test]
async fn a_sign_in_past_sessions_per_user_max_ends_the_least_recently_used_session() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.session.per_user_max = 3;
        // Requests slide the idle expiry once it is a step (1 s) behind; nothing cached.
        s.session.idle_timeout = Duration::from_secs(20);
        s.session.cache_ttl = Duration::ZERO;
        s.sign_in.limits.ip_attempts = 0;
    })
    .await;
    let (first, id) = app.signed_in("ada@example.com").await;
    let sign_in = || async {
        let browser = app.browser();
        let res = browser
            .post_json(
                "/api/auth/signin",
                &json!({"email": "ada@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), 200);
        browser
    };
    let second = sign_in().await;
    let third = sign_in().await;
    let users_sessions = format!("SELECT count(*) FROM sessions WHERE user_id = '{id}'");
    assert_eq!(app.count(&users_sessions).await, 3);
    // The first session is used again: the second is now the least recently used.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(first.session().await["user"]["id"], id.to_string());

    let fourth = sign_in().await;
    assert_eq!(app.count(&users_sessions).await, 3, "the cap holds");
    assert_eq!(second.session().await, json!({}), "the LRU session ended");
    for (name, browser) in [("first", &first), ("third", &third), ("fourth", &fourth)] {
        assert_eq!(
            browser.session().await["user"]["id"],
            id.to_string(),
            "{name} is still signed in"
        );
    }
    // Someone else's sessions are not counted against ada's.
    let (other, _) = app.signed_in("bob@example.com").await;
    assert!(other.session().await.get("user").is_some());
    assert_eq!(app.count(&users_sessions).await, 3);
}

// 3. Same-origin for what acts on a session ---------------------------------------------------

#[tokio::test]
async fn signout_everywhere_and_password_change_need_a_same_origin_signal_or_the_csrf_token() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |_| {}).await;
    let (ada, _) = app.signed_in("ada@example.com").await;
    let token = ada.csrf_token().await;
    let change = |new: &str| json!({"currentPassword": PASSWORD, "newPassword": new});

    // The cookie alone (no Sec-Fetch-Site, no Origin, no token) is refused, as is a wrong token.
    let refused = [
        (
            "bare password change",
            ada.bare(Method::POST, "/api/auth/password")
                .json(&change("a stolen-cookie password")),
        ),
        (
            "password change, wrong token",
            ada.bare(Method::POST, "/api/auth/password")
                .header("x-csrf-token", "forged")
                .json(&change("a stolen-cookie password")),
        ),
        (
            "bare sign-out everywhere",
            ada.bare(Method::POST, "/api/auth/signout-everywhere"),
        ),
        (
            "sign-out everywhere, wrong token field",
            ada.bare(Method::POST, "/api/auth/signout-everywhere")
                .form(&[("csrfToken", "forged")]),
        ),
    ];
    for (what, req) in refused {
        let body = assert_problem(ada.send(req).await, 403, what).await;
        assert!(
            body["detail"].as_str().unwrap().contains("csrfToken"),
            "{what}: {body}"
        );
    }
    assert!(ada.session().await.get("user").is_some(), "still signed in");
    let hash_before = app.password_hash("ada@example.com").await;

    // The token (field or header) or a same-origin signal lets them through.
    let res = ada
        .send(ada.bare(Method::POST, "/api/auth/password").json(&json!({
            "currentPassword": PASSWORD, "newPassword": "second password", "csrfToken": token
        })))
        .await;
    assert_eq!(res.status(), 200, "password change with the token field");
    assert_ne!(app.password_hash("ada@example.com").await, hash_before);
    let res = ada
        .send(
            ada.bare(Method::POST, "/api/auth/password")
                .header("origin", ORIGIN)
                .json(
                    &json!({"currentPassword": "second password", "newPassword": "third password"}),
                ),
        )
        .await;
    assert_eq!(res.status(), 200, "password change with Origin");
    let res = ada
        .send(
            ada.bare(Method::POST, "/api/auth/signout-everywhere")
                .header("x-csrf-token", &token),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "sign-out everywhere with the token header"
    );
    assert_eq!(ada.session().await, json!({}));

    let (bob, _) = app.signed_in("bob@example.com").await;
    let res = bob
        .send(
            bob.bare(Method::POST, "/api/auth/signout-everywhere")
                .header("sec-fetch-site", "same-origin"),
        )
        .await;
    assert_eq!(res.status(), 200, "sign-out everywhere, same-origin");
    assert_eq!(bob.session().await, json!({}));
}

// 4. The body deadline ------------------------------------------------------------------------

#[tokio::test]
async fn a_body_dripping_past_client_body_timeout_is_408_and_the_connection_closes() {
    let app = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.client_body_timeout = Duration::from_secs(2);
    })
    .await;
    // The head at once, then the body's bytes one a second: it would take 100 s.
    let (text, took) = drip(
        app.port,
        b"POST /api/auth/register HTTP/1.1\r\nHost: a\r\nSec-Fetch-Site: same-origin\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        b" ",
        Duration::from_secs(1),
        Duration::from_secs(15),
    )
    .await;
    let text = text.to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "closed after {took:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);

    // A proxied body streams under the proxy's own limits: slower than the deadline is fine.
    let chunks = futures_util::stream::unfold(0, |i| async move {
        if i == 4 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(900)).await;
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789")),
            i + 1,
        ))
    });
    let browser = app.browser();
    let res = browser
        .send(
            browser
                .request(Method::POST, "/api/upload")
                .body(reqwest::Body::wrap_stream(chunks)),
        )
        .await;
    assert_eq!(res.status(), 200, "a 3.6 s proxied upload is not cut");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(echo["bytes"], 40);
}

// 5. The origin in production -----------------------------------------------------------------

/// Production settings with `PUBLIC_ORIGIN` = `origin`, plus `extra`.
fn production(origin: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/unused"),
        (
            "API_SECRET",
            "a production api secret of at least 32 bytes!",
        ),
        (
            "SESSION_KEY",
            "a production session key, which has to be at least sixty-four bytes long",
        ),
        ("PUBLIC_ORIGIN", origin),
        ("SMTP_URL", "smtp://127.0.0.1:1"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

#[test]
fn production_refuses_a_plain_http_public_origin_unless_loopback_or_allowed() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontend-gateway"))
        .current_dir(std::env::temp_dir())
        .env_clear()
        .envs(production("http://example.com", &[]))
        .output()
        .expect("the gateway binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("PUBLIC_ORIGIN"), "{stderr}");
    assert!(stderr.contains("ALLOW_INSECURE_ORIGIN"), "{stderr}");

    for origin in ["http://example.com", "http://app.example:8080"] {
        let err = Settings::from_source(&production(origin, &[])).unwrap_err();
        assert!(
            err.to_string().starts_with("PUBLIC_ORIGIN"),
            "{origin}: {err}"
        );
        let err = Settings::from_source(&production(origin, &[("ALLOW_INSECURE_ORIGIN", "false")]))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("PUBLIC_ORIGIN"),
            "{origin}: {err}"
        );
    }
    for origin in [
        "https://app.example",
        "http://localhost:3000",
        "http://127.0.0.1:3000",
        "http://[::1]:3000",
    ] {
        let s = Settings::from_source(&production(origin, &[]))
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert!(s.app_env.is_production());
    }
    Settings::from_source(&production(
        "http://example.com",
        &[("ALLOW_INSECURE_ORIGIN", "true")],
    ))
    .expect("allowed explicitly");
    // Development takes any origin.
    let dev: Vec<_> = production("http://example.com", &[])
        .into_iter()
        .filter(|(k, _)| k != "APP_ENV")
        .collect();
    Settings::from_source(&dev).expect("development");
}

/// The `Strict-Transport-Security` of a 200, a 404 and a proxied answer of `app`.
async fn hsts_of(app: &TestApp) -> Vec<(String, Option<String>)> {
    let browser = app.browser();
    let mut seen = Vec::new();
    for (what, path) in [
        ("200", "/healthz"),
        ("404", "/api/auth/no-such-action"),
        ("404 page", "/no-such-page"),
        ("proxied", "/api/me"),
    ] {
        let res = browser.get(path).await;
        let expected = if what.starts_with("404") { 404 } else { 200 };
        assert_eq!(res.status(), expected, "{path}");
        let hsts = res
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.push((what.to_owned(), hsts));
    }
    seen
}

#[tokio::test]
async fn hsts_is_sent_on_every_answer_of_an_https_production_origin_and_never_in_development() {
    let production = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.app_env = AppEnv::Production;
        s.public_origin = "https://gateway.test".parse().unwrap();
    })
    .await;
    for (what, hsts) in hsts_of(&production).await {
        assert_eq!(hsts.as_deref(), Some("max-age=31536000"), "{what}");
    }
    let development = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.public_origin = "https://gateway.test".parse().unwrap();
    })
    .await;
    let plain_production = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.app_env = AppEnv::Production;
        s.public_origin = "http://localhost:3000".parse().unwrap();
    })
    .await;
    for app in [&development, &plain_production] {
        for (what, hsts) in hsts_of(app).await {
            assert_eq!(hsts, None, "{what}");
        }
    }
}

// 6. The store never brings a session back ----------------------------------------------------

const CLIENT_ID: &str = "gateway-sessions-suite";
const CLIENT_SECRET: &str = "the sessions suite's secret at the provider";

#[tokio::test]
async fn a_session_ended_while_a_request_renews_its_key_is_not_revived() {
    let idp = Hostile::start(HostileConfig::new(CLIENT_ID, CLIENT_SECRET)).await;
    idp.set_claims(
        json!({"sub": "ada-sub", "email": "ada@example.com", "email_verified": true, "name": "Ada"}),
        json!({}),
    );
    let app = TestApp::spawn_with_auth(&[
        ("OIDC_ISSUER", &idp.issuer()),
        ("OIDC_CLIENT_ID", CLIENT_ID),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
    ])
    .await;
    let (ada, _) = app.signed_in("ada@example.com").await;
    let back = provider_redirect(&ada.authorization_url("oidc", &[("link", "true")]).await).await;
    // The link's callback waits on the provider's token endpoint; meanwhile ada's sessions are
    // ended (by another instance signing her out everywhere, say: straight in the table).
    idp.twist(Twist::SlowToken(Duration::from_secs(2)));
    let ending = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        sqlx::query("DELETE FROM sessions")
            .execute(&app.db.pool)
            .await
            .unwrap();
    };
    let (res, ()) = tokio::join!(ada.follow(&back), ending);
    // The link itself was asked for by a live session and is done; its key rotation (a state
    // change) finds no row and writes none.
    assert_eq!(location_of(&res), format!("{ORIGIN}/workspaces"));
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1);
    assert_eq!(app.session_rows().await, 0, "no session row came back");
    assert_eq!(ada.session().await, json!({}), "the cookie is signed out");
    assert_eq!(app.session_rows().await, 0);
}
