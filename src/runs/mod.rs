//! What each training command runs: `tada pretrain` and `tada finetune` go from a loaded config
//! to a model, a task, an optimiser, a loader and a run folder, then [`train`]; `tada test`
//! ([`test`]) and `tada demo` ([`demo`]) build on them.

pub mod demo;
pub mod test;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tada_augment::mosi::MosiGenerator;

use crate::checkpoint::{is_non_weight, strip_module_prefix, CheckpointError, LoadReport};
use crate::config::recipes::{CONTRASTIVE_GENERATOR, MOSI_GENERATOR};
use crate::config::schema::Dataset;
use crate::config::{Config, LoadedConfig};
use crate::data::dataset::{Entry, Split};
use crate::data::loader::Loader;
use crate::data::mosi_images::{ImageOrigin, MosiImages};
use crate::data::pipeline::{
    entries, loader_config, synthetic_videos, video_loader, SYNTHETIC_VIDEOS,
};
use crate::data::synthetic_video::SyntheticVideos;
use crate::models::inference::read_weights;
use crate::tasks::classify::ClassifyTask;
use crate::tasks::contrastive::ContrastiveTask;
use crate::tasks::mosi::MosiTask;
use crate::train::run_dir::RunDir;
use crate::train::{train, Session, Summary, TrainError, TrainOptions};

/// Images per epoch of the embedded `synthetic_images` source when TRAIN.NUM_SAMPLES is unset.
pub const SYNTHETIC_IMAGES: usize = 256;

/// Motion directions of the synthetic videos contrastive pretraining reads (labels unused).
pub const CONTRASTIVE_SYNTHETIC_DIRECTIONS: usize = 4;

/// Where a run writes, and how it starts.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run folder; OUTPUT_DIR when unset.
    pub output: Option<PathBuf>,
    /// Pretrained weights for fine-tuning; TRAIN.CHECKPOINT_FILE_PATH when unset.
    pub weights: Option<PathBuf>,
    pub train: TrainOptions,
}

/// Pretrained weights loaded into a fine-tuned model.
#[derive(Debug, Clone)]
pub struct WeightsReport {
    pub path: PathBuf,
    /// Tensors of the file outside `backbone.*`, dropped: the new task has its own head.
    pub dropped: Vec<String>,
    pub load: LoadReport,
}

fn run_dir(loaded: &LoadedConfig, opts: &RunOptions) -> Result<RunDir, TrainError> {
    let root = opts
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&loaded.config.output_dir));
    Ok(RunDir::create(&root, loaded)?)
}

/// Pretraining (PRETRAIN.ENABLE): MoSI with PRETRAIN.GENERATOR `MoSIGenerator`, contrastive
/// learning (SimCLR / MoCo v2, random cubic crops or ParamCrop) with `Contrastive`.
pub fn pretrain(loaded: &LoadedConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    let cfg = &loaded.config;
    if !cfg.pretrain.enable {
        return Err(TrainError::Config {
            key: "PRETRAIN.ENABLE",
            message: "is false: `tada pretrain` runs a pretext task (use `tada finetune` for \
                      supervised training)"
                .into(),
        });
    }
    match cfg.pretrain.generator.as_str() {
        MOSI_GENERATOR => mosi_pretrain(loaded, opts),
        CONTRASTIVE_GENERATOR => contrastive_pretrain(loaded, opts),
        other => Err(TrainError::Unsupported(format!(
            "PRETRAIN.GENERATOR {other} (tada builds MoSIGenerator and {CONTRASTIVE_GENERATOR})"
        ))),
    }
}

/// MoSI pretraining on TRAIN.DATASET's images, or on tada's synthetic images when TRAIN.DATASET
/// is unset or `synthetic_images`.
fn mosi_pretrain(loaded: &LoadedConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    let cfg = &loaded.config;
    let crop = cfg.data.train_crop_size;
    let origin = match cfg.train.dataset {
        None | Some(Dataset::SyntheticImages) => ImageOrigin::Synthetic {
            count: cfg.train.num_samples.unwrap_or(SYNTHETIC_IMAGES),
            seed: cfg.random_seed,
            // 4:3 pictures comfortably larger than the crop, so the moving window has room.
            height: (3 * crop / 2).max(48),
            width: (2 * crop).max(64),
        },
        Some(Dataset::Imagenet) => ImageOrigin::Files(entries(cfg, Split::Train)?.entries),
        Some(Dataset::Ucf101 | Dataset::Hmdb51 | Dataset::Kinetics400 | Dataset::Ssv2) => {
            ImageOrigin::VideoFrames(entries(cfg, Split::Train)?.entries)
        }
        Some(d) => {
            return Err(TrainError::Unsupported(format!(
                "TRAIN.DATASET {} for MoSI: tada's MoSI source takes images (imagenet, \
                 synthetic_images) or frames of a video dataset (ucf101, hmdb51, kinetics400, \
                 ssv2)",
                d.name()
            )))
        }
    };
    let generator = MosiGenerator::new(crate::tasks::mosi::generator_config(cfg)?)?;
    let source = MosiImages::new(origin, generator, Split::Train);
    let loader = Loader::new(
        Arc::new(source),
        loader_config(cfg, Split::Train, cfg.random_seed),
    );
    let session = Session::new(cfg)?;
    let mut run = run_dir(loaded, opts)?;
    train(loaded, &session, &MosiTask, loader, &mut run, &opts.train)
}

/// Contrastive pretraining on source clips of PRETRAIN.PARAMCROP.INPUT_FRAMES x INPUT_SIZE²
/// from TRAIN.DATASET (tada's synthetic videos when unset), in [0, 1]: the task cuts, jitters
/// and normalises the views on the device.
fn contrastive_pretrain(loaded: &LoadedConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    let cfg = &loaded.config;
    let p = &cfg.pretrain.paramcrop;
    let mut src = cfg.clone();
    src.data.num_input_frames = p.input_frames;
    src.data.train_crop_size = p.input_size;
    src.data.train_jitter_scales = vec![p.input_size as f64; 2];
    src.data.mean = vec![0.0; 3];
    src.data.std = vec![1.0; 3];
    src.augmentation.color_aug = false;
    let session = Session::new(cfg)?;
    let task = ContrastiveTask::new(&session, cfg)?;
    let mut run = run_dir(loaded, opts)?;
    let seed = cfg.random_seed;
    match cfg.train.dataset {
        None | Some(Dataset::SyntheticVideos) => {
            let count = cfg.train.num_samples.unwrap_or(SYNTHETIC_VIDEOS);
            let mut source = SyntheticVideos::new(
                Split::Train,
                count,
                CONTRASTIVE_SYNTHETIC_DIRECTIONS,
                p.input_frames,
                p.input_size,
            );
            source.mean = [0.0; 3];
            source.std = [1.0; 3];
            let loader = Loader::new(Arc::new(source), loader_config(cfg, Split::Train, seed));
            train(loaded, &session, &task, loader, &mut run, &opts.train)
        }
        Some(Dataset::SyntheticImages) | Some(Dataset::Imagenet) => Err(TrainError::Config {
            key: "TRAIN.DATASET",
            message: "contrastive pretraining cuts cubes out of videos: use a video dataset or \
                      synthetic_videos"
                .into(),
        }),
        Some(_) => {
            let loader = video_loader(&src, Split::Train, seed)?;
            train(loaded, &session, &task, loader, &mut run, &opts.train)
        }
    }
}

/// Copies the `backbone.*` tensors of `path` into the model: a safetensors file, or the
/// reference's `.pyth`/`.pth`/`.pt` read through the native importer (as `tada test` and
/// `tada forward` read them). The rest (`head.*`, and `paramcrop.*`, `momentum_encoder.*`,
/// `contrastive.*` of contrastive runs) is dropped. Weights of which not one tensor loads are
/// an error: the run would silently start from the initialisation.
pub fn load_backbone_weights(session: &Session, path: &Path) -> Result<WeightsReport, TrainError> {
    let wrap = |source| TrainError::Weights {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut file = read_weights(path).map_err(wrap)?;
    let tensors = file.tensors.len();
    let file_names: Vec<String> = file
        .tensors
        .iter()
        .take(3)
        .map(|(n, _)| n.clone())
        .collect();
    let mut dropped = Vec::new();
    file.tensors.retain(|(name, _)| {
        // The pretext's head, and a contrastive run's parameter net, key encoder and queue, are
        // dropped; non-weight entries (optimiser state) are left for the loader to skip.
        let keep = is_non_weight(name) || strip_module_prefix(name).starts_with("backbone.");
        if !keep {
            dropped.push(name.clone());
        }
        keep
    });
    let load = crate::checkpoint::load_into(&session.vs, &file, path, false).map_err(wrap)?;
    if load.loaded == 0 {
        let mut model_names: Vec<String> = session.vs.variables().into_keys().collect();
        model_names.sort();
        model_names.truncate(3);
        return Err(wrap(CheckpointError::NothingLoaded {
            path: path.to_path_buf(),
            tensors,
            file_names,
            model_names,
        }));
    }
    Ok(WeightsReport {
        path: path.to_path_buf(),
        dropped,
        load,
    })
}

/// Fails when a labelled dataset has more classes than the classifier: found here, at the
/// start, rather than as "Target 3 is out of bounds" at the first step with such a label.
pub fn check_class_count(
    cfg: &Config,
    dataset_key: &'static str,
    entries: &[Entry],
) -> Result<(), TrainError> {
    let Some(max_label) = entries.iter().map(|e| e.label).max() else {
        return Ok(());
    };
    let classes = cfg.video.head.num_classes.unwrap_or(0);
    if max_label < 0 || max_label as u64 >= classes as u64 {
        let dataset = match dataset_key {
            "TRAIN.DATASET" => cfg.train.dataset,
            _ => cfg.test.dataset.or(cfg.train.dataset),
        };
        return Err(TrainError::Config {
            key: "VIDEO.HEAD.NUM_CLASSES",
            message: format!(
                "is {classes}, but {dataset_key} {} has {} classes (labels 0 to {max_label}); \
                 set VIDEO.HEAD.NUM_CLASSES to at least {}",
                dataset.map_or("?", |d| d.name()),
                max_label + 1,
                max_label + 1
            ),
        });
    }
    Ok(())
}

/// The first few names of a list, for a log line.
fn brief(names: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut s = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", names.len() - SHOWN));
    }
    s
}

/// Fine-tuning, or the linear probe with TRAIN.ONLY_LINEAR, on TRAIN.DATASET. Pretrained
/// weights (`opts.weights` or TRAIN.CHECKPOINT_FILE_PATH) are loaded without their head unless
/// the run resumes from its own checkpoint.
pub fn finetune(
    loaded: &LoadedConfig,
    opts: &RunOptions,
) -> Result<(Summary, Option<WeightsReport>), TrainError> {
    let cfg = &loaded.config;
    let task = ClassifyTask::from_config(cfg)?;
    let seed = cfg.random_seed;
    // The dataset first: labels the classifier cannot take fail the run before it starts.
    let videos = match cfg.train.dataset {
        Some(Dataset::SyntheticVideos) => None,
        _ => {
            let loader = video_loader(cfg, Split::Train, seed)?;
            check_class_count(cfg, "TRAIN.DATASET", loader.source().entries())?;
            Some(loader)
        }
    };
    let session = Session::new(cfg)?;
    let mut run = run_dir(loaded, opts)?;
    let resuming = crate::train::trainer::resumes(cfg, &opts.train)
        && crate::checkpoint::latest_checkpoint(&run.checkpoints_dir()).is_some();
    let weights = opts.weights.clone().or_else(|| {
        let p = &cfg.train.checkpoint_file_path;
        (!p.is_empty()).then(|| PathBuf::from(p))
    });
    let report = match weights {
        Some(path) if !resuming => {
            let r = load_backbone_weights(&session, &path)?;
            tracing::info!(
                "loaded {} tensors from {}; dropped {} outside backbone.* ({}); left at their \
                 initialisation: {}",
                r.load.loaded,
                path.display(),
                r.dropped.len(),
                brief(&r.dropped),
                brief(&r.load.missing)
            );
            Some(r)
        }
        _ => None,
    };
    let summary = match videos {
        None => {
            let source = synthetic_videos(cfg, Split::Train)?;
            let loader = Loader::new(Arc::new(source), loader_config(cfg, Split::Train, seed));
            train(loaded, &session, &task, loader, &mut run, &opts.train)?
        }
        Some(loader) => train(loaded, &session, &task, loader, &mut run, &opts.train)?,
    };
    Ok((summary, report))
}
