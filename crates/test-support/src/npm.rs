//! The npm packages of the Node.js test peers (`peers/<name>/`), installed on first use under
//! `<target dir>/npm/<name>-<first 16 hex of sha256(package-lock.json)>/` with `npm ci`, under a
//! file lock so that test binaries starting together install once (`just peers` follows the
//! same rule).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The target directory: `CARGO_TARGET_DIR` (relative to the workspace root when relative),
/// else `<workspace root>/target`.
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("test-support sits two levels below the workspace root");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

/// Makes sure `<target>/npm/<name>-<lock hash>/` holds the packages of `package_json` and
/// `package_lock` and the current `files` (name, contents: the peer's own scripts, written next
/// to `node_modules` so that Node's resolution finds the packages); returns that directory.
/// One process at a time, under a file lock. Panics with npm's output when `npm ci` fails.
pub(crate) fn install(
    name: &str,
    package_json: &str,
    package_lock: &str,
    files: &[(&str, &str)],
) -> PathBuf {
    let digest = Sha256::digest(package_lock.as_bytes());
    let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = target_dir().join("npm").join(format!("{name}-{short}"));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let lock: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".install.lock"))
        .unwrap_or_else(|e| panic!("cannot open the install lock in {}: {e}", dir.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", dir.display()));
    if !dir.join("node_modules/.package-lock.json").exists() {
        write_if_changed(&dir.join("package.json"), package_json);
        write_if_changed(&dir.join("package-lock.json"), package_lock);
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `npm` (it comes with Node.js): {e}"));
        if !output.status.success() {
            panic!(
                "`npm ci` in {} failed ({}):\n{}{}",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    for (file, contents) in files {
        write_if_changed(&dir.join(file), contents);
    }
    drop(lock);
    dir
}

/// Writes `contents` to `path` unless it already holds them; by rename, so that a provider
/// starting in another process never reads half a file.
fn write_if_changed(path: &Path, contents: &str) {
    if fs::read(path).is_ok_and(|current| current == contents.as_bytes()) {
        return;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&temporary, contents)
        .and_then(|()| fs::rename(&temporary, path))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
