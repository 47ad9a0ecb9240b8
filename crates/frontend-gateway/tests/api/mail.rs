//! The mail wing against a real SMTP server (maildev): every outbox row becomes exactly one
//! delivered message, through outages, restarts and several instances.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::TestDatabase;
use test_support::smtp::{Mail, MailSink};
use uuid::Uuid;
use web_common::outbox::{self, MailKind};

use crate::helpers::{ORIGIN, TestApp, Upstream};

/// Nothing is proxied in these tests.
fn no_upstream() -> Upstream {
    Upstream::Url("http://127.0.0.1:9".into())
}

/// The sender of every message: the default, on the public origin's domain.
const FROM: &str = "Gateway <no-reply@gateway.test>";
const DOMAIN: &str = "gateway.test";

/// Queues one message in a transaction of its own (committed: the notification goes out).
async fn enqueue(pool: &PgPool, kind: MailKind, to: &str, data: Value) -> Uuid {
    let mut tx = pool.begin().await.unwrap();
    let id = outbox::enqueue(&mut tx, kind, to, data).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// A row's state.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    sent: bool,
    data: Value,
    attempts: i32,
    last_error: Option<String>,
    locked: bool,
    given_up: bool,
}

async fn row(pool: &PgPool, id: Uuid) -> Row {
    sqlx::query_as(
        "SELECT sent_at IS NOT NULL AS sent, data, attempts, last_error, \
                locked_until IS NOT NULL AS locked, next_attempt_at = 'infinity' AS given_up \
         FROM mail_outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits (up to `timeout`) until `check` holds for the row; panics with the row otherwise.
async fn wait_for_row(pool: &PgPool, id: Uuid, timeout: Duration, check: impl Fn(&Row) -> bool) {
    let started = Instant::now();
    loop {
        let r = row(pool, id).await;
        if check(&r) {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "row {id} after {timeout:?}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the sink holds `n` messages, then a little longer to see that no more come;
/// returns them.
async fn exactly(sink: &MailSink, n: usize) -> Vec<Mail> {
    let started = Instant::now();
    while sink.messages().await.len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} of {n} messages arrived",
            sink.messages().await.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = sink.messages().await;
    assert_eq!(messages.len(), n, "{messages:#?}");
    messages
}

fn message_id(id: Uuid) -> String {
    format!("<{id}@{DOMAIN}>")
}

#[tokio::test]
async fn every_kind_is_delivered_with_its_recipient_sender_subject_message_id_and_links() {
    let (app, sink) = TestApp::spawn_with_mail(no_upstream(), |_| {}).await;
    let pool = &app.db.pool;
    let cases = [
        (
            MailKind::VerifyEmail,
            "verify@example.com",
            json!({"name": "Ada <Lovelace>", "link": "/api/auth/verify-email?token=tok-verify"}),
            "Confirm your email address",
            vec!["/api/auth/verify-email?token=tok-verify"],
        ),
        (
            MailKind::AccountExists,
            "exists@example.com",
            json!({"name": "Bea", "signin_link": "/signin", "reset_link": "/reset-password"}),
            "You already have an account",
            vec!["/signin", "/reset-password"],
        ),
        (
            MailKind::PasswordReset,
            "reset@example.com",
            json!({"name": "Cy", "link": "/reset-password?token=tok-reset"}),
            "Reset your password",
            vec!["/reset-password?token=tok-reset"],
        ),
        (
            MailKind::SignInLink,
            "link@example.com",
            json!({"link": "/api/auth/signin-link?token=tok-link"}),
            "Your sign-in link",
            vec!["/api/auth/signin-link?token=tok-link"],
        ),
        (
            MailKind::Invitation,
            "invitee@example.com",
            json!({"workspace": "Acme & Co", "inviter": "Dee", "role": "admin",
                   "expires_at": "2026-12-21T18:00:00Z", "link": "/invitations"}),
            "Dee invited you to Acme & Co",
            vec!["/invitations"],
        ),
    ];
    let mut ids = Vec::new();
    for (kind, to, data, _, _) in &cases {
        ids.push(enqueue(pool, *kind, to, data.clone()).await);
    }

    let messages = exactly(&sink, cases.len()).await;

    for ((kind, to, _, subject, paths), id) in cases.iter().zip(&ids) {
        let mail = messages
            .iter()
            .find(|m| m.to == [*to])
            .unwrap_or_else(|| panic!("{kind:?}: nothing to {to}"));
        assert_eq!(mail.from, FROM, "{kind:?}");
        assert_eq!(mail.subject, *subject, "{kind:?}");
        assert_eq!(mail.message_id, message_id(*id), "{kind:?}");
        assert!(
            mail.headers["content-type"].starts_with("multipart/alternative"),
            "{kind:?}: {:?}",
            mail.headers
        );
        let expected: Vec<String> = paths.iter().map(|p| format!("{ORIGIN}{p}")).collect();
        assert_eq!(mail.links(), expected, "{kind:?}: {}", mail.text);
        for link in &expected {
            let escaped = link.replace('&', "&amp;");
            assert!(
                mail.html.contains(&format!("href=\"{escaped}\"")),
                "{kind:?}: {}",
                mail.html
            );
        }
        let r = row(pool, *id).await;
        assert!(r.sent && !r.locked && !r.given_up, "{kind:?}: {r:?}");
        assert_eq!(r.data, json!({}), "the tokens are gone");
        assert_eq!(r.attempts, 1);
    }
    // Every value is escaped in the HTML part.
    let verify = messages
        .iter()
        .find(|m| m.to == ["verify@example.com"])
        .unwrap();
    assert!(
        verify.text.starts_with("Hello Ada <Lovelace>,"),
        "{}",
        verify.text
    );
    assert!(
        verify.html.contains("Hello Ada &lt;Lovelace&gt;,"),
        "{}",
        verify.html
    );
    let invitation = messages
        .iter()
        .find(|m| m.to == ["invitee@example.com"])
        .unwrap();
    assert!(
        invitation.text.contains("2026-12-21 18:00 UTC"),
        "{}",
        invitation.text
    );
    assert!(
        invitation.html.contains("Acme &amp; Co"),
        "{}",
        invitation.html
    );
}

#[tokio::test]
async fn while_the_smtp_server_is_down_rows_wait_and_each_is_delivered_once_it_is_back() {
    let (app, mut sink) = TestApp::spawn_with_mail(no_upstream(), |_| {}).await;
    let pool = &app.db.pool;
    sink.stop();
    let mut ids = Vec::new();
    for n in 0..3 {
        let data = json!({"link": format!("/api/auth/signin-link?token={n}")});
        ids.push(
            enqueue(
                pool,
                MailKind::SignInLink,
                &format!("u{n}@example.com"),
                data,
            )
            .await,
        );
    }
    for id in &ids {
        wait_for_row(pool, *id, Duration::from_secs(10), |r| r.attempts >= 2).await;
        let r = row(pool, *id).await;
        assert!(!r.sent && !r.given_up, "{r:?}");
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("SMTP")),
            "{r:?}"
        );
        assert_ne!(r.data, json!({}), "kept for the retry");
    }

    sink.start_again().await;

    let messages = exactly(&sink, 3).await;
    let delivered: BTreeSet<String> = messages.iter().map(|m| m.message_id.clone()).collect();
    let expected: BTreeSet<String> = ids.iter().map(|id| message_id(*id)).collect();
    assert_eq!(delivered, expected);
    for id in &ids {
        let r = row(pool, *id).await;
        assert!(r.sent && r.data == json!({}), "{r:?}");
    }
}

#[tokio::test]
async fn a_row_enqueued_while_no_gateway_runs_is_sent_when_one_starts() {
    let db = TestDatabase::new().await;
    let id = enqueue(
        &db.pool,
        MailKind::PasswordReset,
        "early@example.com",
        json!({"name": "Early", "link": "/reset-password?token=t"}),
    )
    .await;
    let pool = db.pool.clone();

    // A poll interval far longer than the test: only the start-up pass can send it.
    let (_app, sink) = TestApp::spawn_with_mail_on(db, no_upstream(), |s| {
        s.mail.poll_interval = Duration::from_secs(300);
    })
    .await;

    let mail = sink
        .wait_for(|m| m.to == ["early@example.com"], Duration::from_secs(10))
        .await;
    assert_eq!(mail.message_id, message_id(id));
    assert!(row(&pool, id).await.sent);
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_message_exactly_once() {
    let (app, sink) = TestApp::spawn_with_mail(no_upstream(), |_| {}).await;
    app.second_instance().await;
    let pool = &app.db.pool;
    let mut ids = Vec::new();
    for n in 0..20 {
        let data = json!({"link": format!("/api/auth/signin-link?token={n}")});
        ids.push(
            enqueue(
                pool,
                MailKind::SignInLink,
                &format!("n{n}@example.com"),
                data,
            )
            .await,
        );
    }

    let messages = exactly(&sink, 20).await;

    let delivered: BTreeSet<String> = messages.iter().map(|m| m.message_id.clone()).collect();
    let expected: BTreeSet<String> = ids.iter().map(|id| message_id(*id)).collect();
    assert_eq!(delivered, expected, "each one once");
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND attempts = 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(sent, 20);
}

#[tokio::test]
async fn a_notification_wakes_the_sender_long_before_its_next_poll() {
    let (app, sink) = TestApp::spawn_with_mail(no_upstream(), |s| {
        s.mail.poll_interval = Duration::from_secs(300);
    })
    .await;
    let pool = &app.db.pool;
    // Wait until the sender listens (its connection's last statement).
    let started = Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN %mail_outbox%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if listening > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sender never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the start-up pass, so only the notification can wake it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let queued = Instant::now();
    let id = enqueue(
        pool,
        MailKind::SignInLink,
        "fast@example.com",
        json!({"link": "/x"}),
    )
    .await;
    let mail = sink
        .wait_for(|m| m.to == ["fast@example.com"], Duration::from_secs(5))
        .await;

    assert_eq!(mail.message_id, message_id(id));
    assert!(
        queued.elapsed() < Duration::from_secs(5),
        "{:?}",
        queued.elapsed()
    );
}

#[tokio::test]
async fn a_row_that_cannot_be_rendered_is_retried_then_given_up_without_holding_up_others() {
    let (app, sink) = TestApp::spawn_with_mail(no_upstream(), |_| {}).await;
    let pool = &app.db.pool;
    let bad = enqueue(
        pool,
        MailKind::VerifyEmail,
        "bad@example.com",
        json!({"name": "B"}),
    )
    .await;
    let foreign = enqueue(
        pool,
        MailKind::SignInLink,
        "foreign@example.com",
        json!({"link": "https://evil.example/steal"}),
    )
    .await;
    let good = enqueue(
        pool,
        MailKind::SignInLink,
        "good@example.com",
        json!({"link": "/ok"}),
    )
    .await;

    let mail = sink
        .wait_for(|m| m.to == ["good@example.com"], Duration::from_secs(10))
        .await;
    assert_eq!(mail.message_id, message_id(good));
    wait_for_row(pool, bad, Duration::from_secs(3), |r| r.attempts >= 1).await;
    let r = row(pool, bad).await;
    assert!(!r.sent, "{r:?}");
    assert_eq!(
        r.last_error.as_deref(),
        Some("cannot render: data.link is missing")
    );

    // Five permanent failures (200 ms, doubling, at most 2 s apart), then it is given up.
    for id in [bad, foreign] {
        wait_for_row(pool, id, Duration::from_secs(15), |r| r.given_up).await;
        let r = row(pool, id).await;
        assert_eq!(r.attempts, 5, "{r:?}");
        assert!(!r.sent && !r.locked && r.data == json!({}), "{r:?}");
    }
    assert_eq!(sink.messages().await.len(), 1, "nothing but the good one");
}

#[tokio::test]
async fn without_an_smtp_url_messages_are_logged_and_marked_sent() {
    let app = TestApp::spawn_with(no_upstream(), |s| {
        assert!(s.mail.smtp.is_none(), "development without SMTP_URL");
        s.mail.poll_interval = Duration::from_millis(200);
    })
    .await;
    let pool = &app.db.pool;
    let id = enqueue(
        pool,
        MailKind::VerifyEmail,
        "dev@example.com",
        json!({"name": "Dev", "link": "/api/auth/verify-email?token=t"}),
    )
    .await;

    wait_for_row(pool, id, Duration::from_secs(10), |r| r.sent).await;
    let r = row(pool, id).await;
    assert_eq!(r.data, json!({}));
    assert_eq!(r.attempts, 1);
}
