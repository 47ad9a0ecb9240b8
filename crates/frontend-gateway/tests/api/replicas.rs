//! Several gateway instances on one database, as replicas behind a load balancer: the limits
//! are shared (N instances allow what one allows), an ended session is refused by every
//! instance at once (not after the cache's time bound) and its streams there are cut, and the
//! background jobs run on one instance at a time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use frontend_gateway::identity::throttle::{Limits, Refusal, Scope, Throttle};
use frontend_gateway::identity::upkeep;
use serde_json::json;
use test_support::TestDatabase;
use web_common::db::Job;

use crate::helpers::{PASSWORD, TestApp, Upstream};
use crate::security::read_until_end;
use crate::security_emails::limits;
use crate::upstream;

/// A JSON sign-in at the instance at `address`.
async fn sign_in_at(address: &str, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{address}/api/auth/signin"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_account_limit_is_reached_after_the_same_failures_spread_over_two_instances() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.limits = limits(4, 0);
    })
    .await;
    app.signed_in("ada@example.com").await;
    let second = app.second_instance().await;
    for (i, at) in [&app.address, &second, &app.address, &second]
        .into_iter()
        .enumerate()
    {
        let res = sign_in_at(at, "ada@example.com", "wrong password").await;
        assert_eq!(res.status(), 401, "failure {i} at {at}");
    }
    for at in [&app.address, &second] {
        let res = sign_in_at(at, "ADA@example.com", PASSWORD).await;
        assert_eq!(res.status(), 429, "the fifth attempt, anywhere, even right");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn parallel_guesses_on_two_instances_never_overshoot_the_account_limit() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.limits = limits(5, 0);
    })
    .await;
    app.signed_in("ada@example.com").await;
    let second = app.second_instance().await;
    let guesses = (0..24).map(|i| {
        let at = if i % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        tokio::spawn(async move {
            sign_in_at(&at, "ada@example.com", "wrong password")
                .await
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "exactly the limit's guesses reach argon2: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 19);
}

#[tokio::test]
async fn the_client_and_mail_limits_are_shared_too() {
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.sign_in.limits = limits(0, 3);
        s.sign_in.mail_limits = limits(2, 0);
    })
    .await;
    let second = app.second_instance().await;
    for (email, at) in [
        ("a@example.com", &app.address),
        ("b@example.com", &second),
        ("c@example.com", &app.address),
    ] {
        assert_eq!(sign_in_at(at, email, PASSWORD).await.status(), 401);
    }
    assert_eq!(
        sign_in_at(&second, "d@example.com", PASSWORD)
            .await
            .status(),
        429
    );
    let register = |at: String| async move {
        reqwest::Client::new()
            .post(format!("{at}/api/auth/register"))
            .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(register(app.address.clone()).await, 202);
    assert_eq!(register(second.clone()).await, 202);
    assert_eq!(register(app.address.clone()).await, 429);
}

#[tokio::test]
async fn a_signed_out_session_is_refused_by_another_instance_at_once() {
    // The cache's time bound at its largest: only the notice can beat it.
    let app = TestApp::spawn_with(Upstream::Url("http://127.0.0.1:9".into()), |s| {
        s.session.cache_ttl = Duration::from_millis(500);
    })
    .await;
    let second = app.second_instance().await;
    for round in 0..5 {
        let (browser, _) = app.signed_in(&format!("user{round}@example.com")).await;
        let there = browser.at(&second);
        // Cached on the second instance right now: 500 ms to live.
        assert!(there.session().await.get("user").is_some());
        assert_eq!(browser.sign_out().await.status(), 200);
        let signed_out = Instant::now();
        loop {
            if there.session().await == json!({}) {
                break;
            }
            assert!(
                signed_out.elapsed() < Duration::from_millis(250),
                "round {round}: still signed in on the other instance after {:?}",
                signed_out.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test]
async fn sign_out_everywhere_cuts_the_streams_of_another_instance_at_once() {
    let app = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |s| {
        s.proxy.timeout = Duration::from_secs(1);
        s.proxy.stream_idle_timeout = Duration::from_secs(20);
        // Far longer than the test: only the notice can cut the stream in time.
        s.proxy.stream_session_check = Duration::from_secs(60);
    })
    .await;
    let second = app.second_instance().await;
    let (browser, _) = app.signed_in("ada@example.com").await;
    let res = browser.at(&second).get("/api/events").await;
    assert_eq!(res.status(), 200);
    let reading = tokio::spawn(read_until_end(res, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        !reading.is_finished(),
        "the stream runs while the session lives"
    );
    let res = browser
        .send(browser.request(reqwest::Method::POST, "/api/auth/signout-everywhere"))
        .await;
    assert_eq!(res.status(), 200);
    let revoked = Instant::now();
    let cut = reading.await.unwrap().expect("the stream is cut");
    assert!(
        revoked.elapsed() < Duration::from_secs(2),
        "cut {:?} after the sign-out elsewhere",
        revoked.elapsed()
    );
    let text = match cut {
        Ok(t) | Err(t) => t,
    };
    assert!(text.contains("data: tick"), "{text}");
}

#[tokio::test]
async fn the_identity_upkeep_runs_on_one_instance_at_a_time() {
    let db = TestDatabase::new().await;
    sqlx::query(
        "INSERT INTO throttle (scope, key, events, updated_at) \
         VALUES ('signin:ip', '\\x7f000001', '{}', now() - interval '2 hours')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut busy = db.pool.acquire().await.unwrap();
    Job::IdentityUpkeep.hold(&mut busy).await.unwrap();
    let longest = Duration::from_secs(3600);
    assert_eq!(upkeep::clean_up(&db.pool, longest).await.unwrap(), None);
    Job::IdentityUpkeep.release(&mut busy).await.unwrap();
    assert_eq!(upkeep::clean_up(&db.pool, longest).await.unwrap(), Some(1));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM throttle")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn throttled(refused: Result<(), Refusal>) -> u64 {
    match refused {
        Err(Refusal::Throttled(t)) => t.retry_after_secs(),
        other => panic!("expected a throttled attempt, got {other:?}"),
    }
}

#[tokio::test]
async fn the_windows_count_per_account_and_per_client_and_forgive_a_success() {
    let db = TestDatabase::new().await;
    let t = Throttle::new(db.pool.clone(), limits(3, 4), Scope::SignIn);
    for _ in 0..3 {
        t.attempt("ada@example.com", ip("192.0.2.1")).await.unwrap();
    }
    let wait = throttled(t.attempt("ada@example.com", ip("192.0.2.9")).await);
    assert!((800..=900).contains(&wait), "Retry-After: {wait}");
    t.attempt("bob@example.com", ip("192.0.2.1")).await.unwrap();
    // The client's fifth: refused, and nothing recorded for the account.
    let wait = throttled(t.attempt("carol@example.com", ip("192.0.2.1")).await);
    assert!(wait <= 60, "Retry-After: {wait}");
    t.attempt("carol@example.com", ip("192.0.2.2"))
        .await
        .unwrap();
    // A success forgives the account, not the client.
    t.succeeded("ada@example.com").await;
    t.attempt("ada@example.com", ip("192.0.2.3")).await.unwrap();
    // A withdrawn attempt (no verdict) gives its place back.
    let w = Throttle::new(db.pool.clone(), limits(1, 0), Scope::SignIn);
    w.attempt("dan@example.com", None).await.unwrap();
    w.withdraw("dan@example.com").await;
    w.attempt("dan@example.com", None).await.unwrap();
    throttled(w.attempt("dan@example.com", None).await);
}

#[tokio::test]
async fn ipv6_clients_count_per_64_mapped_ipv4_as_ipv4_and_zero_is_off() {
    let db = TestDatabase::new().await;
    let t = Throttle::new(db.pool.clone(), limits(100, 2), Scope::SignIn);
    t.attempt("a@x.io", ip("2001:db8:1:2::1")).await.unwrap();
    t.attempt("b@x.io", ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        .await
        .unwrap();
    throttled(t.attempt("c@x.io", ip("2001:db8:1:2::abcd")).await);
    t.attempt("c@x.io", ip("2001:db8:1:3::1")).await.unwrap();
    t.attempt("a@x.io", ip("192.0.2.7")).await.unwrap();
    t.attempt("b@x.io", ip("::ffff:192.0.2.7")).await.unwrap();
    throttled(t.attempt_from(ip("192.0.2.7")).await);

    let off = Throttle::new(db.pool.clone(), limits(0, 0), Scope::Mail);
    for _ in 0..50 {
        off.attempt("a@x.io", ip("192.0.2.1")).await.unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM throttle WHERE scope LIKE 'mail:%'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "a window that is off stores nothing");
}

#[tokio::test]
async fn attempts_leave_the_window_when_it_passes_and_keys_stay_small() {
    let db = TestDatabase::new().await;
    let short = Limits {
        account_failures: 1,
        account_window: Duration::from_millis(300),
        ip_attempts: 0,
        ip_window: Duration::from_secs(60),
    };
    let t = Throttle::new(db.pool.clone(), short, Scope::SignIn);
    let huge = "x".repeat(64 * 1024);
    t.attempt(&huge, None).await.unwrap();
    throttled(t.attempt(&huge, None).await);
    tokio::time::sleep(Duration::from_millis(350)).await;
    t.attempt(&huge, None).await.unwrap();
    let (size, events): (i32, i32) =
        sqlx::query_as("SELECT octet_length(key), cardinality(events) FROM throttle")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        (size, events),
        (16, 1),
        "a fixed-size key, at most `limit` attempts"
    );
}
