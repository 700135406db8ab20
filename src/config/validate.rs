//! Checks of values the types alone cannot express, run before anything is built.

use super::error::ConfigError;
use super::schema::{Config, Dataset, Decoder, LrPolicy, OptimMethod, StandardSize};
use super::source::Sources;

/// Largest DATA_LOADER.NUM_WORKERS (and `tada data check --workers`): one OS thread each, and
/// a thread that cannot be started would fail the run.
pub const MAX_NUM_WORKERS: usize = 256;
/// Largest batch size (TRAIN/TEST.BATCH_SIZE, `tada bench model --batch`).
pub const MAX_BATCH_SIZE: usize = 65536;
/// Largest side in pixels of a crop, a resize target or a source clip.
pub const MAX_SPATIAL_SIZE: usize = 4096;
/// Largest number of frames of one clip.
pub const MAX_FRAMES: usize = 4096;
/// Largest width of a layer (channels, features, hidden units).
pub const MAX_WIDTH: usize = 65536;
/// Largest single parameter or buffer (the classifier's weight, MoCo's queue): over this a
/// config is a typo, and libtorch would fail (or the OS kill the process) allocating it.
pub const MAX_PARAMETER_BYTES: u64 = 4 << 30;
/// Largest input batch (batch x clips of frames x side²) as float32 bytes.
pub const MAX_BATCH_BYTES: u64 = 64 << 30;

/// Bytes in words, for the size checks' messages.
fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / f64::from(1u32 << 30))
}

struct Checker<'a> {
    sources: &'a Sources,
}

impl Checker<'_> {
    fn check(&self, ok: bool, key: &str, message: impl Into<String>) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                key: key.into(),
                origin: self.sources.of(key),
                message: message.into(),
            })
        }
    }

    fn positive(&self, v: f64, key: &str) -> Result<(), ConfigError> {
        self.check(
            v.is_finite() && v > 0.0,
            key,
            format!("must be > 0, got {v}"),
        )
    }

    fn at_least_one(&self, v: usize, key: &str) -> Result<(), ConfigError> {
        self.check(v >= 1, key, format!("must be at least 1, got {v}"))
    }

    fn probability(&self, v: f64, key: &str) -> Result<(), ConfigError> {
        self.check(
            (0.0..=1.0).contains(&v),
            key,
            format!("must be in [0, 1], got {v}"),
        )
    }

    fn at_most(&self, v: usize, max: usize, key: &str) -> Result<(), ConfigError> {
        self.check(v <= max, key, format!("must be at most {max}, got {v}"))
    }

    /// `count` float32 values (computed in f64: the product of user values may overflow).
    fn bytes_at_most(
        &self,
        count: f64,
        max: u64,
        key: &str,
        what: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        let bytes = 4.0 * count;
        if bytes <= max as f64 {
            return Ok(());
        }
        self.check(
            false,
            key,
            format!(
                "{} would take {}, more than the {} tada allows",
                what(),
                gib(bytes),
                gib(max as f64)
            ),
        )
    }

    fn range_pair(&self, v: &[f64], key: &str) -> Result<(), ConfigError> {
        self.check(
            v.len() == 2 && v[0] <= v[1] && v.iter().all(|x| x.is_finite() && *x > 0.0),
            key,
            format!("must be [low, high] with 0 < low <= high, got {v:?}"),
        )
    }
}

/// Sizes whose tensors could not be allocated: refused here, by name, rather than by an
/// allocation failure (an abort, for memory Rust itself allocates) once the run has started.
fn check_sizes(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    c.at_most(
        cfg.data_loader.num_workers,
        MAX_NUM_WORKERS,
        "DATA_LOADER.NUM_WORKERS",
    )?;
    c.at_most(cfg.train.batch_size, MAX_BATCH_SIZE, "TRAIN.BATCH_SIZE")?;
    c.at_most(cfg.test.batch_size, MAX_BATCH_SIZE, "TEST.BATCH_SIZE")?;
    check_clip_extents(cfg, c)?;
    check_widths(cfg, c)?;
    check_parameter_bytes(cfg, c)?;
    check_batch_bytes(cfg, c)
}

/// The sides and frame counts of clips, crops and resize targets.
fn check_clip_extents(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let d = &cfg.data;
    let p = &cfg.pretrain;
    let pc = &p.paramcrop;
    for (v, key) in [
        (d.train_crop_size, "DATA.TRAIN_CROP_SIZE"),
        (d.test_crop_size, "DATA.TEST_CROP_SIZE"),
        (d.test_scale, "DATA.TEST_SCALE"),
        (pc.input_size, "PRETRAIN.PARAMCROP.INPUT_SIZE"),
    ] {
        c.at_most(v, MAX_SPATIAL_SIZE, key)?;
    }
    // Above 1, the jitter range is a short side in pixels.
    c.check(
        d.train_jitter_scales
            .iter()
            .all(|s| *s <= MAX_SPATIAL_SIZE as f64),
        "DATA.TRAIN_JITTER_SCALES",
        format!(
            "sides must be at most {MAX_SPATIAL_SIZE}, got {:?}",
            d.train_jitter_scales
        ),
    )?;
    let standard = match &p.standard_size {
        StandardSize::Fixed(n) => vec![*n],
        StandardSize::Range(v) => v.clone(),
    };
    c.check(
        standard.iter().all(|s| *s <= MAX_SPATIAL_SIZE),
        "PRETRAIN.STANDARD_SIZE",
        format!("sizes must be at most {MAX_SPATIAL_SIZE}, got {standard:?}"),
    )?;
    for (v, key) in [
        (d.num_input_frames, "DATA.NUM_INPUT_FRAMES"),
        (p.num_frames, "PRETRAIN.NUM_FRAMES"),
        (pc.input_frames, "PRETRAIN.PARAMCROP.INPUT_FRAMES"),
    ] {
        c.at_most(v, MAX_FRAMES, key)?;
    }
    Ok(())
}

/// The widths of layers: the backbone's, the parameter net's and the contrastive head's.
fn check_widths(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let b = &cfg.video.backbone;
    let p = &cfg.pretrain;
    let pc = &p.paramcrop;
    let widths = [
        (b.num_out_features, "VIDEO.BACKBONE.NUM_OUT_FEATURES"),
        (b.num_features, "VIDEO.BACKBONE.NUM_FEATURES"),
        (Some(pc.noise_dim), "PRETRAIN.PARAMCROP.NOISE_DIM"),
        (Some(pc.hidden_dim), "PRETRAIN.PARAMCROP.HIDDEN_DIM"),
        (
            Some(p.contrastive.head_mid_dim),
            "PRETRAIN.CONTRASTIVE.HEAD_MID_DIM",
        ),
        (
            Some(p.contrastive.head_out_dim),
            "PRETRAIN.CONTRASTIVE.HEAD_OUT_DIM",
        ),
    ];
    for (v, key) in widths {
        c.at_most(v.unwrap_or(0), MAX_WIDTH, key)?;
    }
    let filters = b.num_filters.as_deref().unwrap_or(&[]);
    c.check(
        filters.iter().all(|f| *f <= MAX_WIDTH),
        "VIDEO.BACKBONE.NUM_FILTERS",
        format!("widths must be at most {MAX_WIDTH}, got {filters:?}"),
    )
}

/// The largest parameters and buffers, whose size is a product of config values.
fn check_parameter_bytes(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let b = &cfg.video.backbone;
    // The classifier: NUM_CLASSES x the backbone's output width (unknown here for some
    // architectures; then at least NUM_CLASSES itself must fit).
    let head = &cfg.video.head;
    let classes = head
        .num_classes_per_head
        .as_ref()
        .map(|v| v.iter().sum())
        .or(head.num_classes);
    if let Some(classes) = classes {
        let features = b.num_out_features.or(b.num_features).unwrap_or(1).max(1);
        c.bytes_at_most(
            classes as f64 * features as f64,
            MAX_PARAMETER_BYTES,
            "VIDEO.HEAD.NUM_CLASSES",
            || format!("a classifier of {classes} classes x {features} features"),
        )?;
    }
    check_bmn_mask_bytes(cfg, c)?;
    let ct = &cfg.pretrain.contrastive;
    c.bytes_at_most(
        ct.queue_size as f64 * ct.head_out_dim as f64,
        MAX_PARAMETER_BYTES,
        "PRETRAIN.CONTRASTIVE.QUEUE_SIZE",
        || {
            format!(
                "a queue of {} keys x {} dims (PRETRAIN.CONTRASTIVE.HEAD_OUT_DIM)",
                ct.queue_size, ct.head_out_dim
            )
        },
    )
}

/// BMN's sampling mask: TEMPORAL_SCALE x NUM_SAMPLE x DURATION_SCALE x TEMPORAL_SCALE values
/// (512 MB at the reference's 200 x 32 x 100 x 200).
fn check_bmn_mask_bytes(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let (Some(t), Some(n)) = (cfg.data.temporal_scale, cfg.video.head.num_sample) else {
        return Ok(());
    };
    let d = usize::try_from(cfg.data.duration_scale)
        .ok()
        .filter(|d| *d > 0)
        .unwrap_or(t);
    c.bytes_at_most(
        t as f64 * n as f64 * d as f64 * t as f64,
        MAX_PARAMETER_BYTES,
        "DATA.TEMPORAL_SCALE",
        || format!("a BMN sampling mask of {t} x {n} (VIDEO.HEAD.NUM_SAMPLE) x {d} x {t}"),
    )
}

/// One input batch; MoSI items hold several clips, which the loader knows, not the config.
/// Localisation reads feature sequences, not frames: none of these sizes apply.
fn check_batch_bytes(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    if reads_features(cfg) {
        return Ok(());
    }
    let d = &cfg.data;
    let pc = &cfg.pretrain.paramcrop;
    let channels = d.num_input_channels as f64;
    for (batch, frames, frames_key, side, side_key) in [
        (
            cfg.train.batch_size,
            d.num_input_frames,
            "DATA.NUM_INPUT_FRAMES",
            d.train_crop_size,
            "DATA.TRAIN_CROP_SIZE",
        ),
        (
            cfg.test.batch_size,
            d.num_input_frames,
            "DATA.NUM_INPUT_FRAMES",
            d.test_crop_size,
            "DATA.TEST_CROP_SIZE",
        ),
        (
            cfg.train.batch_size,
            pc.input_frames,
            "PRETRAIN.PARAMCROP.INPUT_FRAMES",
            pc.input_size,
            "PRETRAIN.PARAMCROP.INPUT_SIZE",
        ),
    ] {
        c.bytes_at_most(
            batch as f64 * channels * frames as f64 * (side as f64).powi(2),
            MAX_BATCH_BYTES,
            side_key,
            || {
                format!(
                    "a batch of {batch} clips of {channels} x {frames} ({frames_key}) x \
                     {side}² pixels"
                )
            },
        )?;
    }
    Ok(())
}

/// Validates a deserialised config. `sources` lets errors name the file that set the value.
///
/// The sections are checked in a fixed order, and within each section key by key: the first
/// invalid value is the one reported. The size limits come last, once every value is known
/// to be sensible on its own.
pub fn validate(cfg: &Config, sources: &Sources) -> Result<(), ConfigError> {
    let c = Checker { sources };
    c.check(
        !cfg.output_dir.trim().is_empty(),
        "OUTPUT_DIR",
        "must name a folder, got an empty value",
    )?;
    check_model(cfg, &c)?;
    check_schedule(cfg, &c)?;
    check_data(cfg, &c)?;
    check_optimizer(cfg, &c)?;
    c.positive(cfg.bn.eps, "BN.EPS")?;
    c.probability(cfg.bn.momentum, "BN.MOMENTUM")?;
    c.check(
        cfg.bn.weight_decay >= 0.0,
        "BN.WEIGHT_DECAY",
        format!("is {}, must be >= 0", cfg.bn.weight_decay),
    )?;
    check_augmentation(cfg, &c)?;
    check_pretrain(cfg, &c)?;
    check_sizes(cfg, &c)
}

/// VIDEO.HEAD and VIDEO.BACKBONE.
fn check_model(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    super::class_lists::check(cfg, c.sources)?;
    c.probability(cfg.video.head.dropout_rate, "VIDEO.HEAD.DROPOUT_RATE")?;
    c.probability(cfg.video.backbone.drop_path, "VIDEO.BACKBONE.DROP_PATH")
}

/// How a run goes through its data: the loader's tolerance, the split, batches, folds,
/// checkpoints, test views and logging.
fn check_schedule(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    c.probability(
        cfg.data_loader.max_bad_fraction,
        "DATA_LOADER.MAX_BAD_FRACTION",
    )?;
    c.check(
        (1..=3).contains(&cfg.data.split),
        "DATA.SPLIT",
        format!(
            "must be 1, 2 or 3 (the official splits), got {}",
            cfg.data.split
        ),
    )?;
    c.at_least_one(cfg.train.batch_size, "TRAIN.BATCH_SIZE")?;
    c.at_least_one(cfg.test.batch_size, "TEST.BATCH_SIZE")?;
    c.at_least_one(cfg.train.num_folds as usize, "TRAIN.NUM_FOLDS")?;
    c.at_least_one(
        cfg.train.checkpoint_period as usize,
        "TRAIN.CHECKPOINT_PERIOD",
    )?;
    c.at_least_one(
        cfg.test.num_ensemble_views as usize,
        "TEST.NUM_ENSEMBLE_VIEWS",
    )?;
    let crops = cfg.test.num_spatial_crops;
    c.check(
        crops == 1 || crops == 3,
        "TEST.NUM_SPATIAL_CROPS",
        format!("must be 1 or 3, got {crops}"),
    )?;
    c.at_least_one(cfg.log_period as usize, "LOG_PERIOD")
}

/// DATA: clip sampling, crops and normalisation.
fn check_data(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let d = &cfg.data;
    c.at_least_one(d.num_input_frames, "DATA.NUM_INPUT_FRAMES")?;
    c.at_least_one(d.sampling_rate, "DATA.SAMPLING_RATE")?;
    c.at_least_one(d.train_crop_size, "DATA.TRAIN_CROP_SIZE")?;
    c.at_least_one(d.test_crop_size, "DATA.TEST_CROP_SIZE")?;
    c.at_least_one(d.test_scale, "DATA.TEST_SCALE")?;
    c.positive(d.target_fps, "DATA.TARGET_FPS")?;
    c.range_pair(&d.train_jitter_scales, "DATA.TRAIN_JITTER_SCALES")?;
    // BMN's DATA.NUM_INPUT_CHANNELS (6912) counts feature dimensions, which no image
    // normalisation applies to.
    for (key, v) in [("DATA.MEAN", &d.mean), ("DATA.STD", &d.std)] {
        c.check(
            reads_features(cfg) || v.len() == d.num_input_channels,
            key,
            format!(
                "needs one value per input channel ({}), got {}",
                d.num_input_channels,
                v.len()
            ),
        )?;
    }
    c.check(
        d.std.iter().all(|s| *s > 0.0),
        "DATA.STD",
        "every value must be > 0",
    )?;
    check_decoding(cfg, c)
}

/// Whether the network reads pre-extracted feature sequences (BMN) rather than frames.
fn reads_features(cfg: &Config) -> bool {
    cfg.video.backbone.meta_arch == crate::config::schema::MetaArch::SimpleLocalizationConv
}

/// DATA.CLIPS_PER_DECODE and DATA.DECODER (docs/data.md#clips-per-decode).
fn check_decoding(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let (k, b) = (cfg.data.clips_per_decode, cfg.train.batch_size);
    c.at_least_one(k, "DATA.CLIPS_PER_DECODE")?;
    c.check(
        b % k == 0,
        "DATA.CLIPS_PER_DECODE",
        format!("is {k}, but TRAIN.BATCH_SIZE {b} is not a multiple of it (a batch of B clips is B / {k} videos x {k} clips)"),
    )?;
    let decodes_files = !matches!(
        cfg.train.dataset,
        None | Some(Dataset::SyntheticVideos | Dataset::SyntheticImages | Dataset::Imagenet)
    );
    c.check(
        k == 1 || (decodes_files && !cfg.pretrain.enable),
        "DATA.CLIPS_PER_DECODE",
        format!("is {k}: repeated clips are for supervised training on video files (pretraining cuts its own views; TRAIN.DATASET must be a video dataset on disk)"),
    )?;
    c.check(
        cfg.data.decoder != Decoder::Nvdec,
        "DATA.DECODER",
        "nvdec is not built yet; use cpu or auto",
    )
}

/// OPTIMIZER, and the settings its learning-rate policy needs.
fn check_optimizer(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let o = &cfg.optimizer;
    c.positive(o.base_lr, "OPTIMIZER.BASE_LR")?;
    c.at_least_one(o.max_epoch as usize, "OPTIMIZER.MAX_EPOCH")?;
    c.check(
        o.warmup_epochs >= 0.0 && o.warmup_epochs <= o.max_epoch as f64,
        "OPTIMIZER.WARMUP_EPOCHS",
        format!(
            "must be in [0, MAX_EPOCH = {}], got {}",
            o.max_epoch, o.warmup_epochs
        ),
    )?;
    c.check(
        o.warmup_start_lr >= 0.0,
        "OPTIMIZER.WARMUP_START_LR",
        "must be >= 0",
    )?;
    c.check(
        o.weight_decay >= 0.0,
        "OPTIMIZER.WEIGHT_DECAY",
        "must be >= 0",
    )?;
    c.check(
        (0.0..1.0).contains(&o.momentum),
        "OPTIMIZER.MOMENTUM",
        "must be in [0, 1)",
    )?;
    c.check(
        o.layer_wise_lr_decay > 0.0 && o.layer_wise_lr_decay <= 1.0,
        "OPTIMIZER.LAYER_WISE_LR_DECAY",
        "must be in (0, 1]",
    )?;
    // As torch.optim.SGD checks at construction; Adam ignores the momentum keys.
    let sgd_like = matches!(o.optim_method, OptimMethod::Sgd | OptimMethod::Lars);
    c.check(
        !(sgd_like && o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0)),
        "OPTIMIZER.NESTEROV",
        format!(
            "Nesterov momentum needs MOMENTUM > 0 and DAMPENING 0 (they are {} and {})",
            o.momentum, o.dampening
        ),
    )?;
    c.check(
        o.clip_grad_norm.is_finite() && o.clip_grad_norm >= 0.0,
        "OPTIMIZER.CLIP_GRAD_NORM",
        format!(
            "is {}, must be 0 (off) or a positive number",
            o.clip_grad_norm
        ),
    )?;
    check_lr_policy(cfg, c)
}

fn check_lr_policy(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let o = &cfg.optimizer;
    match o.lr_policy {
        LrPolicy::CosineV2 => {
            // The reference asserts this against the rate it runs from, after ADJUST_LR.
            let base = cfg.base_lr();
            c.check(
                o.cosine_end_lr < base,
                "OPTIMIZER.COSINE_END_LR",
                format!(
                    "is {}, must be below BASE_LR ({base} after ADJUST_LR) for cosine_v2",
                    o.cosine_end_lr
                ),
            )?;
            c.check(
                !(o.cosine_after_warmup && o.warmup_epochs >= o.max_epoch as f64),
                "OPTIMIZER.WARMUP_EPOCHS",
                "must be below MAX_EPOCH when COSINE_AFTER_WARMUP is set",
            )
        }
        LrPolicy::StepsWithRelativeLrs => {
            let (steps, lrs) = (
                o.steps.as_deref().unwrap_or(&[]),
                o.lrs.as_deref().unwrap_or(&[]),
            );
            c.check(
                !steps.is_empty(),
                "OPTIMIZER.STEPS",
                "steps_with_relative_lrs needs STEPS",
            )?;
            // The reference indexes LRS with -1 before a STEPS that does not start at 0, i.e.
            // trains the first epochs at the *last* rate (docs/training.md).
            c.check(
                steps.first() == Some(&0.0),
                "OPTIMIZER.STEPS",
                "must start with 0",
            )?;
            c.check(
                steps.windows(2).all(|w| w[1] > w[0]),
                "OPTIMIZER.STEPS",
                "must be increasing",
            )?;
            c.check(
                lrs.len() == steps.len(),
                "OPTIMIZER.LRS",
                format!(
                    "needs one entry per OPTIMIZER.STEPS entry ({}), got {}",
                    steps.len(),
                    lrs.len()
                ),
            )
        }
        LrPolicy::Cosine => Ok(()),
    }
}

/// AUGMENTATION.
fn check_augmentation(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let a = &cfg.augmentation;
    c.probability(a.grayscale, "AUGMENTATION.GRAYSCALE")?;
    c.probability(a.color_p, "AUGMENTATION.COLOR_P")?;
    c.probability(a.mixup.prob, "AUGMENTATION.MIXUP.PROB")?;
    c.probability(a.random_erasing.prob, "AUGMENTATION.RANDOM_ERASING.PROB")?;
    c.probability(a.label_smoothing, "AUGMENTATION.LABEL_SMOOTHING")?;
    c.range_pair(&a.ratio, "AUGMENTATION.RATIO")
}

/// PRETRAIN: the MoSI pretext, then its PARAMCROP and CONTRASTIVE parts, then the size the
/// pretext resizes to.
fn check_pretrain(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let p = &cfg.pretrain;
    c.at_least_one(p.num_frames, "PRETRAIN.NUM_FRAMES")?;
    c.range_pair(&p.distance_jitter, "PRETRAIN.DISTANCE_JITTER")?;
    c.range_pair(&p.aspect_ratio, "PRETRAIN.ASPECT_RATIO")?;
    c.range_pair(&p.mask_size_ratio, "PRETRAIN.MASK_SIZE_RATIO")?;
    c.check(
        p.mask_size_ratio.iter().all(|r| *r <= 1.0),
        "PRETRAIN.MASK_SIZE_RATIO",
        "ratios must be <= 1",
    )?;
    check_paramcrop(cfg, c)?;
    check_contrastive(cfg, c)?;
    let size_ok = match &p.standard_size {
        StandardSize::Fixed(n) => *n >= 1,
        StandardSize::Range(v) => v.len() == 3 && v[0] >= 1 && v[0] <= v[1] && v[2] >= 1,
    };
    c.check(
        size_ok,
        "PRETRAIN.STANDARD_SIZE",
        "must be a size >= 1 or [lo, hi, crop] with 1 <= lo <= hi",
    )
}

/// PRETRAIN.PARAMCROP: the crop ranges, the parameter net and its optimiser.
fn check_paramcrop(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let pc = &cfg.pretrain.paramcrop;
    c.range_pair(&pc.spatial_scale, "PRETRAIN.PARAMCROP.SPATIAL_SCALE")?;
    c.check(
        pc.spatial_scale.iter().all(|v| *v <= 1.0),
        "PRETRAIN.PARAMCROP.SPATIAL_SCALE",
        "fractions must be <= 1",
    )?;
    c.range_pair(&pc.temporal_scale, "PRETRAIN.PARAMCROP.TEMPORAL_SCALE")?;
    c.check(
        pc.temporal_scale.iter().all(|v| *v <= 1.0),
        "PRETRAIN.PARAMCROP.TEMPORAL_SCALE",
        "fractions must be <= 1",
    )?;
    c.range_pair(&pc.aspect, "PRETRAIN.PARAMCROP.ASPECT")?;
    c.at_least_one(pc.input_frames, "PRETRAIN.PARAMCROP.INPUT_FRAMES")?;
    c.at_least_one(pc.noise_dim, "PRETRAIN.PARAMCROP.NOISE_DIM")?;
    c.at_least_one(pc.hidden_dim, "PRETRAIN.PARAMCROP.HIDDEN_DIM")?;
    c.at_least_one(pc.input_size, "PRETRAIN.PARAMCROP.INPUT_SIZE")?;
    c.positive(pc.lr, "PRETRAIN.PARAMCROP.LR")?;
    c.check(
        matches!(pc.optim_method, OptimMethod::Adam | OptimMethod::Sgd),
        "PRETRAIN.PARAMCROP.OPTIM_METHOD",
        "must be adam or sgd (LARS trust ratios mean nothing on the small parameter net)",
    )?;
    c.check(
        pc.grl_lambda.is_finite() && pc.grl_lambda >= 0.0,
        "PRETRAIN.PARAMCROP.GRL_LAMBDA",
        "must be >= 0",
    )?;
    c.positive(pc.grl_gamma, "PRETRAIN.PARAMCROP.GRL_GAMMA")
}

/// PRETRAIN.CONTRASTIVE: the loss temperature and the MoCo queue and momentum encoder.
fn check_contrastive(cfg: &Config, c: &Checker) -> Result<(), ConfigError> {
    let ct = &cfg.pretrain.contrastive;
    c.positive(ct.temperature, "PRETRAIN.CONTRASTIVE.TEMPERATURE")?;
    c.at_least_one(ct.queue_size, "PRETRAIN.CONTRASTIVE.QUEUE_SIZE")?;
    c.check(
        (0.0..=1.0).contains(&ct.momentum),
        "PRETRAIN.CONTRASTIVE.MOMENTUM",
        "must be in [0, 1]",
    )
}
