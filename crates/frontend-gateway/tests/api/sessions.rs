//! Server-side sessions: fixation, revocation, expiry, what the table stores.

use std::time::Duration;

use serde_json::json;
use web_common::db::Job;

use crate::helpers::{PASSWORD, TestApp, Upstream};

async fn app() -> TestApp {
    TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |_| {}).await
}

#[tokio::test]
async fn signing_in_issues_a_new_session_cookie_and_deletes_the_old_session() {
    let app = app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let before = browser.cookie("session").unwrap();
    let res = browser
        .sign_in_like_next_auth("ada@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 200);
    let after = browser.cookie("session").unwrap();
    assert_ne!(before, after, "the session id changes at sign-in");
    assert_eq!(
        app.session_rows().await,
        1,
        "the pre-sign-in session is gone"
    );
    // The old cookie no longer names a session.
    let old = app.browser();
    old.set_cookie("session", &before);
    assert_eq!(old.session().await, json!({}));
}

#[tokio::test]
async fn a_copied_cookie_stops_working_after_sign_out() {
    let app = app().await;
    let (browser, id) = app.signed_in("ada@example.com").await;
    let stolen = app.browser();
    stolen.set_cookie("session", &browser.cookie("session").unwrap());
    assert_eq!(stolen.session().await["user"]["id"], id.to_string());
    assert_eq!(browser.sign_out().await.status(), 200);
    assert_eq!(stolen.session().await, json!({}));
}

#[tokio::test]
async fn the_table_stores_a_hash_of_the_key_and_the_user_id() {
    let app = app().await;
    let (_, id) = app.signed_in("ada@example.com").await;
    let (hash_len, user_id, state, idle_ok): (i32, Option<uuid::Uuid>, serde_json::Value, bool) = sqlx::query_as(
        "SELECT octet_length(key_hash), user_id, state, idle_expires_at <= expires_at FROM sessions",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(hash_len, 32);
    assert_eq!(user_id, Some(id));
    assert!(state.get("user").is_some());
    assert!(idle_ok);
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions() {
    let app = app().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    sqlx::query("DELETE FROM users")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(app.session_rows().await, 0);
    assert_eq!(browser.session().await, json!({}));
}

#[tokio::test]
async fn an_idle_session_expires() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.session.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    assert!(browser.session().await.get("user").is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(browser.session().await, json!({}));
}

#[tokio::test]
async fn a_busy_session_still_ends_at_its_absolute_expiry() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.session.idle_timeout = Duration::from_secs(2);
        s.session.absolute_timeout = Duration::from_secs(3);
    })
    .await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(
            browser.session().await.get("user").is_some(),
            "activity keeps it alive"
        );
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(browser.session().await, json!({}));
}

#[tokio::test]
async fn expired_rows_are_cleaned_up() {
    let app = app().await;
    app.signed_in("ada@example.com").await;
    app.signed_in("bob@example.com").await;
    sqlx::query(
        "UPDATE sessions SET idle_expires_at = now() - interval '1 second'
         WHERE user_id = (SELECT id FROM users WHERE email = 'ada@example.com')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    // While another instance sweeps (holds the job's lock), this one skips its turn.
    let mut other = app.db.pool.acquire().await.unwrap();
    Job::SessionSweep.hold(&mut other).await.unwrap();
    assert_eq!(app.sessions().delete_expired().await.unwrap(), None);
    assert_eq!(app.session_rows().await, 2);
    Job::SessionSweep.release(&mut other).await.unwrap();
    let deleted = app.sessions().delete_expired().await.unwrap();
    assert_eq!(deleted, Some(1));
    assert_eq!(app.session_rows().await, 1);
}

#[tokio::test]
async fn production_cookies_are_secure_with_the_host_prefix() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.app_env = web_common::env::AppEnv::Production;
    })
    .await;
    let browser = app.browser();
    let csrf = browser.get("/api/auth/csrf").await;
    let csrf_cookie = csrf.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf_cookie.starts_with("__Host-next-auth.csrf-token="),
        "{csrf_cookie}"
    );
    assert!(csrf_cookie.contains("Secure"), "{csrf_cookie}");
    let ada = app.registered("ada@example.com", PASSWORD, "Ada").await;
    app.verify(ada).await;
    let res = browser
        .post_json(
            "/api/auth/signin",
            &serde_json::json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let session_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-session="))
        .expect("a __Host- session cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            session_cookie.contains(flag),
            "{session_cookie} lacks {flag}"
        );
    }
    assert!(!session_cookie.contains("Domain"), "{session_cookie}");
    assert!(browser.session().await.get("user").is_some());
}

// The database going down (fail closed, then recover): see `security.rs`.
