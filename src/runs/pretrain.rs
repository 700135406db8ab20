//! `tada pretrain`: MoSI on images, or contrastive learning (SimCLR / MoCo v2, random cubic
//! crops or ParamCrop) on videos.

use std::sync::Arc;

use tada_augment::mosi::MosiGenerator;

use super::{fit, run_dir, RunOptions};
use crate::config::recipes::{CONTRASTIVE_GENERATOR, MOSI_GENERATOR};
use crate::config::schema::Dataset;
use crate::config::{Config, LoadedConfig};
use crate::data::dataset::Split;
use crate::data::loader::SampleSource;
use crate::data::pipeline::{labelled_clips, mosi_files, SYNTHETIC_VIDEOS};
use crate::data::sources::mosi_images::{ImageOrigin, MosiImages};
use crate::data::sources::synthetic_videos::SyntheticVideos;
use crate::models::Session;
use crate::tasks::contrastive::curriculum::write_curriculum_plot;
use crate::tasks::contrastive::ContrastiveTask;
use crate::tasks::mosi::{generator_config, MosiTask};
use crate::train::{Summary, TrainError};

/// Images per epoch of the embedded `synthetic_images` source when TRAIN.NUM_SAMPLES is unset.
pub const SYNTHETIC_IMAGES: usize = 256;

/// Motion directions of the synthetic videos contrastive pretraining reads (labels unused).
pub const CONTRASTIVE_SYNTHETIC_DIRECTIONS: usize = 4;

/// Pretraining (PRETRAIN.ENABLE): MoSI with PRETRAIN.GENERATOR `MoSIGenerator`, contrastive
/// learning with `Contrastive`.
pub fn pretrain(loaded: &LoadedConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    let cfg = &loaded.config;
    if !cfg.pretrain.enable {
        return Err(TrainError::config(
            "PRETRAIN.ENABLE",
            "is false: `tada pretrain` runs a pretext task (use `tada finetune` for \
                      supervised training)",
        ));
    }
    super::parts::check_built(cfg)?;
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
    let origin = match mosi_files(cfg)? {
        Some(files) => files,
        None => ImageOrigin::Synthetic {
            count: cfg.train.num_samples.unwrap_or(SYNTHETIC_IMAGES),
            seed: cfg.random_seed,
            // 4:3 pictures comfortably larger than the crop, so the moving window has room.
            height: (3 * crop / 2).max(48),
            width: (2 * crop).max(64),
        },
    };
    let generator = MosiGenerator::new(generator_config(cfg)?)?;
    let source = MosiImages::new(origin, generator, Split::Train);
    let session = Session::new(cfg)?;
    let mut run = run_dir(loaded, opts)?;
    let mut task = MosiTask::new(cfg)?;
    fit(
        loaded,
        &session,
        &mut task,
        Arc::new(source),
        None,
        &mut run,
        opts,
    )
}

/// Contrastive pretraining on source clips of PRETRAIN.PARAMCROP.INPUT_FRAMES x INPUT_SIZE²
/// from TRAIN.DATASET (tada's synthetic videos when unset), in [0, 1]: the task cuts, jitters
/// and normalises the views on the device.
fn contrastive_pretrain(loaded: &LoadedConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    let cfg = &loaded.config;
    let session = Session::new(cfg)?;
    let mut task = ContrastiveTask::new(&session, cfg)?;
    let mut run = run_dir(loaded, opts)?;
    let source = source_clips(cfg)?;
    let summary = fit(loaded, &session, &mut task, source, None, &mut run, opts)?;
    // A picture is a bonus: failing to draw it must not fail the run it describes.
    if !run.is_writer() {
        return Ok(summary);
    }
    match write_curriculum_plot(run.root()) {
        Ok(Some(path)) => tracing::info!("wrote {}", path.display()),
        Ok(None) => {}
        Err(e) => tracing::warn!("no ParamCrop curriculum plot: {e}"),
    }
    Ok(summary)
}

/// The clips contrastive views are cut from: unnormalised, uncoloured, at ParamCrop's input
/// size.
pub fn source_clips(cfg: &Config) -> Result<Arc<dyn SampleSource>, TrainError> {
    let p = &cfg.pretrain.paramcrop;
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
            Ok(Arc::new(source))
        }
        Some(Dataset::SyntheticImages) | Some(Dataset::Imagenet) => Err(TrainError::config(
            "TRAIN.DATASET",
            "contrastive pretraining cuts cubes out of videos: use a video dataset or \
                      synthetic_videos",
        )),
        Some(_) => {
            let mut src = cfg.clone();
            src.data.num_input_frames = p.input_frames;
            src.data.train_crop_size = p.input_size;
            src.data.train_jitter_scales = vec![p.input_size as f64; 2];
            src.data.mean = vec![0.0; 3];
            src.data.std = vec![1.0; 3];
            src.augmentation.color_aug = false;
            Ok(labelled_clips(&src, Split::Train)?.into_source())
        }
    }
}
