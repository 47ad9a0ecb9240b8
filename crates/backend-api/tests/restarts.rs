//! Restarts lose nothing: the backend binary, run as a child process and stopped with a real
//! SIGTERM while a request is in flight (a `POST /workspaces` whose client sends its body
//! slowly, half before the signal and half after the drain). `/readyz` answers 503 at once,
//! the rest is served during the drain, new connections are refused after it, the request in
//! flight is answered and its row written, and the process exits 0. With
//! `MIGRATE_ON_START=false` it starts on a migrated database (the test above) and refuses one
//! that lacks a migration, naming it.

use std::time::{Duration, Instant};

use test_support::service::{ServiceProcess, run_to_end};
use test_support::{TestDatabase, mint_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_backend-api");
const SECRET: &str = "restarts-test-secret-0123456789-abcdefgh";
const DRAIN: Duration = Duration::from_secs(2);

#[tokio::test]
async fn on_sigterm_the_backend_drains_answers_the_request_in_flight_and_exits_0() {
    let db = TestDatabase::new().await;
    let (user, email) = (Uuid::now_v7(), "restart@example.com");
    sqlx::query(
        "INSERT INTO users (id, email, email_key, name, email_verified_at) \
         VALUES ($1, $2, $3, 'Restart', now())",
    )
    .bind(user)
    .bind(email)
    .bind(web_common::email::key(email))
    .execute(&db.pool)
    .await
    .unwrap();
    let token = mint_token(SECRET, user, email, Duration::from_secs(300));
    let drain = DRAIN.as_secs().to_string();
    let mut backend = ServiceProcess::start(
        BIN,
        "BACKEND_API_ADDR",
        &[
            ("DATABASE_URL", db.url.as_str()),
            ("API_SECRET", SECRET),
            ("HTTP_WORKERS", "2"),
            ("MIGRATE_ON_START", "false"),
            ("SHUTDOWN_DRAIN_SECS", drain.as_str()),
            ("SHUTDOWN_TIMEOUT_SECS", "20"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let get = |path: &'static str| {
        let (client, url, token) = (client.clone(), format!("{}{path}", backend.base), &token);
        async move {
            let res = client.get(url).bearer_auth(token).send().await.unwrap();
            let status = res.status().as_u16();
            let kind = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, kind, res.text().await.unwrap())
        }
    };
    assert_eq!(get("/readyz").await.0, 200);

    // In flight: the head and half the body now, the rest after the drain.
    let body = r#"{"name":"Made across a restart"}"#;
    let (first, rest) = body.split_at(12);
    let mut in_flight = tokio::net::TcpStream::connect(("127.0.0.1", backend.port))
        .await
        .unwrap();
    let head = format!(
        "POST /workspaces HTTP/1.1\r\nhost: backend\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{first}",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    backend.terminate();
    let signalled = Instant::now();
    let (code, kind, problem) = loop {
        let answer = get("/readyz").await;
        if answer.0 != 200 || signalled.elapsed() > Duration::from_secs(1) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        code, 503,
        "not ready within a second of the signal: {problem}"
    );
    assert_eq!(kind.as_deref(), Some("application/problem+json"));
    assert!(problem.contains("shutting down"), "{problem}");
    assert_eq!(get("/healthz").await.0, 200, "alive while draining");
    let (code, _, me) = get("/me").await;
    assert_eq!(code, 200, "served while draining: {me}");
    assert!(me.contains(email), "{me}");

    tokio::time::sleep(DRAIN.saturating_sub(signalled.elapsed()) + Duration::from_millis(300))
        .await;
    assert!(
        backend.refuses_connections(),
        "new connections are refused after the drain"
    );
    assert_eq!(
        backend.exit_code(Duration::ZERO).await,
        None,
        "still finishing"
    );

    in_flight.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        in_flight.read_to_string(&mut answer),
    )
    .await
    .expect("the request in flight is answered, and its connection closed")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("Made across a restart"), "{answer}");
    assert_eq!(
        backend.exit_code(Duration::from_secs(10)).await,
        Some(0),
        "{}",
        backend.output()
    );
    assert!(signalled.elapsed() < DRAIN + Duration::from_secs(8));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces WHERE name = $1")
        .bind("Made across a restart")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn with_migrate_on_start_false_a_database_lacking_a_migration_stops_the_backend_naming_it() {
    let db = TestDatabase::new().await;
    let (version, description): (i64, String) = sqlx::query_as(
        "DELETE FROM _sqlx_migrations \
         WHERE version = (SELECT max(version) FROM _sqlx_migrations) \
         RETURNING version, description",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("API_SECRET", SECRET),
        ("MIGRATE_ON_START", "false"),
    ];
    let (code, output) = run_to_end(BIN, "BACKEND_API_ADDR", &env, Duration::from_secs(20)).await;
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("the database is not migrated")
            && output.contains(&format!("{version} ({description})"))
            && output.contains("MIGRATE_ON_START=true"),
        "{output}"
    );
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 0, "nothing was migrated");
}
