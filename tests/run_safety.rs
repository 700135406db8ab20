//! A run folder is never lost or shared: one run at a time (lock), leftovers of interrupted
//! writes removed, a corrupt newest checkpoint passed over on resume, epoch-end checkpoints
//! named as such, and a run stopped by a signal exits 130 / 143 after its checkpoint — the
//! demo included.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{run_options, serial, tada_bin, write, TINY_BACKBONE};
use tada::checkpoint::checkpoints_newest_first;
use tada::config::LoadedConfig;
use tada::runs::pretrain;

/// MoSI on 12 synthetic images, 3 steps per epoch, a checkpoint every epoch.
fn config_text(epochs: u32) -> String {
    format!(
        "MODEL: {{NAME: MoSINet}}{TINY_BACKBONE}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3}}
NUM_GPUS: 0
RANDOM_SEED: 5
LOG_PERIOD: 1
DATA_LOADER: {{NUM_WORKERS: 0}}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}}
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 12, CHECKPOINT_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: {epochs}, WARMUP_EPOCHS: 0}}
"
    )
}

fn config(dir: &Path, epochs: u32) -> LoadedConfig {
    let path = write(dir, "mosi.yaml", &config_text(epochs));
    tada::config::recipes::MOSI.load(&path, &[]).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_stop_on_an_epoch_boundary_writes_the_epochs_checkpoint() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), 4);
    // Stops after the last batch of epoch 1, before the loop counts the epoch.
    let s = pretrain(&cfg, &run_options(d.path(), false, Some(3))).unwrap();
    assert!(s.interrupted);
    let ckpts = names(&d.path().join("checkpoints"));
    assert_eq!(ckpts, ["checkpoint_epoch_00001.safetensors"], "{ckpts:?}");
    let c = tada::checkpoint::Checkpoint::load(s.checkpoint.as_ref().unwrap()).unwrap();
    assert_eq!((c.run.epoch, c.run.step), (1, 3));
    // Inside an epoch the name says so.
    let s = pretrain(&cfg, &run_options(d.path(), true, Some(5))).unwrap();
    assert_eq!(
        s.checkpoint.unwrap().file_name().unwrap().to_string_lossy(),
        "checkpoint_epoch_00001_step_00000005.safetensors"
    );
}

#[test]
fn resume_passes_over_a_corrupt_newest_checkpoint() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let s = pretrain(&config(d.path(), 2), &run_options(d.path(), false, None)).unwrap();
    assert_eq!(s.steps, 6);
    let ckpts = checkpoints_newest_first(&d.path().join("checkpoints"));
    assert_eq!(ckpts.len(), 2);
    // What a full disk or a half-finished copy leaves: the newest file cut short.
    let bytes = std::fs::read(&ckpts[0]).unwrap();
    std::fs::write(&ckpts[0], &bytes[..bytes.len() / 2]).unwrap();
    let s = pretrain(&config(d.path(), 3), &run_options(d.path(), true, None)).unwrap();
    assert_eq!(s.resumed_from.as_ref(), Some(&ckpts[1]));
    // Epoch 2 is trained again from epoch 1's state, then epoch 3.
    assert_eq!((s.epochs, s.steps, s.losses.len()), (3, 9, 6));
    // The epoch-2 checkpoint was rewritten whole.
    tada::checkpoint::Checkpoint::load(&ckpts[0]).unwrap();
}

#[test]
fn a_new_run_removes_the_leftovers_of_interrupted_writes() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let ckpts = d.path().join("checkpoints");
    std::fs::create_dir_all(&ckpts).unwrap();
    // What a kill during an atomic write leaves: the temporary file, never renamed.
    let left = [
        ckpts.join(".checkpoint_epoch_00001.safetensors.tmp-4194301"),
        d.path().join(".config.yaml.tmp-4194302"),
    ];
    for p in &left {
        std::fs::write(p, vec![0u8; 4096]).unwrap();
    }
    let keep = ckpts.join("notes.tmp-1.txt");
    std::fs::write(&keep, "mine").unwrap();
    pretrain(&config(d.path(), 1), &run_options(d.path(), false, None)).unwrap();
    for p in &left {
        assert!(!p.exists(), "{} is still there", p.display());
    }
    assert!(
        keep.exists(),
        "a file that is not a temporary write was removed"
    );
}

/// `tada pretrain` on the config, 40 epochs long, stderr piped.
fn spawn_pretrain(config: &Path, out: &Path, resume: bool) -> Child {
    let mut c = Command::new(tada_bin());
    c.args(["pretrain", "--config"])
        .arg(config)
        .arg("--output")
        .arg(out)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c.spawn().unwrap()
}

fn lines(file: &Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |t| t.lines().count())
}

/// Waits until `file` has at least `lines` lines.
fn wait_for_lines(file: &Path, lines: usize) {
    let t0 = Instant::now();
    while self::lines(file) < lines {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "{} never reached {lines} lines",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn one_run_per_folder_and_a_signal_exits_non_zero_after_its_checkpoint() {
    // Training processes: one at a time with the other training tests (cores).
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let config = write(d.path(), "mosi.yaml", &config_text(40));
    let out = d.path().join("run");
    let first = spawn_pretrain(&config, &out, false);
    wait_for_lines(&out.join("metrics.jsonl"), 4);

    // A second run in the same folder refuses at once, naming the holder.
    let second = spawn_pretrain(&config, &out, true)
        .wait_with_output()
        .unwrap();
    assert!(!second.status.success());
    let msg = text(&second);
    assert!(
        msg.contains("is in use by process") && msg.contains(&first.id().to_string()),
        "{msg}"
    );
    assert_eq!(msg.trim().lines().count(), 1, "not one line: {msg}");

    // SIGTERM: checkpoint, then exit 143 (so `pretrain && finetune` stops here).
    kill(&first, "-TERM");
    let first = first.wait_with_output().unwrap();
    let msg = text(&first);
    assert_eq!(first.status.code(), Some(143), "{msg}");
    assert!(
        msg.contains("stopped by SIGTERM") && msg.contains("--resume"),
        "{msg}"
    );
    let ckpts = checkpoints_newest_first(&out.join("checkpoints"));
    assert!(!ckpts.is_empty(), "no checkpoint after SIGTERM");

    // A run killed outright leaves its pid in the lock; the next run takes the lock over.
    let metrics = out.join("metrics.jsonl");
    let mut killed = spawn_pretrain(&config, &out, true);
    wait_for_lines(&metrics, lines(&metrics) + 3);
    kill(&killed, "-KILL");
    killed.wait().unwrap();
    let held = std::fs::read_to_string(out.join("run.lock")).unwrap();
    assert_eq!(held.trim(), killed.id().to_string());
    let mut next = spawn_pretrain(&config, &out, true);
    wait_for_lines(&metrics, lines(&metrics) + 3);
    kill(&next, "-INT");
    let status = next.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(next.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("taking over the lock of process {}", killed.id())),
        "{stderr}"
    );
    // run.log holds what each run that opened the folder logged (not the refused one) and its
    // last line, appended under a header per run, without colour codes.
    let log = std::fs::read_to_string(out.join("run.log")).unwrap();
    let count = |s: &str| log.lines().filter(|l| l.contains(s)).count();
    assert!(
        log.starts_with("=== ") && count("pretrain --config") == 3,
        "{log}"
    );
    assert_eq!(
        count("parameters trained on"),
        3,
        "the banner of each run: {log}"
    );
    assert_eq!(
        count("stopped by SIGTERM") + count("stopped by SIGINT"),
        2,
        "{log}"
    );
    // Logged before the folder was open, so kept until it was.
    let takeover = format!("taking over the lock of process {}", killed.id());
    assert_eq!(count(&takeover), 1, "{log}");
    assert!(!log.contains('\x1b'), "{log}");
}

#[test]
fn ctrl_c_stops_the_demo() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    let child = Command::new(tada_bin())
        .args(["demo", "--output"])
        .arg(&out)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&out.join("mosi/metrics.jsonl"), 1);
    kill(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(
        !stdout.contains("probe accuracy") && !out.join("probe_random").exists(),
        "the demo went on after Ctrl-C: {stdout}"
    );
}
