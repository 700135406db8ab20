//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `tada` binary built for these tests.
pub fn tada_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tada"))
}

/// Runs `tada` with `args`, without inheriting RUST_LOG so output is predictable.
pub fn tada(args: &[&str]) -> Output {
    Command::new(tada_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tada")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `text` to `dir/name` (creating folders) and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared fixtures folder (`../shared/fixtures` beside the checkout).
pub fn fixtures_dir() -> PathBuf {
    repo().join("../shared/fixtures")
}

/// Holds libtorch's process-wide generator for one training test: a run seeds it
/// (initialisation, per-step draws), so runs in parallel test threads would draw from each
/// other's streams.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
