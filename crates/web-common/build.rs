//! `sqlx::migrate!` embeds `migrations/` at compile time; stable Rust cannot tell cargo to
//! watch that folder from the macro, so this does: a new or edited migration rebuilds the crate.
//!
//! It also sets `BUILD_COMMIT` for `build_info`: `GIT_COMMIT` when the build sets it (a
//! container build without `.git`), else the checkout's `git rev-parse --short=12 HEAD`, else
//! `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    let git = std::path::Path::new("../../.git");
    for watched in ["HEAD", "logs/HEAD"] {
        if git.join(watched).exists() {
            println!("cargo:rerun-if-changed=../../.git/{watched}");
        }
    }
    let commit = std::env::var("GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .filter(|c| c.bytes().all(|b| b.is_ascii_alphanumeric()) && !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BUILD_COMMIT={commit}");
}
