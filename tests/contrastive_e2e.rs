//! Contrastive pretraining end to end on tiny configs (R2D3D with 4-8 channels, 8-frame 40x40
//! synthetic source clips, 4x32x32 views): SimCLR and MoCo v2, each with random cubic crops and
//! with ParamCrop, learn; ParamCrop's update raises the loss it is trained against; a stopped
//! MoCo + ParamCrop run resumes onto the uninterrupted losses (key encoder, queue and parameter
//! net included).

use std::path::Path;

use tada::checkpoint::Checkpoint;
use tada::config::load as load_pretrain_config;
use tada::config::LoadedConfig;
use tada::data::loader::Batch;
use tada::models::Session;
use tada::runs::{finetune, pretrain};
use tada::tasks::contrastive::task::ContrastiveTask;
use tada::tasks::{StepContext, Task};
use tada::train::Summary;
use tch::{Device, Kind, Tensor};

use crate::common::{mean_loss, run_options, serial, TINY_BACKBONE};

/// The tiny backbone with a projection head, on the CPU.
fn model() -> String {
    format!("{TINY_BACKBONE}{MODEL_REST}")
}

const MODEL_REST: &str = "  HEAD: {NAME: ContrastiveHead}
NUM_GPUS: 0
RANDOM_SEED: 5
LOG_PERIOD: 1
DATA_LOADER: {NUM_WORKERS: 0}
BN: {EPS: 1e-3, MOMENTUM: 0.1}
DATA: {TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}
AUGMENTATION: {COLOR_AUG: false}
";

/// A contrastive run over 16 synthetic videos, 8 per step.
fn config(dir: &Path, framework: &str, paramcrop: bool, epochs: u32) -> LoadedConfig {
    let model = model();
    let yaml = format!(
        "{model}
PRETRAIN:
  ENABLE: true
  GENERATOR: Contrastive
  CONTRASTIVE: {{FRAMEWORK: {framework}, HEAD_MID_DIM: 16, HEAD_OUT_DIM: 8, TEMPERATURE: 0.2, QUEUE_SIZE: 24, MOMENTUM: 0.9}}
  PARAMCROP: {{ENABLE: {paramcrop}, INPUT_FRAMES: 8, INPUT_SIZE: 40, LR: 0.01, IMAGE_PERIOD: 12}}
TRAIN: {{BATCH_SIZE: 8, NUM_SAMPLES: 16, CHECKPOINT_PERIOD: 100}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: {epochs}, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0}}
"
    );
    let path = dir.join(format!("{framework}_{paramcrop}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    load_pretrain_config(&path, &[]).unwrap()
}

/// The mean loss of the last `n` steps is below `factor` times that of the `n` steps after the
/// first `skip`.
fn assert_loss_falls(s: &Summary, skip: usize, n: usize, factor: f64) {
    let first = mean_loss(&s.losses[skip..skip + n]);
    let last = mean_loss(&s.losses[s.losses.len() - n..]);
    eprintln!(
        "steps {}..{} mean {first:.4}, last {n} mean {last:.4}",
        skip + 1,
        skip + n
    );
    assert!(
        last < factor * first,
        "loss did not fall: steps {}..{} mean {first:.4}, last {n} mean {last:.4}",
        skip + 1,
        skip + n
    );
}

fn metric(s: &Summary, name: &str) -> f64 {
    s.last_metrics
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no metric {name} in {:?}", s.last_metrics))
        .1
}

/// Trains `framework` with or without ParamCrop for 12 epochs (24 steps) and checks the run.
fn run_learns(framework: &str, paramcrop: bool) {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), framework, paramcrop, 12);
    let s = pretrain(&cfg, &run_options(d.path(), false, None)).unwrap();
    assert_eq!(s.steps, 24);
    // MoCo starts from a queue of random keys, easy negatives: its loss rises until the queue
    // holds real keys (24 / 8 = 3 steps), and falls from there.
    let skip = if framework == "moco" { 3 } else { 0 };
    assert_loss_falls(&s, skip, 4, 0.9);
    for m in ["acc", "iou", "centre_distance", "iou_temporal"] {
        let v = metric(&s, m);
        assert!(v.is_finite() && (0.0..=3.0).contains(&v), "{m} = {v}");
    }
    assert_eq!(
        s.last_metrics.iter().any(|(n, _)| n == "grl_lambda"),
        paramcrop
    );
    let records = tada::train::metrics::read_metrics(&d.path().join("metrics.jsonl")).unwrap();
    assert!(records[23].contains_key("iou") && records[23].contains_key("clips_per_s"));
    let ckpt = Checkpoint::load(s.checkpoint.as_ref().unwrap()).unwrap();
    let has = |prefix: &str| ckpt.model.iter().any(|(n, _)| n.starts_with(prefix));
    assert_eq!(has("paramcrop."), paramcrop);
    assert_eq!(has("momentum_encoder.backbone."), framework == "moco");
    assert_eq!(has("contrastive.queue"), framework == "moco");
    assert!(has("head.mlp.linear_a.weight"));
    // The views drawn over their source at steps 12 and 24: 8 frames of 40x40 enlarged to
    // 160 px, two rows of 4 under a legend.
    crate::pictures::assert_views_logged(&d.path().join("tensorboard"), &[12, 24]);
    crate::pictures::assert_curriculum_plot(d.path(), paramcrop);
}

#[test]
fn simclr_with_random_cubic_crops_learns() {
    run_learns("simclr", false);
}

#[test]
fn simclr_with_paramcrop_learns() {
    run_learns("simclr", true);
}

#[test]
fn moco_with_random_cubic_crops_learns() {
    run_learns("moco", false);
}

#[test]
fn moco_with_paramcrop_learns() {
    run_learns("moco", true);
}

/// A fixed batch of 8 smooth random source clips in [0, 1]: `(8, 3, 8, 40, 40)`. Smooth, so
/// the loss is a smooth function of where the crops sit (on white noise a sub-pixel shift
/// changes every pixel and a first-order step says nothing).
fn fixed_batch() -> Batch {
    tch::manual_seed(11);
    let coarse = Tensor::rand([8, 3, 4, 5, 5], (Kind::Float, Device::Cpu));
    let inputs = coarse.upsample_trilinear3d([8, 40, 40], false, None, None, None);
    Batch {
        inputs,
        labels: Tensor::zeros([8], (Kind::Int64, Device::Cpu)),
        indices: (0..8).collect(),
        sources: (0..8).collect(),
        views: vec![0; 8],
        skipped: Vec::new(),
        make_seconds: 0.0,
        decode_seconds: 0.0,
    }
}

/// The loss of one step with libtorch's generator at `seed`: the same noise, cubes and flips
/// every time.
fn loss_at(task: &mut ContrastiveTask, session: &Session, batch: &Batch, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    let ctx = StepContext {
        epoch: 5.0,
        max_epoch: 10.0,
    };
    task.step(&session.model, batch, Device::Cpu, &ctx)
        .unwrap()
        .loss
}

/// Length of the test's normalised gradient steps: small enough that the first-order change
/// `STEP · ‖∇L‖` predicts the loss change well.
const STEP: f64 = 1e-4;

/// `p ← p − STEP · g / ‖g‖` over `params` (their gradients `g`); returns ‖g‖.
fn normalised_descent(params: &[Tensor]) -> f64 {
    let norm = params
        .iter()
        .filter(|p| p.grad().defined())
        .map(|p| p.grad().square().sum(Kind::Double).double_value(&[]))
        .sum::<f64>()
        .sqrt();
    assert!(norm > 0.0, "no gradient");
    tch::no_grad(|| {
        for p in params {
            let g = p.grad();
            if g.defined() {
                let mut p = p.shallow_clone();
                p -= g * (STEP / norm);
            }
        }
    });
    norm
}

#[test]
fn paramcrop_moves_its_crops_to_raise_the_contrastive_loss() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    for framework in ["simclr", "moco"] {
        let cfg = config(d.path(), framework, true, 10);
        let session = Session::new(&cfg.config).unwrap();
        let mut task = ContrastiveTask::new(&session, &cfg.config).unwrap();
        let batch = fixed_batch();
        let params = tada::optim::trainable_parameters(&session.vs);
        let (crop, encoder): (Vec<Tensor>, Vec<Tensor>) = {
            let is_crop = |n: &str| n.starts_with("paramcrop.");
            let pick = |want: bool| -> Vec<Tensor> {
                params
                    .iter()
                    .filter(|(n, _)| is_crop(n) == want)
                    .map(|(_, t)| t.shallow_clone())
                    .collect()
            };
            (pick(true), pick(false))
        };
        assert_eq!(crop.len(), 6, "fc1, fc2, out: weight and bias");

        let before = loss_at(&mut task, &session, &batch, 7);
        before.backward();
        let l0 = before.double_value(&[]);
        for p in &crop {
            assert!(p.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
        }
        // Descending the gradient the parameter net received — negated by the reversal layer —
        // must ascend the loss, by about STEP · ‖∇L‖ (λ ≈ 0.99 halfway through the DANN ramp).
        let norm = normalised_descent(&crop);
        let l1 = loss_at(&mut task, &session, &batch, 7).double_value(&[]);
        let expected = STEP * norm;
        eprintln!("{framework}: crop step {l0:.6} -> {l1:.6}, first order +{expected:.6}");
        assert!(
            l1 - l0 > 0.5 * expected && l1 - l0 < 1.5 * expected,
            "{framework}: the crop step changed the loss by {} (first order +{expected})",
            l1 - l0
        );

        // The encoder stepped the same way descends it: the reversal flips only the crop.
        for p in crop.iter().chain(&encoder) {
            let _ = p.grad().zero_();
        }
        let again = loss_at(&mut task, &session, &batch, 7);
        again.backward();
        normalised_descent(&encoder);
        let l2 = loss_at(&mut task, &session, &batch, 7).double_value(&[]);
        eprintln!("{framework}: encoder step {l1:.6} -> {l2:.6}");
        assert!(l2 < l1, "{framework}: the encoder step raised the loss");
    }
}

#[test]
fn a_stopped_moco_paramcrop_run_resumes_onto_the_same_losses() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let whole = pretrain(&config(&a, "moco", true, 3), &run_options(&a, false, None)).unwrap();
    assert_eq!(whole.steps, 6);
    let cfg = config(&b, "moco", true, 3);
    let first = pretrain(&cfg, &run_options(&b, false, Some(3))).unwrap();
    assert!(first.interrupted);
    let rest = pretrain(&cfg, &run_options(&b, true, None)).unwrap();
    assert_eq!(first.losses, whole.losses[..3]);
    assert_eq!(rest.losses, whole.losses[3..], "resumed losses differ");
}

#[test]
fn finetune_from_a_contrastive_checkpoint_loads_only_the_backbone() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let pre = d.path().join("pre");
    std::fs::create_dir_all(&pre).unwrap();
    let s = pretrain(
        &config(&pre, "moco", true, 1),
        &run_options(&pre, false, None),
    )
    .unwrap();
    let yaml = model().replace(
        "HEAD: {NAME: ContrastiveHead}",
        "HEAD: {NAME: BaseHead, NUM_CLASSES: 4}",
    ) + "
TRAIN: {DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 8, FINE_TUNE: true}
OPTIMIZER: {OPTIM_METHOD: adam, BASE_LR: 0.001, MAX_EPOCH: 1, WARMUP_EPOCHS: 0}
";
    let path = d.path().join("ft.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = tada::config::load(&path, &[]).unwrap();
    let mut opts = run_options(&d.path().join("ft"), false, None);
    opts.weights = s.checkpoint;
    let (_, report) = finetune(&cfg, &opts).unwrap();
    let r = report.unwrap();
    assert!(r.dropped.iter().any(|n| n.starts_with("paramcrop.")));
    assert!(r.dropped.iter().any(|n| n.starts_with("momentum_encoder.")));
    assert!(r.dropped.iter().any(|n| n.starts_with("head.mlp.")));
    assert_eq!(r.load.missing, ["head.out.bias", "head.out.weight"]);
    assert!(r.load.unexpected.is_empty() && r.load.loaded > 20);
}

#[test]
fn simclr_paramcrop_runs_on_a_ucf101_tree_of_real_videos() {
    use crate::common::write;
    use crate::media::{make_video, Kind as Media};
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("UCF-101");
    let anno = d.path().join("ucfTrainTestlist");
    write(&anno, "classInd.txt", "1 Archery\n2 Biking\n");
    let mut train = String::new();
    for (i, kind) in [Media::Avi, Media::Mp4, Media::Avi, Media::Mp4]
        .into_iter()
        .enumerate()
    {
        let class = ["Archery", "Biking"][i % 2];
        let rel = format!("{class}/v_{class}_g0{i}_c01.{}", kind.ext());
        make_video(&root.join(&rel), kind, 20, 64, 48);
        train.push_str(&format!("{rel} {}\n", i % 2 + 1));
    }
    write(&anno, "trainlist01.txt", &train);
    let model = model().replace(
        "DATA: {",
        "DATA: {DATA_ROOT_DIR: '{root}', ANNO_DIR: '{anno}', SAMPLING_RATE: 2, ",
    );
    let yaml = format!(
        "{model}
PRETRAIN:
  ENABLE: true
  GENERATOR: Contrastive
  CONTRASTIVE: {{HEAD_MID_DIM: 16, HEAD_OUT_DIM: 8}}
  PARAMCROP: {{ENABLE: true, INPUT_FRAMES: 8, INPUT_SIZE: 40}}
TRAIN: {{DATASET: ucf101, BATCH_SIZE: 2}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.001, MAX_EPOCH: 1, WARMUP_EPOCHS: 0}}
"
    )
    .replace("{root}", &root.display().to_string())
    .replace("{anno}", &anno.display().to_string());
    let path = write(d.path(), "simclr_ucf.yaml", &yaml);
    let cfg = load_pretrain_config(&path, &[]).unwrap();
    let s = pretrain(&cfg, &run_options(&d.path().join("run"), false, None)).unwrap();
    assert_eq!(s.steps, 2);
    assert!(s.losses.iter().all(|(_, l)| l.is_finite() && *l > 0.0));
    assert!(metric(&s, "iou") > 0.0 && metric(&s, "iou") <= 1.0);
    assert!(s.checkpoint.unwrap().is_file());
}
