//! End-to-end training runs on tiny configs (R2D3D with 4-8 channels, 4 frames of 32x32,
//! synthetic data): MoSI pretraining learns, the linear probe trains only the head, and a run
//! stopped and resumed gives the same losses as an uninterrupted one.

use std::path::Path;

use crate::common::{mean_loss, run_options, serial, TINY_BACKBONE};
use tada::checkpoint::{latest_checkpoint, Checkpoint};
use tada::config::LoadedConfig;
use tada::models::Session;
use tada::runs::{finetune, pretrain};
use tada::train::Summary;

const RUN: &str = "
NUM_GPUS: 0
RANDOM_SEED: 3
LOG_PERIOD: 1
DATA_LOADER: {NUM_WORKERS: 0}
BN: {EPS: 1e-3, MOMENTUM: 0.1}
";

/// MoSI joint pretraining over 12 synthetic images, 4 per step, `epochs` epochs.
fn mosi_config(dir: &Path, epochs: u32, dropout: f64) -> LoadedConfig {
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: {dropout}}}\n{RUN}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false, IMAGE_PERIOD: 15}}
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 12, CHECKPOINT_PERIOD: 2}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: {epochs}, WARMUP_EPOCHS: 0, LR_POLICY: cosine}}
"
    );
    let path = dir.join("mosi.yaml");
    std::fs::write(&path, yaml).unwrap();
    tada::config::recipes::MOSI.load(&path, &[]).unwrap()
}

/// The first and last `n` losses must differ clearly, the last being lower.
fn assert_loss_falls(s: &Summary, n: usize, factor: f64) {
    assert!(s.losses.len() >= 2 * n, "{} steps", s.losses.len());
    let (first, last) = (
        mean_loss(&s.losses[..n]),
        mean_loss(&s.losses[s.losses.len() - n..]),
    );
    eprintln!("first {n} mean {first:.4}, last {n} mean {last:.4}");
    assert!(
        last < factor * first,
        "loss did not fall: first {n} mean {first:.4}, last {n} mean {last:.4}"
    );
}

#[test]
fn mosi_joint_pretraining_loss_falls_and_writes_the_run() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = mosi_config(d.path(), 10, 0.0);
    let s = pretrain(&cfg, &run_options(d.path(), false, None)).unwrap();
    assert_eq!((s.epochs, s.steps), (10, 30));
    assert!(!s.interrupted);
    assert_loss_falls(&s, 6, 0.9);
    // Joint head: 5 decoupled speed classes; the metrics name the head.
    assert!(s.last_metrics.iter().any(|(n, _)| n == "acc_move_joint"));
    let metrics = tada::train::metrics::read_metrics(&d.path().join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.len(), 30);
    for key in [
        "loss",
        "lr",
        "acc_move_joint",
        "clips_per_s",
        "data_wait_share",
    ] {
        assert!(metrics[29].contains_key(key), "metrics.jsonl lacks {key}");
    }
    assert!(d.path().join("config.yaml").is_file());
    crate::pictures::assert_mosi_grids_logged(&d.path().join("tensorboard"), &[15, 30], 5);
    let ckpts: Vec<_> = std::fs::read_dir(d.path().join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(ckpts.len(), 5, "{ckpts:?}"); // every 2 epochs of 10
    let last =
        Checkpoint::load(&latest_checkpoint(&d.path().join("checkpoints")).unwrap()).unwrap();
    assert_eq!((last.run.epoch, last.run.step, last.run.seed), (10, 30, 3));
    assert!(!last.optimizer.is_empty(), "optimiser state missing");
}

#[test]
fn mosi_separate_labels_train_the_x_head() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    // LABEL_MODE separate gives [x speed, y speed] per clip; MoSIHeadOnlyX (`move_x`) learns the
    // x column, y-moving clips counting as x-still.
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: MoSIHeadOnlyX, NUM_CLASSES: 3, DROPOUT_RATE: 0.0}}\n{RUN}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false, LABEL_MODE: separate}}
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 12, CHECKPOINT_PERIOD: 100}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: 10, WARMUP_EPOCHS: 0, LR_POLICY: cosine}}
"
    );
    let path = d.path().join("mosi_x.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = tada::config::recipes::MOSI.load(&path, &[]).unwrap();
    let s = pretrain(&cfg, &run_options(d.path(), false, None)).unwrap();
    assert_eq!(s.steps, 30);
    assert_loss_falls(&s, 6, 0.9);
    assert!(s.last_metrics.iter().any(|(n, _)| n == "acc_move_x"));
    assert!(!s
        .last_metrics
        .iter()
        .any(|(n, _)| n.ends_with("move_joint")));
}

#[test]
fn linear_probe_trains_only_the_head() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.0}}\n{RUN}
MODEL: {{NAME: R2D3D}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 32, ONLY_LINEAR: true, CHECKPOINT_PERIOD: 100}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.5, MAX_EPOCH: 12, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0}}
"
    );
    let path = d.path().join("probe.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = tada::config::load(&path, &[]).unwrap();
    let (s, weights) = finetune(&cfg, &run_options(d.path(), false, None)).unwrap();
    assert!(weights.is_none());
    assert_eq!(s.steps, 48);
    assert_loss_falls(&s, 4, 0.95);
    // The same seed rebuilds the initial weights: compare them with the final checkpoint.
    let init = Session::new(&cfg.config).unwrap();
    let vars = init.vs.variables();
    let ckpt = Checkpoint::load(s.checkpoint.as_ref().unwrap()).unwrap();
    let (mut head, mut backbone) = (0, 0);
    for (name, t) in &ckpt.model {
        let same = vars[name].equal(t);
        if name.starts_with("head.") {
            head += 1;
            assert!(!same, "{name} did not train");
        } else {
            backbone += 1;
            // BN statistics included: the frozen backbone runs in evaluation mode.
            assert!(same, "{name} changed in a linear probe");
        }
    }
    assert!(
        head == 2 && backbone > 20,
        "head {head}, backbone {backbone}"
    );
    check_validation(d.path(), &s);
}

/// The probe's 12 epochs validate at the end of each of the last 10 (and of the 10th, by
/// TRAIN.EVAL_PERIOD 10), log `val/*` to metrics.jsonl and TensorBoard, and keep the
/// checkpoint of the best acc@1 with that score in its run state.
fn check_validation(dir: &Path, s: &Summary) {
    let records = tada::train::metrics::read_metrics(&dir.join("metrics.jsonl")).unwrap();
    let val: Vec<_> = records.iter().filter(|r| r["phase"] == "val").collect();
    let epochs: Vec<u64> = val.iter().map(|r| r["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, (2..12).collect::<Vec<u64>>());
    let acc: Vec<f64> = val.iter().map(|r| r["acc@1"].as_f64().unwrap()).collect();
    assert!(val.iter().all(|r| r["loss"].as_f64().unwrap().is_finite()));
    // 4 classes: acc@5 would count every clip.
    assert!(val.iter().all(|r| r.get("acc@5").is_none()));
    let best = acc.iter().cloned().fold(f64::MIN, f64::max);
    let first_best = acc.iter().position(|&a| a == best).unwrap() as u64 + 3;
    let (epoch, best_acc, path) = s.best_val.clone().unwrap();
    assert_eq!((epoch, best_acc), (first_best, best));
    assert_eq!(
        path,
        dir.join("checkpoints").join(tada::train::BEST_CHECKPOINT)
    );
    let ckpt = Checkpoint::load(&path).unwrap();
    assert_eq!(ckpt.run.extra["best_val_acc1"].as_f64(), Some(best));
    assert_eq!(ckpt.run.epoch, first_best);
    let tb = std::fs::read_dir(dir.join("tensorboard"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let scalars = tada::train::tensorboard::scalars(tb.path()).unwrap();
    let tagged = scalars.iter().filter(|(t, _, _)| t == "val/acc@1").count();
    assert_eq!(tagged, 10);
}

#[test]
fn finetune_loads_pretrained_weights_without_the_head() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let pre = d.path().join("pre");
    std::fs::create_dir_all(&pre).unwrap();
    let s = pretrain(&mosi_config(&pre, 1, 0.5), &run_options(&pre, false, None)).unwrap();
    let ckpt = s.checkpoint.unwrap();
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.5}}\n{RUN}
MODEL: {{NAME: R2D3D}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 16, FINE_TUNE: true}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.01, MAX_EPOCH: 1, WARMUP_EPOCHS: 0, MOMENTUM: 0.9}}
"
    );
    let path = d.path().join("ft.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = tada::config::load(&path, &[]).unwrap();
    let mut opts = run_options(&d.path().join("ft"), false, None);
    opts.weights = Some(ckpt);
    let (s, weights) = finetune(&cfg, &opts).unwrap();
    let w = weights.unwrap();
    assert_eq!(w.dropped, ["head.out_joint.bias", "head.out_joint.weight"]);
    assert_eq!(w.load.missing, ["head.out.bias", "head.out.weight"]);
    assert!(w.load.unexpected.is_empty() && w.load.loaded > 20);
    assert_eq!(s.steps, 2);

    // Fine-tuning into the pretraining's folder says so in one line, and leaves that run's
    // config as it was.
    let config_before = std::fs::read(pre.join("config.yaml")).unwrap();
    let e = finetune(&cfg, &run_options(&pre, false, None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds a run of task mosi")
            && e.contains("this run trains finetune")
            && e.contains("--weights"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    assert_eq!(
        std::fs::read(pre.join("config.yaml")).unwrap(),
        config_before
    );
}

#[test]
fn a_stopped_and_resumed_run_repeats_the_uninterrupted_losses() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // Dropout on: the per-step seeding must make its draws repeat too.
    let whole = pretrain(&mosi_config(&a, 3, 0.5), &run_options(&a, false, None)).unwrap();
    assert_eq!(whole.steps, 9);
    let cfg = mosi_config(&b, 3, 0.5);
    // Stop mid-epoch (3 steps per epoch), as a signal would: the loop checkpoints and returns.
    let first = pretrain(&cfg, &run_options(&b, false, Some(5))).unwrap();
    assert!(first.interrupted);
    assert_eq!((first.epochs, first.steps), (1, 5));
    let rest = pretrain(&cfg, &run_options(&b, true, None)).unwrap();
    assert!(rest.resumed_from.is_some());
    assert_eq!(rest.steps, 9);
    assert_eq!(first.losses, whole.losses[..5]);
    assert_eq!(rest.losses, whole.losses[5..], "resumed losses differ");
}

#[test]
fn a_non_finite_loss_stops_the_run_naming_the_step_and_the_last_checkpoint() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    // Epoch 1 trains normally and is checkpointed; from epoch 2 the learning rate is 1e30, so
    // the first update of epoch 2 blows the weights up and the next loss is not finite.
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: 0.0}}\n{RUN}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false, IMAGE_PERIOD: 15}}
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 12, CHECKPOINT_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: sgd, MOMENTUM: 0.0, NESTEROV: false, BASE_LR: 0.01, MAX_EPOCH: 3, WARMUP_EPOCHS: 0,
  LR_POLICY: steps_with_relative_lrs, STEPS: [0, 1], LRS: [1, 1.0e30]}}
"
    );
    let path = d.path().join("nan.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = tada::config::recipes::MOSI.load(&path, &[]).unwrap();
    let err = pretrain(&cfg, &run_options(d.path(), false, None)).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    let (step, ckpt) = match err {
        tada::train::TrainError::NonFiniteLoss {
            step,
            last_checkpoint,
            ..
        }
        | tada::train::TrainError::NonFiniteGradient {
            step,
            last_checkpoint,
            ..
        } => (step, last_checkpoint),
        other => panic!("expected a non-finite loss or gradient, got {other}"),
    };
    assert!((4..=6).contains(&step), "stopped at step {step}");
    let ckpt = ckpt.expect("the epoch-1 checkpoint");
    assert!(
        ckpt.ends_with("checkpoint_epoch_00001.safetensors"),
        "{ckpt:?}"
    );
    assert!(msg.contains(&format!("step {step}")) && msg.contains("checkpoint_epoch_00001"));
    // The last good checkpoint is intact and loads.
    let c = Checkpoint::load(&ckpt).unwrap();
    assert_eq!((c.run.epoch, c.run.step), (1, 3));
}

#[test]
fn a_second_run_into_the_same_folder_resumes_or_refuses() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = mosi_config(d.path(), 2, 0.0);
    assert!(
        cfg.config.train.auto_resume,
        "the MoSI recipe auto-resumes, as the reference"
    );
    // Stopped after 2 of 6 steps; the same call again (no --resume) continues, as the
    // reference's TRAIN.AUTO_RESUME does.
    let first = pretrain(&cfg, &run_options(d.path(), false, Some(2))).unwrap();
    assert_eq!(first.steps, 2);
    let again = pretrain(&cfg, &run_options(d.path(), false, None)).unwrap();
    assert_eq!(again.resumed_from, first.checkpoint);
    assert_eq!((again.steps, again.losses.len()), (6, 4));

    // With AUTO_RESUME off, starting over in a folder that holds a run is refused, and the
    // run's checkpoints stay as they were.
    let path = d.path().join("mosi.yaml");
    let off = tada::config::recipes::MOSI
        .load(&path, &["TRAIN.AUTO_RESUME=false".to_string()])
        .unwrap();
    let newest = latest_checkpoint(&d.path().join("checkpoints")).unwrap();
    let before = std::fs::read(&newest).unwrap();
    let e = pretrain(&off, &run_options(d.path(), false, None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already holds a run")
            && e.contains("--resume")
            && e.contains(&newest.display().to_string()),
        "{e}"
    );
    assert_eq!(std::fs::read(&newest).unwrap(), before);
    // --resume still continues it.
    let resumed = pretrain(&off, &run_options(d.path(), true, None)).unwrap();
    assert_eq!((resumed.steps, resumed.losses.len()), (6, 0));
}
