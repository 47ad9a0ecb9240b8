//! How the gateway starts: its worker count, and how it refuses a bad configuration. In a test
//! binary of its own, so that no other gateway runs in this process while threads are counted.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use frontend_gateway::{Application, Settings};
use test_support::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_frontend-gateway");
const API_SECRET: &str = "startup-test api secret, long enough for HS256";

/// The worker threads of this process once they have settled (they start in the background).
async fn settled_workers(expected: usize) -> usize {
    let mut seen = test_support::worker_threads();
    for _ in 0..50 {
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = test_support::worker_threads();
    }
    seen
}

#[tokio::test]
async fn http_workers_sets_how_many_request_workers_the_gateway_runs() {
    let db = TestDatabase::new().await;
    let mut total = 0;
    for workers in ["1", "3"] {
        let mut settings = Settings::from_source(&[
            ("DATABASE_URL", db.url.as_str()),
            ("API_SECRET", API_SECRET),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("HTTP_WORKERS", workers),
        ])
        .unwrap();
        settings.database.options = db.options.clone();
        let app = Application::build(settings).await.unwrap();
        tokio::spawn(app.run_until_stopped());
        total += workers.parse::<usize>().unwrap();
        assert_eq!(
            settled_workers(total).await,
            total,
            "HTTP_WORKERS={workers}"
        );
    }
}

/// Runs the gateway binary in `dir` with exactly `env` (nothing inherited), for a few seconds
/// at most; returns its exit status and what it printed on stderr.
fn run(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the gateway binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-startup-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_bad_setting_stops_the_gateway_with_exit_status_78_naming_the_variable() {
    let dir = scratch_dir();
    let base = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/unused"),
        ("API_SECRET", API_SECRET),
    ];
    for (name, value) in [
        ("APP_ENV", "staging-ish"),
        ("SESSION_CACHE_MS", "9000"),
        ("PASSWORD_HASH_CONCURRENCY", "0"),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "never"),
        ("HTTP_WORKERS", "none"),
        ("RUST_LOG", "app=loud"),
        ("API_SECRET", "short"),
    ] {
        let mut env = base.to_vec();
        env.push((name, value));
        let (code, stderr) = run(&dir, &env);
        assert_eq!(code, Some(78), "{name}={value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("frontend-gateway: configuration error: {name}")),
            "{name}={value}: {stderr}"
        );
    }
    let (code, stderr) = run(&dir, &[("API_SECRET", API_SECRET)]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn production_without_an_smtp_url_stops_with_exit_status_78_naming_it() {
    let dir = scratch_dir();
    let production = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/unused"),
        ("API_SECRET", API_SECRET),
        ("APP_ENV", "production"),
        ("PUBLIC_ORIGIN", "https://app.example"),
        (
            "SESSION_KEY",
            "startup-test session key: sixty-four bytes or more are required here!!",
        ),
    ];
    let (code, stderr) = run(&dir, &production);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.starts_with("frontend-gateway: configuration error: SMTP_URL is not set"),
        "{stderr}"
    );
    // With it (and the database unreachable) the settings pass: no SMTP connection is made
    // at start-up, so the gateway gets as far as the database.
    let mut env = production.to_vec();
    env.push(("SMTP_URL", "smtp://127.0.0.1:1"));
    env.push(("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"));
    let (code, stderr) = run(&dir, &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("configuration error"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn settings_come_from_dot_env_in_the_working_directory_without_overriding_the_environment() {
    let dir = scratch_dir();
    std::fs::write(
        dir.join(".env"),
        format!(
            "DATABASE_URL=postgres://postgres@127.0.0.1:1/unused\nAPI_SECRET=\"{API_SECRET}\"\nSESSION_CACHE_MS=9000\n"
        ),
    )
    .unwrap();
    let (code, stderr) = run(&dir, &[]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("SESSION_CACHE_MS is invalid"),
        "read from .env: {stderr}"
    );
    // The real environment wins over the file: the settings are good, so the gateway gets as
    // far as the database (which is not there) and fails there instead.
    let (code, stderr) = run(
        &dir,
        &[
            ("SESSION_CACHE_MS", "100"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("configuration error"), "{stderr}");
    std::fs::write(
        dir.join(".env"),
        "SESSION_KEY=a secret with spaces, unquoted\n",
    )
    .unwrap();
    let (code, stderr) = run(&dir, &[]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains(".env could not be read"), "{stderr}");
    assert!(
        !stderr.contains("a secret with spaces"),
        "the line is echoed: {stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
