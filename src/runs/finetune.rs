//! `tada finetune`: supervised training from pretrained weights, or the linear probe (and
//! TASK_TYPE localization, which trains BMN: [`super::localize`]).

use std::path::PathBuf;

use super::weights::{load_backbone_weights, WeightsReport};
use super::{fit, run_dir, RunOptions};
use crate::config::{Config, LoadedConfig};
use crate::data::dataset::{Entry, Split};
use crate::data::pipeline::labelled_clips;
use crate::models::Session;
use crate::tasks::classify::ClassifyTask;
use crate::train::{resumes, Summary, TrainError};

/// Fine-tuning, or the linear probe with TRAIN.ONLY_LINEAR, on TRAIN.DATASET. Pretrained
/// weights (`opts.weights` or TRAIN.CHECKPOINT_FILE_PATH) are loaded without their head unless
/// the run resumes from its own checkpoint.
pub fn finetune(
    loaded: &LoadedConfig,
    opts: &RunOptions,
) -> Result<(Summary, Option<WeightsReport>), TrainError> {
    let cfg = &loaded.config;
    if cfg.task_type == crate::config::schema::TaskType::Localization {
        return super::localize::train(loaded, opts);
    }
    super::parts::check_built(cfg)?;
    let mut task = ClassifyTask::from_config(cfg)?;
    // The dataset first: labels the classifier cannot take fail the run before it starts.
    let clips = labelled_clips(cfg, Split::Train)?;
    check_class_count(cfg, "TRAIN.DATASET", clips.entries())?;
    let val = match cfg.train.eval_period {
        0 => None,
        _ => {
            let val = labelled_clips(cfg, Split::Val).map_err(|e| {
                TrainError::Run(format!(
                    "{e} (the val split, which the run validates on every TRAIN.EVAL_PERIOD \
                     epochs; TRAIN.EVAL_PERIOD: 0 trains without it)"
                ))
            })?;
            check_class_count(cfg, "TEST.DATASET", val.entries())?;
            Some(val.into_source())
        }
    };
    let session = Session::new(cfg)?;
    let mut run = run_dir(loaded, opts)?;
    let resuming = resumes(cfg.train.auto_resume, &opts.train)
        && crate::checkpoint::latest_checkpoint(&run.checkpoints_dir()).is_some();
    let weights = opts.weights.clone().or_else(|| {
        let p = &cfg.train.checkpoint_file_path;
        (!p.is_empty()).then(|| PathBuf::from(p))
    });
    if weights.is_none() && !resuming {
        check_init(cfg)?;
    }
    let report = match weights {
        Some(path) if !resuming => {
            let r = load_backbone_weights(&session, cfg, &path)?;
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
    let summary = fit(
        loaded,
        &session,
        &mut task,
        clips.into_source(),
        val,
        &mut run,
        opts,
    )?;
    Ok((summary, report))
}

/// TRAIN.INIT names public image weights the reference downloads; tada reads weights only from
/// files, so a run that has none refuses to start, naming the file to fetch.
fn check_init(cfg: &Config) -> Result<(), TrainError> {
    let init = cfg.train.init.trim();
    if init.is_empty() {
        return Ok(());
    }
    let url = crate::checkpoint::image_init::init_url(cfg)
        .unwrap_or_else(|| "the image weights it names".to_string());
    Err(TrainError::config(
        "TRAIN.INIT",
        format!(
            "is {init}: tada does not download weights; fetch {url} and start from it with \
             --weights FILE (or TRAIN.CHECKPOINT_FILE_PATH), or set TRAIN.INIT '' to train \
             from scratch"
        ),
    ))
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
        return Err(TrainError::config(
            "VIDEO.HEAD.NUM_CLASSES",
            format!(
                "is {classes}, but {dataset_key} {} has {} classes (labels 0 to {max_label}); \
                 set VIDEO.HEAD.NUM_CLASSES to at least {}",
                dataset.map_or("?", |d| d.name()),
                max_label + 1,
                max_label + 1
            ),
        ));
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
