//! Restarts lose nothing: the gateway binary, run as a child process in front of an upstream
//! this test controls, stopped with a real SIGTERM. `/readyz` answers 503 at once while the
//! rest is still served for the drain; then new connections are refused, an event stream ends
//! cleanly, a slow request in flight still gets its whole answer, and the process exits 0.
//! Also: `MIGRATE_ON_START=false` starts on a migrated database, and refuses one that is not.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use test_support::TestDatabase;
use test_support::service::{ServiceProcess, run_to_end};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_frontend-gateway");
const API_SECRET: &str = "restarts-test api secret, long enough for HS256";
const DRAIN: Duration = Duration::from_secs(2);
const DEADLINE_SECS: &str = "20";
/// How long the upstream takes to answer `/slow`: past the drain, well within the deadline.
const SLOW: Duration = Duration::from_secs(4);

/// An upstream speaking plain HTTP/1.1: `GET /slow` answers `slow answer` after [`SLOW`];
/// `GET /events` is an event stream (chunked) that sends one event and then stays open
/// forever; anything else answers `fast` at once.
async fn upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let answer = |body: &str| {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    if head.starts_with("GET /slow ") {
                        tokio::time::sleep(SLOW).await;
                        let _ = stream.write_all(answer("slow answer").as_bytes()).await;
                    } else if head.starts_with("GET /events ") {
                        let _ = stream
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                                  transfer-encoding: chunked\r\n\r\n\
                                  f\r\ndata: welcome\n\n\r\n",
                            )
                            .await;
                        // Open until the gateway lets go.
                        let mut rest = [0u8; 64];
                        while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
                        return;
                    } else {
                        let _ = stream.write_all(answer("fast").as_bytes()).await;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn fresh_client() -> reqwest::Client {
    // No connection reuse: every request is a new connection, as a new client's would be.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn on_sigterm_the_gateway_drains_finishes_what_is_in_flight_ends_event_streams_and_exits_0() {
    let db = TestDatabase::new().await;
    let upstream = upstream().await;
    let drain = DRAIN.as_secs().to_string();
    let mut gateway = ServiceProcess::start(
        BIN,
        "GATEWAY_ADDR",
        &[
            ("DATABASE_URL", db.url.as_str()),
            ("API_SECRET", API_SECRET),
            ("BACKEND_API_URL", upstream.as_str()),
            ("HTTP_WORKERS", "2"),
            ("SHUTDOWN_DRAIN_SECS", drain.as_str()),
            ("SHUTDOWN_TIMEOUT_SECS", DEADLINE_SECS),
        ],
    )
    .await;
    let base = gateway.base.clone();
    let client = fresh_client();
    let status = |path: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let res = client.get(format!("{base}{path}")).send().await.unwrap();
            let status = res.status().as_u16();
            let kind = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, kind, res.text().await.unwrap())
        }
    };
    assert_eq!(status("/readyz").await.0, 200, "ready before the signal");

    // An event stream, open, its first event read.
    let events = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut events = events.bytes_stream();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: welcome\n\n");
    // A slow request in flight.
    let slow = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/api/slow");
        async move {
            let res = client.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    gateway.terminate();
    let signalled = Instant::now();
    // At once: as soon as the process has handled the signal (a few milliseconds).
    let (code, kind, body) = loop {
        let answer = status("/readyz").await;
        if answer.0 != 200 || signalled.elapsed() > Duration::from_secs(1) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(code, 503, "not ready within a second of the signal: {body}");
    assert_eq!(kind.as_deref(), Some("application/problem+json"), "{body}");
    // Everything else is still served, on new connections, during the drain.
    assert_eq!(status("/healthz").await.0, 200, "alive while draining");
    assert_eq!(
        status("/api/fast").await,
        (200, Some("text/plain".into()), "fast".into())
    );
    let events_ended = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Some(chunk) = events.next().await {
            rest.extend_from_slice(&chunk.expect("the event stream ends cleanly, not cut"));
        }
        (Instant::now(), rest)
    });
    tokio::time::sleep(DRAIN - signalled.elapsed() + Duration::from_millis(300)).await;
    assert!(
        gateway.refuses_connections(),
        "new connections are refused after the drain"
    );
    assert!(
        !slow.is_finished(),
        "the slow request is still in flight here"
    );

    let (slow_status, slow_body) = slow.await.unwrap();
    assert_eq!(slow_status, 200);
    assert_eq!(
        slow_body.unwrap(),
        "slow answer",
        "the whole answer arrives"
    );
    let (ended_at, rest) = tokio::time::timeout(Duration::from_secs(5), events_ended)
        .await
        .expect("the event stream ends at shutdown")
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    let ended_after = ended_at.duration_since(signalled);
    assert!(
        ended_after >= DRAIN && ended_after < DRAIN + Duration::from_secs(3),
        "the event stream ended {ended_after:?} after the signal, not at the end of the drain"
    );
    let code = gateway.exit_code(Duration::from_secs(20)).await;
    assert_eq!(code, Some(0), "{}", gateway.output());
    assert!(
        signalled.elapsed() < DRAIN + SLOW + Duration::from_secs(3),
        "exited {:?} after the signal",
        signalled.elapsed()
    );
}

#[tokio::test]
async fn with_migrate_on_start_false_the_gateway_starts_on_a_migrated_database_and_refuses_an_empty_one()
 {
    let db = TestDatabase::new().await;
    let env = |url: &str| {
        vec![
            ("DATABASE_URL".to_owned(), url.to_owned()),
            ("API_SECRET".to_owned(), API_SECRET.to_owned()),
            ("MIGRATE_ON_START".to_owned(), "false".to_owned()),
            ("SHUTDOWN_DRAIN_SECS".to_owned(), "0".to_owned()),
        ]
    };
    let migrated = env(&db.url);
    let migrated: Vec<(&str, &str)> = migrated
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut gateway = ServiceProcess::start(BIN, "GATEWAY_ADDR", &migrated).await;
    let ready = reqwest::get(format!("{}/readyz", gateway.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    gateway.terminate();
    assert_eq!(
        gateway.exit_code(Duration::from_secs(10)).await,
        Some(0),
        "{}",
        gateway.output()
    );

    let empty = format!("{}_empty", db.name);
    db.admin_execute(&format!(r#"CREATE DATABASE "{empty}""#))
        .await;
    let env = env(&db.url.replace(&db.name, &empty));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (code, output) = run_to_end(BIN, "GATEWAY_ADDR", &env, Duration::from_secs(20)).await;
    let mut conn = sqlx::ConnectOptions::connect(&db.options.clone().database(&empty))
        .await
        .unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    db.admin_execute(&format!(r#"DROP DATABASE "{empty}""#))
        .await;
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("the database is not migrated") && output.contains("MIGRATE_ON_START"),
        "{output}"
    );
    assert_eq!(tables, 0, "nothing was migrated");
}
