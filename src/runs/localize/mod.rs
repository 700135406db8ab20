//! TASK_TYPE localization (docs/localization.md): training BMN on a localisation split's
//! windows, and `tada localize`, which tests a model on every window of TEST.TEST_SET's
//! videos, fuses each video's overlapping windows, post-processes them into proposals and
//! detections, and evaluates them when the split is labelled.

pub mod demo;
mod output;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::Tensor;

pub use output::{LocalizeMetrics, LocalizeReport, RunFiles, MAX_AN, REPORTED_AN};

use super::weights::WeightsReport;
use super::{fit, run_dir, RunOptions};
use crate::config::{Config, KeyError, LoadedConfig};
use crate::localization::detect::{detect, PostSettings, VideoDetections};
use crate::localization::features::{FeatureSet, TalSplit, WindowInput};
use crate::localization::fuse::{classifier_sampling, fuse_windows, WindowMaps};
use crate::localization::labels::LabelMaps;
use crate::localization::post::{cr_scoring, SoftNms};
use crate::localization::MapSpec;
use crate::models::Session;
use crate::tasks::localize::LocalizeTask;
use crate::train::progress::Progress;
use crate::train::{Summary, TrainError};

/// Trains BMN on the training windows of the config's localisation data (every window that
/// holds a whole annotated segment). In-training validation is a classification pass, so a
/// localisation run does not validate; `tada localize` tests its checkpoints.
pub fn train(
    loaded: &LoadedConfig,
    opts: &RunOptions,
) -> Result<(Summary, Option<WeightsReport>), TrainError> {
    let cfg = &loaded.config;
    let mut task = LocalizeTask::from_config(cfg)?;
    let set = FeatureSet::from_config(cfg, TalSplit::Train, true)?;
    if set.index.windows.is_empty() {
        return Err(TrainError::Run(format!(
            "no training window of DATA.TEMPORAL_SCALE {} positions ({:.1} s) holds a whole \
             annotated segment of {}",
            set.grid.tscale,
            set.grid.tscale as f64 * crate::localization::features::Grid::position_seconds(),
            Path::new(&cfg.data.anno_dir)
                .join(TalSplit::Train.annotation_file())
                .display()
        )));
    }
    if cfg.train.eval_period > 0 {
        tracing::info!(
            "localisation runs do not validate during training (TRAIN.EVAL_PERIOD is unused): \
             test a checkpoint with `tada localize`"
        );
    }
    tracing::info!(
        "{} training windows of {} videos",
        set.index.windows.len(),
        set.index.video_windows().len()
    );
    let source = Arc::new(crate::data::sources::tal_windows::TalWindows::new(set));
    let session = Session::new(cfg)?;
    let mut run = run_dir(loaded, opts)?;
    let report = match &opts.weights {
        Some(path) => {
            let file = crate::models::inference::read_weights(path)?;
            let load = crate::checkpoint::load_into(&session.vs, &file, path, false)?;
            Some(WeightsReport {
                path: path.clone(),
                load,
                dropped: Vec::new(),
                image_model: None,
            })
        }
        None => None,
    };
    let summary = fit(loaded, &session, &mut task, source, None, &mut run, opts)?;
    Ok((summary, report))
}

/// Where `tada localize` writes and what it names its files after.
#[derive(Debug, Clone)]
pub struct LocalizeOptions {
    /// The folder of the proposal files, the detection JSON and the metrics.
    pub out_dir: PathBuf,
    /// The `ep<tag>` of the file names (the reference's epoch of the checkpoint tested).
    pub epoch_tag: String,
}

/// The checkpoint epoch in a name like `checkpoint_epoch_00010.safetensors`, else `-1` (the
/// reference's name for "the file given").
pub fn epoch_tag(weights: &Path) -> String {
    weights
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit_once("epoch_"))
        .and_then(|(_, n)| n.split('.').next()?.parse::<u64>().ok())
        .map_or("-1".into(), |n| n.to_string())
}

/// The post-processing settings of LOCALIZATION.POST_PROCESS.
fn post_settings(cfg: &Config) -> Result<PostSettings, KeyError> {
    let p = &cfg.localization.post_process;
    let (clr_power, reg_power, select_score) = cr_scoring(p)?;
    Ok(PostSettings {
        clr_power,
        reg_power,
        select_score,
        action_score_power: p.action_score_power,
    })
}

/// Tests `weights` on TEST.TEST_SET: proposals per video, the detection JSON, and (on a
/// labelled split) the metrics, all under `opts.out_dir`.
pub fn localize(
    loaded: &LoadedConfig,
    weights: &Path,
    opts: &LocalizeOptions,
) -> Result<LocalizeReport, TrainError> {
    let cfg = &loaded.config;
    let split = TalSplit::of_test_set(&cfg.test.test_set);
    let set = FeatureSet::from_config(cfg, split, false)?;
    let post = post_settings(cfg)?;
    // Checked before hours of testing.
    SoftNms::from_config(&cfg.localization.post_process, 1.0)?;
    let session = super::test::load_session(cfg, weights, false)?;
    let files = RunFiles::new(cfg, &opts.out_dir, &opts.epoch_tag);
    files.create()?;
    let map = MapSpec::from_config(cfg)?;
    let valid = LabelMaps::new(set.grid.tscale, set.grid.dscale).valid_mask();
    // Built once: T·6·D·T values (96 MB for bmn_epic).
    let sampling = set
        .files
        .classifier_root
        .as_ref()
        .map(|_| classifier_sampling(&map).to_device(session.device));
    let batch = cfg.test.batch_size.max(1);
    let mut progress = Progress::new(
        "localize",
        set.index.windows.len() as u64,
        (set.index.windows.len() as u64 / 20).max(1),
    );
    let mut results = Vec::new();
    for (video, windows) in set.index.video_windows() {
        let windows: Vec<usize> = windows.collect();
        let mut maps = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(batch) {
            let inputs = read_windows(&set, chunk, cfg.data_loader.num_workers)?;
            maps.extend(window_maps(
                &session,
                &inputs,
                &valid,
                sampling.as_ref(),
                &map,
            )?);
            progress.inc(chunk.len() as u64, || set.index.videos[video].name.clone());
        }
        let v = &set.index.videos[video];
        let nms = SoftNms::from_config(&cfg.localization.post_process, v.duration)?;
        let found: VideoDetections = detect(&fuse_windows(&maps, &valid), v.duration, &nms, &post);
        files.write_proposals(&v.name, &found)?;
        results.push((v.name.clone(), found));
    }
    progress.finish();
    output::finish(cfg, &set, split, &files, results)
}

/// Reads windows `chunk` on up to `workers` threads, in order.
fn read_windows(
    set: &FeatureSet,
    chunk: &[usize],
    workers: usize,
) -> Result<Vec<WindowInput>, TrainError> {
    let per = chunk.len().div_ceil(workers.clamp(1, chunk.len().max(1)));
    let parts: Vec<Result<Vec<WindowInput>, _>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .chunks(per.max(1))
            .map(|part| s.spawn(move || part.iter().map(|&i| set.window(i)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut out = Vec::with_capacity(chunk.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// The model's maps of a batch of windows, masked to the proposals inside each window, with
/// class maps from the classifier's results when the split reads them.
fn window_maps(
    session: &Session,
    inputs: &[WindowInput],
    valid: &Tensor,
    sampling: Option<&Tensor>,
    map: &MapSpec,
) -> Result<Vec<WindowMaps>, TrainError> {
    let x = Tensor::stack(
        &inputs
            .iter()
            .map(|w| &w.assembled.features)
            .collect::<Vec<_>>(),
        0,
    );
    let p = session.scores(&x);
    let get = |k: &str| {
        p.get(k).ok_or_else(|| {
            TrainError::Run(format!(
                "the model has no `{k}` output; `tada localize` tests BaseBMN models"
            ))
        })
    };
    let stack = |pick: fn(&WindowInput) -> Option<&Tensor>| -> Option<Tensor> {
        let parts: Option<Vec<&Tensor>> = inputs.iter().map(pick).collect();
        parts.map(|parts| Tensor::stack(&parts, 0))
    };
    let verb = stack(|w| w.classifier.as_ref().map(|c| &c.0));
    let noun = stack(|w| w.classifier.as_ref().map(|c| &c.1));
    Ok(crate::localization::fuse::window_maps(
        get("confidence_map")?,
        get("start")?,
        get("end")?,
        match (&verb, &noun, sampling) {
            (Some(v), Some(n), Some(s)) => Some((v, n, s)),
            _ => None,
        },
        inputs
            .iter()
            .map(|w| w.assembled.in_window.clone())
            .collect(),
        valid,
        map,
    ))
}
