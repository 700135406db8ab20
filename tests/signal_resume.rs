//! The README's promise about Ctrl-C, through the real binary: `tada pretrain` stopped by SIGINT
//! mid-run checkpoints and exits 130, and `--resume` then logs exactly the losses an uninterrupted
//! run logs (CPU, same seed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{tada_bin, write, TINY_BACKBONE};

/// MoSI on synthetic images, tiny R2D3D, 3 steps per epoch, 40 epochs: long enough to be
/// interrupted, every step logged.
fn config() -> String {
    format!("MODEL: {{NAME: MoSINet}}{TINY_BACKBONE}{CONFIG_REST}")
}

const CONFIG_REST: &str = "  HEAD: {NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: 0.5}
NUM_GPUS: 0
RANDOM_SEED: 9
LOG_PERIOD: 1
DATA_LOADER: {NUM_WORKERS: 1}
BN: {EPS: 1e-3}
DATA: {TRAIN_CROP_SIZE: 32}
PRETRAIN: {NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}
AUGMENTATION: {COLOR_AUG: false}
TRAIN: {BATCH_SIZE: 4, NUM_SAMPLES: 12, CHECKPOINT_PERIOD: 100}
OPTIMIZER: {OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: 40, WARMUP_EPOCHS: 0}
";

fn losses(run: &Path) -> Vec<(u64, f64)> {
    tada::train::metrics::read_metrics(&run.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
        .collect()
}

fn pretrain(config: &Path, out: &Path, resume: bool) -> Command {
    let mut c = Command::new(tada_bin());
    c.args(["pretrain", "--config"])
        .arg(config)
        .arg("--output")
        .arg(out)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

#[test]
fn sigint_then_resume_repeats_the_uninterrupted_losses() {
    let d = tempfile::tempdir().unwrap();
    let config = write(d.path(), "mosi.yaml", &config());
    let (whole, cut) = (d.path().join("whole"), d.path().join("cut"));
    let out = pretrain(&config, &whole, false).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The run says what it trains where before it starts.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mosi: ")
            && stderr.contains(" parameters trained on the CPU (")
            && stderr.contains("40 epochs x 3 steps, batch 4, fp32; run folder "),
        "{stderr}"
    );
    let reference = losses(&whole);
    assert_eq!(reference.len(), 120);

    let child = pretrain(&config, &cut, false).spawn().unwrap();
    // Interrupt once a few steps are logged (well before the 120th).
    let t0 = Instant::now();
    while std::fs::read_to_string(cut.join("metrics.jsonl")).map_or(0, |t| t.lines().count()) < 8 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the run logged nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let first = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&first.stderr);
    // Non-zero, so that `tada pretrain … && tada finetune …` stops here.
    assert_eq!(first.status.code(), Some(130), "interrupted run: {stderr}");
    let done = losses(&cut).len();
    assert!(
        (8..120).contains(&done),
        "interrupted after {done} steps: the signal came too late to test anything"
    );
    assert!(stderr.contains("--resume"), "no resume hint in: {stderr}");

    let out = pretrain(&config, &cut, true).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed = losses(&cut);
    eprintln!("interrupted at step {done}, resumed to {}", resumed.len());
    assert_eq!(resumed, reference, "losses after SIGINT + --resume differ");
}
