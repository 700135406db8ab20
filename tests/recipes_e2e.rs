//! The reference's supervised recipes end to end on tiny configs: the model EMA (updated every
//! step, checkpointed, resumed exactly, validated and tested with `--ema`).

use std::path::Path;

use crate::common::{run_options, serial, TINY_BACKBONE};
use tada::checkpoint::{ema_name, Checkpoint};
use tada::config::LoadedConfig;
use tada::runs::finetune;

/// Fine-tuning R2D3D on 16 synthetic videos, 8 a step, 3 epochs, with `extra` YAML appended.
fn finetune_config(dir: &Path, extra: &str) -> LoadedConfig {
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.0}}
NUM_GPUS: 0
RANDOM_SEED: 5
LOG_PERIOD: 1
DATA_LOADER: {{NUM_WORKERS: 0}}
MODEL: {{NAME: R2D3D}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 16, FINE_TUNE: true, EVAL_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.05, MAX_EPOCH: 3, WARMUP_EPOCHS: 0, MOMENTUM: 0.9}}
{extra}"
    );
    let path = dir.join("ft.yaml");
    std::fs::write(&path, yaml).unwrap();
    tada::config::load(&path, &[]).unwrap()
}

/// Every loss of the run was finite and its last checkpoint averages every model tensor.
fn assert_trained_with_the_ema(s: &tada::train::Summary) {
    assert!(
        s.losses.iter().all(|(_, l)| l.is_finite()),
        "{:?}",
        s.losses
    );
    let ckpt = Checkpoint::load(s.checkpoint.as_ref().unwrap()).unwrap();
    assert_eq!(ckpt.ema.len(), ckpt.model.len());
}

const EMA: &str = "MODEL: {NAME: R2D3D, EMA: {ENABLE: true, DECAY: 0.5}}\n";

#[test]
fn the_ema_is_checkpointed_resumed_exactly_validated_and_tested() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();

    // The whole run: 2 steps an epoch, 3 epochs.
    let (whole, _) = finetune(&finetune_config(&a, EMA), &run_options(&a, false, None)).unwrap();
    assert_eq!(whole.steps, 6);
    let ckpt = Checkpoint::load(whole.checkpoint.as_ref().unwrap()).unwrap();
    let model: Vec<&str> = ckpt.model.iter().map(|(n, _)| n.as_str()).collect();
    let ema: Vec<&str> = ckpt.ema.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(ema, model, "every model tensor has its average");
    let trained_apart = ckpt
        .ema
        .iter()
        .zip(&ckpt.model)
        .filter(|((_, e), (_, m))| !e.equal(m))
        .count();
    assert!(
        trained_apart > 20,
        "{trained_apart} averages differ from the weights"
    );

    // Stopped mid-epoch and resumed: the same average, bit for bit.
    let cfg_b = finetune_config(&b, EMA);
    let (first, _) = finetune(&cfg_b, &run_options(&b, false, Some(3))).unwrap();
    assert!(first.interrupted);
    let (rest, _) = finetune(&cfg_b, &run_options(&b, true, None)).unwrap();
    assert_eq!(rest.losses, whole.losses[3..], "resumed losses differ");
    let resumed = Checkpoint::load(rest.checkpoint.as_ref().unwrap()).unwrap();
    for ((n, e), (_, r)) in ckpt.ema.iter().zip(&resumed.ema) {
        assert!(e.equal(r), "EMA {n} differs after resuming");
    }

    // Validation scores the average too, as `val_ema`.
    let records = tada::train::metrics::read_metrics(&a.join("metrics.jsonl")).unwrap();
    let phases = |p: &str| records.iter().filter(|r| r["phase"] == p).count();
    assert_eq!((phases("val"), phases("val_ema")), (3, 3));

    // `tada test --ema` tests the average; without EMA weights it says so.
    let cfg_a = finetune_config(&a, EMA);
    let path = whole.checkpoint.unwrap();
    let with_ema = tada::runs::test::test(&cfg_a, &path, true).unwrap();
    assert_eq!(with_ema.videos, 16);
    let (plain, _) = {
        let c = d.path().join("c");
        std::fs::create_dir_all(&c).unwrap();
        finetune(&finetune_config(&c, ""), &run_options(&c, false, Some(1))).unwrap()
    };
    let no_ema = plain.checkpoint.unwrap();
    assert!(Checkpoint::load(&no_ema).unwrap().ema.is_empty());
    let e = tada::runs::test::test(&cfg_a, &no_ema, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds no EMA weights") && !e.contains('\n'),
        "{e}"
    );
    assert_eq!(ema_name("__ema.head.out.bias__"), Some("head.out.bias"));
}

/// A Kinetics-400 layout of `per_class` 12-frame 48x40 mp4 videos for each of two classes
/// (train and val lists alike); returns (DATA_ROOT_DIR, ANNO_DIR).
fn tiny_kinetics(dir: &Path, per_class: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let (root, anno) = (dir.join("k400"), dir.join("anno"));
    std::fs::create_dir_all(&anno).unwrap();
    let mut rows = String::from("label,youtube_id,time_start,time_end,split\n");
    for (c, label) in ["abseiling", "bowling"].iter().enumerate() {
        for i in 0..per_class {
            let id = format!("v{c}{i}");
            let file = root.join(format!("train/{label}/{id}_000000_000010.mp4"));
            crate::media::make_video(&file, crate::media::Kind::Mp4, 12, 48, 40);
            std::fs::create_dir_all(root.join(format!("val/{label}"))).unwrap();
            std::fs::copy(
                &file,
                root.join(format!("val/{label}/{id}_000000_000010.mp4")),
            )
            .unwrap();
            rows.push_str(&format!("{label},{id},0,10,train\n"));
        }
    }
    std::fs::write(anno.join("train.csv"), &rows).unwrap();
    std::fs::write(anno.join("validate.csv"), &rows).unwrap();
    (root, anno)
}

/// Every augmentation of the reference's supervised recipes at once — RandAugment, colour
/// jitter, random erasing, mixup switching with CutMix, label smoothing — and the EMA, on real
/// videos: each is in the pipeline the run builds, and the run trains with finite losses into
/// a checkpoint holding the average.
#[test]
fn every_augmentation_of_the_recipes_runs_with_the_ema() {
    use tada::data::dataset::Split;
    use tada::data::loader::SampleSource;
    use tada::data::sources::video_clips::{ClipSourceConfig, VideoClips};
    use tada::tasks::classify::ClassifyTask;

    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let (root, anno) = tiny_kinetics(d.path(), 4);
    let recipe = format!(
        "MODEL: {{NAME: R2D3D, EMA: {{ENABLE: true, DECAY: 0.9}}}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4, SAMPLING_RATE: 2, TRAIN_JITTER_SCALES: [0.3, 1.0],
  TEST_SCALE: 32, TEST_CROP_SIZE: 32, DATA_ROOT_DIR: '{}', ANNO_DIR: '{}'}}
AUGMENTATION:
  COLOR_AUG: true
  AUTOAUGMENT: {{ENABLE: true, TYPE: rand-m9-n4-mstd0.5-inc1}}
  MIXUP: {{ENABLE: true, ALPHA: 0.8, PROB: 1.0, SWITCH_PROB: 0.5}}
  CUTMIX: {{ENABLE: true, ALPHA: 1.0}}
  RANDOM_ERASING: {{ENABLE: true, PROB: 1.0, MODE: const, COUNT: [1, 2]}}
  LABEL_SMOOTHING: 0.1
",
        root.display(),
        anno.display()
    );
    let dir = d.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = finetune_config(&dir, &recipe);
    cfg.config.train.dataset = Some(tada::config::schema::Dataset::Kinetics400);
    cfg.config.train.num_samples = None;
    cfg.config.video.head.num_classes = Some(2);
    cfg.config.optimizer.max_epoch = 2;

    // The pipeline the run builds has every step: a training clip erased with the constant
    // fill holds exact zeros, which the same clip without erasing does not.
    let c = &cfg.config;
    let clips = ClipSourceConfig::from_config(c, Split::Train).unwrap();
    assert!(clips.clip.rand_augment.is_some() && clips.clip.erasing.is_some());
    assert!(clips.clip.color.is_some());
    let entries = tada::data::pipeline::entries(c, Split::Train)
        .unwrap()
        .entries;
    let erased = VideoClips::new(entries.clone(), clips.clone());
    let mut plain_cfg = clips;
    plain_cfg.clip.erasing = None;
    let plain = VideoClips::new(entries, plain_cfg);
    let zeros = |s: &VideoClips| {
        let mut rng = rand::SeedableRng::seed_from_u64(3);
        let x = s.get(0, &mut rng).unwrap().input;
        x.eq(0.0).sum(tch::Kind::Int64).int64_value(&[])
    };
    assert!(zeros(&erased) > 0 && zeros(&plain) == 0);
    assert!(ClassifyTask::from_config(c).unwrap().mixup.is_some());

    let (s, _) = finetune(&cfg, &run_options(&dir, false, None)).unwrap();
    assert_eq!(s.steps, 2, "8 videos, 8 a step, 2 epochs");
    assert_trained_with_the_ema(&s);
}

/// The official ConvNeXt layout of a TAdaConvNeXtV2 model's 2-D weights (the inverse of the
/// conversion), as the file TRAIN.INIT in1k names would hold them.
fn convnext_file(session: &tada::models::Session, path: &Path) -> usize {
    use tch::Tensor;
    let mut out: Vec<(String, Tensor)> = Vec::new();
    for (name, t) in session.vs.variables() {
        let Some(key) = name.strip_prefix("backbone.") else {
            continue;
        };
        if key.contains("dwconv_rf") || key.contains("norm_avgpool") {
            continue; // TAdaConv's own parameters: no image model has them
        }
        let t = if key == "downsample_layers.0.0.weight" {
            t.select(2, 1)
        } else if key.ends_with("dwconv.weight") || key.ends_with("dwconv.bias") {
            t.squeeze_dim(0).squeeze_dim(0)
        } else if t.dim() == 5 {
            t.squeeze_dim(2)
        } else {
            t
        };
        out.push((key.to_string(), t.contiguous()));
    }
    let n = out.len();
    let width = out
        .iter()
        .find(|(k, _)| k == "norm.weight")
        .map(|(_, t)| t.size()[0])
        .unwrap();
    out.push((
        "head.weight".into(),
        Tensor::zeros([1000, width], tch::kind::FLOAT_CPU),
    ));
    out.push((
        "head.bias".into(),
        Tensor::zeros([1000], tch::kind::FLOAT_CPU),
    ));
    let refs: Vec<(&str, &Tensor)> = out.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&refs, path).unwrap();
    n
}

/// With `TADA_REFERENCE` set: the reference's own tadaconvnextv2_tiny_k400_16f.yaml, only its
/// dataset paths, sizes (frames, crop, classes, batch, workers, GPUs) and epochs overridden,
/// fine-tunes on a tiny generated Kinetics from an ImageNet ConvNeXt file (its TRAIN.INIT) with
/// its recipe's augmentations on (RandAugment rand-m9-n4-mstd0.5-inc1, colour jitter) and the
/// EMA switched on, and its checkpoint holds the EMA weights.
#[test]
fn the_reference_tadaconvnextv2_recipe_fine_tunes_as_written() {
    let Some(reference) = std::env::var_os("TADA_REFERENCE") else {
        eprintln!("skipped: set TADA_REFERENCE to a checkout of TAdaConv to run its recipe");
        return;
    };
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let (root, anno) = tiny_kinetics(d.path(), 2);
    let file = std::path::PathBuf::from(reference)
        .join("configs/projects/tadaconvnextv2/tadaconvnextv2_tiny_k400_16f.yaml");
    let sets: Vec<String> = [
        format!("DATA.DATA_ROOT_DIR={}", root.display()),
        format!("DATA.ANNO_DIR={}", anno.display()),
        // The stem halves time and the blocks pool 3 frames: 8 is the fewest that runs.
        "DATA.NUM_INPUT_FRAMES=8".into(),
        "DATA.SAMPLING_RATE=1".into(),
        "DATA.TRAIN_CROP_SIZE=32".into(),
        "DATA.TEST_SCALE=32".into(),
        "DATA.TEST_CROP_SIZE=32".into(),
        "VIDEO.HEAD.NUM_CLASSES=2".into(),
        "TRAIN.BATCH_SIZE=2".into(),
        "TEST.BATCH_SIZE=2".into(),
        "NUM_GPUS=0".into(),
        "DATA_LOADER.NUM_WORKERS=0".into(),
        "OPTIMIZER.MAX_EPOCH=1".into(),
        "OPTIMIZER.WARMUP_EPOCHS=0".into(),
        "MODEL.EMA.ENABLE=true".into(),
    ]
    .into();
    let cfg = tada::config::load(&file, &sets).unwrap();
    let a = &cfg.config.augmentation;
    assert!(a.autoaugment.enable && a.color_aug && cfg.config.train.init == "in1k");
    let image = d.path().join("convnext_tiny_in1k.safetensors");
    let tensors = convnext_file(&tada::models::Session::new(&cfg.config).unwrap(), &image);
    let dir = d.path().join("run");
    let mut opts = run_options(&dir, false, None);
    opts.weights = Some(image);
    let (s, report) = finetune(&cfg, &opts).unwrap();
    let r = report.unwrap();
    assert_eq!(
        r.image_model,
        Some(tada::checkpoint::image_init::ImageModel::ConvNeXt)
    );
    assert_eq!(r.load.loaded, tensors, "every ConvNeXt tensor loads");
    assert_eq!(s.steps, 2);
    assert_trained_with_the_ema(&s);
}
