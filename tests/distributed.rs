//! Data-parallel training on c10d's Gloo backend, as users launch it: `tada launch`, torchrun,
//! and ranks started by hand. Two ranks of half the batch must train what one process trains on
//! the whole batch (a skipped or unscaled gradient all-reduce, or statistics BN does not share,
//! would show in the losses and weights); rank 0 alone writes the run; a run continues on
//! another world size; a rank that dies stops the other with its name.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tada::checkpoint::{latest_checkpoint, Checkpoint};
use tada::train::metrics::read_metrics;

use crate::common::{serial, stderr, tada_bin, write, TINY_BACKBONE};

const RUN: &str = "
NUM_GPUS: 0
RANDOM_SEED: 5
LOG_PERIOD: 1
DATA_LOADER: {NUM_WORKERS: 0}
";

/// MoSI R2D3D on 16 synthetic images, a global batch of 4: `epochs` epochs of 4 steps.
fn mosi_yaml(sync_bn: bool, epochs: u32) -> String {
    format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: 0.0}}\n{RUN}
BN: {{EPS: 1e-3, MOMENTUM: 0.1, SYNC: {sync_bn}}}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{ENABLE: true, GENERATOR: MoSIGenerator, NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}}
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 16, CHECKPOINT_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: {epochs}, WARMUP_EPOCHS: 0, LR_POLICY: cosine}}
"
    )
}

/// A linear probe (frozen backbone, BN in evaluation mode: no coupling between samples) of
/// 32 synthetic videos in global batches of 8, SGD with momentum, 2 epochs.
fn probe_yaml() -> String {
    format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.0}}\n{RUN}
BN: {{EPS: 1e-3, MOMENTUM: 0.1}}
MODEL: {{NAME: R2D3D}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 32, ONLY_LINEAR: true, CHECKPOINT_PERIOD: 100, EVAL_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.5, MOMENTUM: 0.9, MAX_EPOCH: 2, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0}}
"
    )
}

/// `tada` with `args` (one process), or under `tada launch --nproc n`; panics on failure.
fn run(n: usize, args: &[&str]) {
    let mut cmd = Command::new(tada_bin());
    if n > 1 {
        cmd.args(["launch", "--nproc", &n.to_string(), "--"]);
    }
    let out = cmd.args(args).env_remove("RUST_LOG").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} on {n} ranks: {}",
        stderr(&out)
    );
}

fn losses(run: &Path) -> Vec<f64> {
    read_metrics(&run.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|m| m.get("phase").and_then(|p| p.as_str()) == Some("train"))
        .map(|m| m["loss"].as_f64().unwrap())
        .collect()
}

/// `[loss, acc@1]` of every `val` record.
fn val_scores(run: &Path) -> Vec<Vec<f64>> {
    read_metrics(&run.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|m| m.get("phase").and_then(|p| p.as_str()) == Some("val"))
        .map(|m| vec![m["loss"].as_f64().unwrap(), m["acc@1"].as_f64().unwrap()])
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: step counts");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * x.abs().max(1e-3),
            "{what}: step {} loss {x} vs {y}",
            i + 1
        );
    }
}

/// max |x − y| and the scale it is judged against, max |x| (at least 1e-6).
fn max_diff(x: &tch::Tensor, y: &tch::Tensor) -> (f64, f64) {
    let scale = f64::try_from(x.abs().max()).unwrap().max(1e-6);
    (f64::try_from((x - y).abs().max()).unwrap(), scale)
}

fn final_weights(run: &Path) -> Vec<(String, tch::Tensor)> {
    let path = latest_checkpoint(&run.join("checkpoints")).unwrap();
    Checkpoint::load(&path).unwrap().model
}

#[test]
fn a_two_rank_linear_probe_trains_what_one_process_trains() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = write(d.path(), "probe.yaml", &probe_yaml());
    let (one, two) = (d.path().join("one"), d.path().join("two"));
    let c = cfg.to_str().unwrap();
    run(1, &["finetune", "--config", c, "-o", one.to_str().unwrap()]);
    run(2, &["finetune", "--config", c, "-o", two.to_str().unwrap()]);
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), 8);
    assert!((a[0] - a[7]).abs() > 1e-3, "the probe did not train: {a:?}");
    assert_close(&a, &b, 1e-5, "probe");
    // Validation: each rank scores its half of the val split and the sums are combined, so
    // both runs log the whole split's scores after each epoch.
    let (va, vb) = (val_scores(&one), val_scores(&two));
    assert_eq!(va.len(), 2, "two validations: {va:?}");
    assert_eq!(va.len(), vb.len());
    for (x, y) in va.iter().zip(&vb) {
        assert_close(x, y, 1e-5, "val loss, acc@1");
    }
    let (wa, wb) = (final_weights(&one), final_weights(&two));
    assert_eq!(wa.len(), wb.len());
    for ((name, x), (_, y)) in wa.iter().zip(&wb) {
        let (diff, scale) = max_diff(x, y);
        assert!(
            diff <= 1e-5 * scale,
            "{name}: max |diff| {diff:e} (scale {scale:e})"
        );
    }
    // The multi-view test across two ranks fuses every view as one process does.
    let ckpt = latest_checkpoint(&one.join("checkpoints")).unwrap();
    let report = |n: usize, name: &str| {
        let out = d.path().join(name);
        run(
            n,
            &[
                "test",
                "--config",
                c,
                "--weights",
                ckpt.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(out).unwrap()).unwrap()
    };
    let (r1, r2) = (report(1, "one.json"), report(2, "two.json"));
    assert_eq!(r1["videos"], r2["videos"]);
    assert_eq!(r1["confusion"], r2["confusion"]);
    assert!((r1["acc1"].as_f64().unwrap() - r2["acc1"].as_f64().unwrap()).abs() < 1e-12);
    // The run folder holds one run: world size 2 in its metrics.
    let m = read_metrics(&two.join("metrics.jsonl")).unwrap();
    assert!(m
        .iter()
        .all(|r| r.get("phase").and_then(|p| p.as_str()) != Some("train")
            || r["world_size"].as_f64() == Some(2.0)));
}

#[test]
fn mosi_with_sync_bn_on_two_ranks_matches_one_process_and_resumes_on_one() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let sync = write(d.path(), "sync.yaml", &mosi_yaml(true, 2));
    let local = write(d.path(), "local.yaml", &mosi_yaml(false, 2));
    let dir = |n: &str| d.path().join(n);
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    run(
        1,
        &["pretrain", "--config", &p(&sync), "-o", &p(&dir("one"))],
    );
    run(
        2,
        &["pretrain", "--config", &p(&sync), "-o", &p(&dir("two"))],
    );
    run(
        2,
        &["pretrain", "--config", &p(&local), "-o", &p(&dir("local"))],
    );
    let (one, two, local_bn) = (
        losses(&dir("one")),
        losses(&dir("two")),
        losses(&dir("local")),
    );
    assert_eq!(one.len(), 8);
    // The first steps agree to float rounding; later ones drift as rounding compounds.
    assert_close(&one[..4], &two[..4], 1e-5, "SyncBN");
    assert_close(&one, &two, 1e-3, "SyncBN, all steps");
    // Per-rank BN statistics (half the batch each) train something else: the comparison above
    // would notice a SyncBatchNorm that did not synchronise.
    let worst = one
        .iter()
        .zip(&local_bn)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst > 1e-3, "per-rank BN gave the same losses ({worst:e})");
    // Only rank 0 wrote checkpoints: one per epoch, no other files.
    let mut ckpts: Vec<_> = std::fs::read_dir(dir("two").join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ckpts.sort();
    assert_eq!(ckpts.len(), 2, "{ckpts:?}");
    // A third epoch on one process continues the two-rank run where it stopped (step 9 on),
    // as it continues the one-process run.
    for name in ["one", "two"] {
        run(
            1,
            &[
                "pretrain",
                "--config",
                &p(&sync),
                "-o",
                &p(&dir(name)),
                "--resume",
                "--set",
                "OPTIMIZER.MAX_EPOCH=3",
            ],
        );
    }
    let (one, two) = (losses(&dir("one")), losses(&dir("two")));
    assert_eq!(two.len(), 12);
    assert_close(&one, &two, 1e-3, "resumed on one rank");
}

/// Fine-tuning a tiny TAda2D with BN.SYNC: besides the ResNet BatchNorms, the BatchNorm inside
/// every routing function (`b_rf.bn`) takes the statistics of both ranks' halves, so its running
/// statistics after two steps equal the one-process run's (rank 0's half alone gives others).
/// The first step's loss agrees to float rounding; later ones within 1e-3, because this tiny
/// TAda2D amplifies rounding: in one process, 1 vs 2 threads already move the second step's
/// loss by 2e-5, and at lr 0.01 by percents within three steps (docs/distributed.md#syncbatchnorm-bnsync-true).
#[test]
fn sync_bn_reaches_the_batchnorms_inside_tadaconv_routing() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = write(
        d.path(),
        "tada2d.yaml",
        &format!(
            "MODEL: {{NAME: TAda2D}}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 50
    NUM_FILTERS: [8, 16, 32, 64, 64]
    NUM_OUT_FEATURES: 64
    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]]
    DOWNSAMPLING: [true, true, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, false, false, false]
    EXPANSION_RATIO: 4
    STEM: {{NAME: Base2DStem}}
    BRANCH: {{NAME: TAda2DBlock, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 2, POOL_K: [3, 1, 1]}}
  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.0}}
{RUN}
BN: {{EPS: 1e-5, MOMENTUM: 0.1, SYNC: true}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 4, NUM_SAMPLES: 8, CHECKPOINT_PERIOD: 1, EVAL_PERIOD: 0}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.001, MOMENTUM: 0.9, MAX_EPOCH: 1, WARMUP_EPOCHS: 0}}
"
        ),
    );
    let (one, two) = (d.path().join("one"), d.path().join("two"));
    let c = cfg.to_str().unwrap();
    run(1, &["finetune", "--config", c, "-o", one.to_str().unwrap()]);
    run(2, &["finetune", "--config", c, "-o", two.to_str().unwrap()]);
    let (a, b) = (losses(&one), losses(&two));
    assert_close(&a[..1], &b[..1], 1e-5, "TAda2D SyncBN, first step");
    assert_close(&a, &b, 1e-3, "TAda2D SyncBN");
    let (wa, wb) = (final_weights(&one), final_weights(&two));
    let mut routing = 0;
    for ((name, x), (_, y)) in wa.iter().zip(&wb) {
        if !name.contains("b_rf.bn.running_") {
            continue;
        }
        routing += 1;
        let (diff, scale) = max_diff(x, y);
        assert!(
            diff <= 1e-3 * scale,
            "{name}: max |diff| {diff:e} (scale {scale:e})"
        );
    }
    assert!(
        routing >= 16,
        "routing BN statistics in the checkpoint: {routing}"
    );
}

/// Starts rank `rank` of 2 by hand, as torchrun would, with its output in files.
fn start_rank(rank: usize, port: u16, cfg: &Path, out: &Path, log: &Path) -> std::process::Child {
    Command::new(tada_bin())
        .args([
            "pretrain",
            "--config",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `run`'s metrics have at least `steps` training records.
fn wait_for_steps(run: &Path, steps: usize, limit: Duration) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if read_metrics(&run.join("metrics.jsonl")).is_ok_and(|m| m.len() >= steps) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no {steps} training steps in {} within {limit:?}",
        run.display()
    );
}

#[test]
fn a_killed_rank_stops_the_other_naming_it() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = write(d.path(), "long.yaml", &mosi_yaml(false, 10_000));
    let out = d.path().join("run");
    let port = free_port();
    let logs = [d.path().join("rank0.log"), d.path().join("rank1.log")];
    let mut r0 = start_rank(0, port, &cfg, &out, &logs[0]);
    let mut r1 = start_rank(1, port, &cfg, &out, &logs[1]);
    wait_for_steps(&out, 3, Duration::from_secs(120));
    r1.kill().unwrap();
    r1.wait().unwrap();
    let killed = Instant::now();
    let status = loop {
        if let Some(s) = r0.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            let _ = r0.kill();
            panic!("rank 0 still running 60 s after rank 1 died");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(!status.success(), "rank 0 exited 0: {log}");
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.contains("rank 1"),
        "rank 0's last line does not name rank 1: {log}"
    );
    eprintln!(
        "rank 0 stopped {:.1} s after rank 1 died: {last}",
        killed.elapsed().as_secs_f64()
    );
}

/// torchrun from the wheel set-up installs (`.venv/bin/torchrun`), or from PATH.
fn torchrun() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/torchrun");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("torchrun"))
            .find(|p| p.is_file())
    })
}

#[test]
fn torchrun_launches_two_ranks_into_one_run_folder() {
    let Some(torchrun) = torchrun() else {
        eprintln!("skipped: no torchrun (scripts/setup.sh --test installs torch's, with it)");
        return;
    };
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = write(d.path(), "mosi.yaml", &mosi_yaml(true, 1));
    let out = d.path().join("run");
    let o = Command::new(&torchrun)
        .args([
            "--nproc-per-node",
            "2",
            "--master-port",
            &free_port().to_string(),
            "--no-python",
        ])
        .arg(tada_bin())
        .args([
            "pretrain",
            "--config",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "torchrun: {}", stderr(&o));
    let m = read_metrics(&out.join("metrics.jsonl")).unwrap();
    assert_eq!(m.len(), 4, "one rank's records, 4 steps");
    assert!(m.iter().all(|r| r["world_size"].as_f64() == Some(2.0)));
    let ckpts = std::fs::read_dir(out.join("checkpoints")).unwrap().count();
    assert_eq!(ckpts, 1);
    // Nothing but rank 0's run in the folder: no second run log or metrics file elsewhere.
    let entries: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
}

/// SimCLR and MoCo v2 with ParamCrop on 16 synthetic videos, a global batch of 8.
fn contrastive_yaml(framework: &str) -> String {
    format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: ContrastiveHead}}\n{RUN}
BN: {{EPS: 1e-3, MOMENTUM: 0.1}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
AUGMENTATION: {{COLOR_AUG: false}}
PRETRAIN:
  ENABLE: true
  GENERATOR: Contrastive
  CONTRASTIVE: {{FRAMEWORK: {framework}, HEAD_MID_DIM: 16, HEAD_OUT_DIM: 8, TEMPERATURE: 0.2, QUEUE_SIZE: 24, MOMENTUM: 0.9}}
  PARAMCROP: {{ENABLE: true, INPUT_FRAMES: 8, INPUT_SIZE: 40, LR: 0.01}}
TRAIN: {{BATCH_SIZE: 8, NUM_SAMPLES: 16, CHECKPOINT_PERIOD: 100}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: 3, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0}}
"
    )
}

#[test]
fn contrastive_pretraining_runs_across_two_ranks() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    for framework in ["simclr", "moco"] {
        let cfg = write(
            d.path(),
            &format!("{framework}.yaml"),
            &contrastive_yaml(framework),
        );
        let out = d.path().join(framework);
        run(
            2,
            &[
                "pretrain",
                "--config",
                cfg.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        let l = losses(&out);
        assert_eq!(l.len(), 6, "{framework}");
        assert!(l.iter().all(|v| v.is_finite()), "{framework}: {l:?}");
        // MoCo's queue is a checkpointed variable: rank 0's holds every rank's keys.
        let w = final_weights(&out);
        assert!(w.iter().any(|(n, _)| n.contains("backbone")), "{framework}");
    }
}

#[test]
fn a_signal_to_the_launcher_checkpoints_once_and_every_rank_exits_non_zero() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = write(d.path(), "long.yaml", &mosi_yaml(false, 10_000));
    let out = d.path().join("run");
    let launcher = Command::new(tada_bin())
        .args(["launch", "--nproc", "2", "--", "pretrain", "--config"])
        .args([cfg.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--set", "TRAIN.CHECKPOINT_PERIOD=1000"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_steps(&out, 3, Duration::from_secs(120));
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(launcher.id() as libc::pid_t, libc::SIGTERM) };
    // Ranks that disagree about stopping would wait for each other forever: bound the wait.
    let mut launcher = launcher;
    let deadline = Instant::now() + Duration::from_secs(120);
    while launcher.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = launcher.kill();
            panic!("the launcher did not exit within 120 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = launcher.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "launcher status: {err}");
    let ckpts: Vec<_> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        ckpts.len(),
        1,
        "one checkpoint, from rank 0: {ckpts:?} {err}"
    );
    // Both ranks stopped after the same step: the checkpoint is that step's.
    let m = read_metrics(&out.join("metrics.jsonl")).unwrap();
    let last = m.last().unwrap()["step"].as_u64().unwrap();
    assert_eq!(Checkpoint::load(&ckpts[0]).unwrap().run.step, last, "{err}");
}
