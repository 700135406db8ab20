//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tada::runs::RunOptions;
use tada::train::TrainOptions;

/// The `tada` binary built for these tests.
pub fn tada_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tada"))
}

/// Runs `tada` with `args`, without inheriting RUST_LOG so output is predictable.
pub fn tada(args: &[&str]) -> Output {
    Command::new(tada_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .env("TADA_INDEX_DIR", crate::media::index_dir())
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

/// The golden fixtures of the reference, in the repository (docs/fixtures.md).
pub fn fixtures_dir() -> PathBuf {
    repo().join("tests/fixtures")
}

/// Holds libtorch's process-wide generator for one training test: a run seeds it
/// (initialisation, per-step draws), so runs in parallel test threads would draw from each
/// other's streams.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tiny R2D3D-18 (4-8 channels) as the `VIDEO:` section, without its head: tests append
/// `  HEAD: {…}` and the rest of their config.
pub const TINY_BACKBONE: &str = "
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 18
    NUM_FILTERS: [4, 4, 8, 8, 8]
    NUM_OUT_FEATURES: 8
    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, false, true, true]
    EXPANSION_RATIO: 2
    STEM: {NAME: DownSampleStem}
    BRANCH: {NAME: R2D3DBranch}
";

/// Options of a library-level training run into `dir`.
pub fn run_options(dir: &Path, resume: bool, max_steps: Option<u64>) -> RunOptions {
    RunOptions {
        output: Some(dir.to_path_buf()),
        weights: None,
        train: TrainOptions {
            resume,
            max_steps,
            // Tests run in parallel in one process; a signal must not stop the others.
            handle_signals: false,
            ..TrainOptions::default()
        },
    }
}

/// Mean of the losses of `(step, loss)` pairs.
pub fn mean_loss(v: &[(u64, f64)]) -> f64 {
    v.iter().map(|(_, l)| l).sum::<f64>() / v.len() as f64
}
