//! The mail sender at shutdown: the message it is sending when the gateway stops is finished
//! and recorded as sent, and no other row is claimed (none is left leased by a gateway that is
//! gone). Against an SMTP server that takes its time to accept a message, so the stop comes
//! mid-send.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use frontend_gateway::Settings;
use frontend_gateway::mail::Sender;
use serde_json::json;
use test_support::TestDatabase;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use web_common::notify::Hub;
use web_common::outbox::{self, MailKind};
use web_common::shutdown::Shutdown;

/// How long the server waits before it accepts a message's data.
const ACCEPT_AFTER: Duration = Duration::from_millis(1500);

/// A minimal SMTP server (RFC 5321's commands, no extensions) that accepts every message
/// [`ACCEPT_AFTER`] its data ends; returns its port, the count of messages it accepted, and
/// the count of messages whose data it has received (accepted or not yet).
async fn slow_smtp() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, received) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counters = (accepted.clone(), received.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (accepted, received) = (counters.0.clone(), counters.1.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 slow.test ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        received.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(ACCEPT_AFTER).await;
                        accepted.fetch_add(1, Ordering::SeqCst);
                        b"250 queued\r\n"
                    } else {
                        let command = line.to_ascii_uppercase();
                        if command.starts_with("EHLO") || command.starts_with("HELO") {
                            b"250 slow.test\r\n"
                        } else if command.starts_with("DATA") {
                            in_data = true;
                            b"354 go on\r\n"
                        } else if command.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 ok\r\n"
                        }
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted, received)
}

#[tokio::test]
async fn at_shutdown_the_sender_finishes_the_message_it_is_sending_and_claims_no_other() {
    let db = TestDatabase::new().await;
    let (port, accepted, received) = slow_smtp().await;
    let smtp = format!("smtp://127.0.0.1:{port}");
    let settings = Settings::from_source(&[
        ("DATABASE_URL", "postgres://unused@localhost/unused"),
        ("API_SECRET", "mail-shutdown-test api secret, long enough"),
        ("SMTP_URL", smtp.as_str()),
    ])
    .unwrap();
    let mut ids = Vec::new();
    for name in ["First", "Second"] {
        let mut tx = db.pool.begin().await.unwrap();
        let data = json!({"name": name, "link": "/api/auth/verify-email?token=t"});
        let to = format!("{}@example.com", name.to_lowercase());
        ids.push(
            outbox::enqueue(&mut tx, MailKind::VerifyEmail, &to, data)
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    // The rows are due at once: the sender needs no notification (its hub is never run).
    let hub = Hub::new(db.options.clone(), &[outbox::CHANNEL]);
    let sender = Sender::new(db.pool.clone(), &hub, settings.mail, settings.public_origin);
    let shutdown = Shutdown::new();
    let running = tokio::spawn(sender.run(shutdown.clone()));
    // Stop while the first message is being sent (its data is in, its answer not yet).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nothing was sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "stopped mid-send");
    shutdown.stop();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the sender stops after the message")
        .unwrap();
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the message was finished"
    );
    assert_eq!(received.load(Ordering::SeqCst), 1, "and no other started");
    let mut rows: Vec<(bool, bool)> = sqlx::query_as(
        "SELECT sent_at IS NOT NULL, locked_until IS NOT NULL FROM mail_outbox WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [(false, false), (true, false)],
        "one recorded as sent; the other unsent and free for another instance"
    );
}
