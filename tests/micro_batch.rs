//! TRAIN.MICRO_BATCH_SIZE: a step's batch run in chunks with gradients accumulated. Where the
//! model has no batch coupling (a linear probe: frozen backbone with BN in evaluation mode) the
//! chunked steps must equal whole-batch steps; MoSI still learns with chunks (its BN sees each
//! chunk's statistics); a contrastive loss, which couples the batch, refuses them.

use std::path::Path;

use tada::checkpoint::Checkpoint;
use tada::config::load as load_pretrain_config;
use tada::runs::{finetune, pretrain};

use crate::common::{mean_loss, run_options, serial, TINY_BACKBONE};

const RUN: &str = "
NUM_GPUS: 0
RANDOM_SEED: 7
LOG_PERIOD: 1
DATA_LOADER: {NUM_WORKERS: 0}
BN: {EPS: 1e-3, MOMENTUM: 0.1}
";

fn write(dir: &Path, name: &str, yaml: String) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn chunked_probe_steps_equal_whole_batch_steps() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = write(
        d.path(),
        "probe.yaml",
        format!(
            "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.0}}\n{RUN}
MODEL: {{NAME: R2D3D}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 32, ONLY_LINEAR: true, CHECKPOINT_PERIOD: 100}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.5, MOMENTUM: 0.9, MAX_EPOCH: 2, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0}}
"
        ),
    );
    let run = |micro: usize| {
        let cfg = tada::config::load(&path, &[format!("TRAIN.MICRO_BATCH_SIZE={micro}")]).unwrap();
        assert_eq!(cfg.config.train.micro_batch_size, micro);
        let out = d.path().join(format!("micro{micro}"));
        let (s, _) = finetune(&cfg, &run_options(&out, false, None)).unwrap();
        let ckpt = Checkpoint::load(s.checkpoint.as_ref().unwrap()).unwrap();
        (s, ckpt)
    };
    let (whole, whole_ckpt) = run(0);
    // Chunks of 3, 3 and 2: unequal shares, so a wrong weighting would show.
    let (chunked, chunked_ckpt) = run(3);
    assert_eq!(whole.steps, 8);
    assert_eq!(chunked.steps, 8);
    for ((_, a), (_, b)) in whole.losses.iter().zip(&chunked.losses) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "losses {a} vs {b}");
    }
    assert!(
        (whole.losses[0].1 - whole.losses[7].1).abs() > 1e-3,
        "the probe did not train, so the comparison shows nothing"
    );
    for (name, a) in &whole_ckpt.model {
        let b = &chunked_ckpt
            .model
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        let diff = f64::try_from((a - b).abs().max()).unwrap();
        assert!(diff <= 1e-5, "{name}: max |diff| {diff:e}");
    }
    for (m, v) in &whole.last_metrics {
        let w = chunked.last_metrics.iter().find(|(n, _)| n == m).unwrap().1;
        assert!((v - w).abs() <= 1e-6, "{m}: {v} vs {w}");
    }
}

#[test]
fn mosi_learns_with_micro_batches() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = write(
        d.path(),
        "mosi.yaml",
        format!(
            "{TINY_BACKBONE}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: 0.0}}\n{RUN}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}}
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{BATCH_SIZE: 4, MICRO_BATCH_SIZE: 2, NUM_SAMPLES: 12, CHECKPOINT_PERIOD: 100}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: 10, WARMUP_EPOCHS: 0, LR_POLICY: cosine}}
"
        ),
    );
    let cfg = tada::config::recipes::MOSI.load(&path, &[]).unwrap();
    let s = pretrain(&cfg, &run_options(d.path(), false, None)).unwrap();
    assert_eq!(s.steps, 30);
    let (first, last) = (mean_loss(&s.losses[..6]), mean_loss(&s.losses[24..]));
    assert!(last < 0.9 * first, "loss {first:.4} -> {last:.4}");
    assert!(s.last_metrics.iter().any(|(n, _)| n == "acc_move_joint"));
}

#[test]
fn a_contrastive_run_refuses_micro_batches() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = write(
        d.path(),
        "simclr.yaml",
        format!(
            "{TINY_BACKBONE}  HEAD: {{NAME: ContrastiveHead}}\n{RUN}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
AUGMENTATION: {{COLOR_AUG: false}}
PRETRAIN:
  ENABLE: true
  GENERATOR: Contrastive
  CONTRASTIVE: {{FRAMEWORK: simclr, HEAD_MID_DIM: 16, HEAD_OUT_DIM: 8}}
  PARAMCROP: {{ENABLE: false, INPUT_FRAMES: 8, INPUT_SIZE: 40}}
TRAIN: {{BATCH_SIZE: 8, MICRO_BATCH_SIZE: 4, NUM_SAMPLES: 16}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: 1, WARMUP_EPOCHS: 0}}
"
        ),
    );
    let cfg = load_pretrain_config(&path, &[]).unwrap();
    let e = pretrain(&cfg, &run_options(d.path(), false, None))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("TRAIN.MICRO_BATCH_SIZE: is 4") && e.contains("set 0"),
        "{e}"
    );
}
