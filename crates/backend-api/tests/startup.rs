//! How backend-api starts: `HTTP_WORKERS` is applied (the server runs exactly that many
//! request workers), and a bad setting stops it with exit status 78 naming the variable.
//!
//! A test binary of its own with a single in-process server, so that no other server's
//! workers run in this process while they are counted (the other tests run the binary).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use backend_api::{Application, Settings};
use test_support::{TestDatabase, worker_threads};

const SECRET: &str = "test-secret-0123456789-0123456789-abcdef";

/// Starts a backend with `workers` request workers and waits until it answers.
async fn serve(db: &TestDatabase, workers: &str) {
    let settings = Settings::from_source(&[
        ("DATABASE_URL", db.url.as_str()),
        ("API_SECRET", SECRET),
        ("BACKEND_API_ADDR", "127.0.0.1:0"),
        ("HTTP_WORKERS", workers),
    ])
    .expect("test settings");
    let app = Application::build(settings)
        .await
        .expect("backend-api starts");
    let url = format!("http://127.0.0.1:{}/healthz", app.port());
    tokio::spawn(app.run_until_stopped());
    let res = reqwest::get(&url).await.expect("the server answers");
    assert!(res.status().is_success(), "{}", res.status());
}

/// The worker count once it has stopped changing (workers start on their own threads).
async fn settled_worker_count(expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count = worker_threads();
        if count == expected || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_server_runs_exactly_http_workers_request_workers() {
    let db = TestDatabase::new().await;
    assert_eq!(worker_threads(), 0, "no server runs yet");
    serve(&db, "1").await;
    assert_eq!(settled_worker_count(1).await, 1, "HTTP_WORKERS=1");
    serve(&db, "3").await;
    assert_eq!(
        settled_worker_count(4).await,
        1 + 3,
        "then HTTP_WORKERS=3 more"
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_backend-api");
const MIGRATE: &str = env!("CARGO_BIN_EXE_migrate");

/// Runs `bin` in `dir` with exactly `env` (nothing inherited); its exit status and stderr.
fn run(bin: &str, dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(bin)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backend-startup-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_bad_setting_stops_the_backend_and_migrate_with_exit_status_78_naming_the_variable() {
    let dir = scratch_dir();
    let base = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/unused"),
        ("API_SECRET", SECRET),
    ];
    for (name, value) in [
        ("APP_ENV", "staging-ish"),
        ("BACKEND_API_ADDR", "not-an-address"),
        ("HTTP_WORKERS", "0"),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "0"),
        ("DATABASE_MAX_CONNECTIONS", "many"),
        ("RUST_LOG", "app=loud"),
        ("API_SECRET_PREVIOUS", "short"),
    ] {
        let mut env = base.to_vec();
        env.push((name, value));
        let (code, stderr) = run(BIN, &dir, &env);
        assert_eq!(code, Some(78), "{name}={value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("backend-api: configuration error: {name}")),
            "{name}={value}: {stderr}"
        );
    }
    let (code, stderr) = run(BIN, &dir, &[("DATABASE_URL", "postgres://db/app")]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("API_SECRET is not set"), "{stderr}");
    let (code, stderr) = run(MIGRATE, &dir, &[("DATABASE_URL", "mysql://db/app")]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.starts_with("migrate: configuration error: DATABASE_URL"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn settings_come_from_dot_env_in_the_working_directory_like_the_gateways() {
    let dir = scratch_dir();
    std::fs::write(
        dir.join(".env"),
        format!("DATABASE_URL=postgres://postgres@127.0.0.1:1/unused\nAPI_SECRET={SECRET}\nAPP_ENV=bogus\n"),
    )
    .unwrap();
    let (code, stderr) = run(BIN, &dir, &[]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("APP_ENV is invalid"),
        "read from .env: {stderr}"
    );
    // The real environment wins: with a good APP_ENV the backend gets as far as the database
    // (which is not there) and fails there instead.
    let (code, stderr) = run(
        BIN,
        &dir,
        &[
            ("APP_ENV", "development"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("configuration error"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
