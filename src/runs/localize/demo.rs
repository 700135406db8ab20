//! `tada demo --task localization`: BMN on tiny-tal in a CPU-minute. The embedded EPIC-format
//! dataset is written, BMN is trained on its training windows, `tada localize` tests the last
//! checkpoint on its validation videos, and the proposals' AR@100 is set beside that of
//! uniformly random proposals (as many per video) on the same ground truth.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{epoch_tag, localize, LocalizeMetrics, LocalizeOptions, MAX_AN, REPORTED_AN};
use crate::config::load;
use crate::localization::eval::{
    average_recall_vs_avg_nr_proposals, ClassOf, EpicGroundTruth, Proposal, TIOU_THRESHOLDS,
};
use crate::localization::tiny::{config_yaml, write, TinySpec, ANNO_NAME};
use crate::runs::{finetune, RunOptions};
use crate::train::TrainError;

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct LocalizationDemo {
    /// AR@100 and AUC (tIoU 0.5:0.95) of BMN's proposals.
    pub ar100: f64,
    pub auc: f64,
    /// The same for uniformly random proposals.
    pub uniform_ar100: f64,
    pub uniform_auc: f64,
    /// Action detection mAP (tIoU 0.1–0.5 averaged).
    pub action_map: f64,
    pub train_seconds: f64,
    pub total_seconds: f64,
    pub metrics_file: Option<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_path_buf();
    move |source| TrainError::Io { path, source }
}

/// `MAX_AN` random proposals per video: start uniform over the video, end uniform after it,
/// score uniform.
fn uniform_proposals(videos: &[(String, f64)], seed: u64) -> Vec<Proposal> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    videos
        .iter()
        .flat_map(|(video, duration)| {
            (0..MAX_AN as usize)
                .map(|_| {
                    let start = rng.random::<f64>() * duration;
                    let end = start + rng.random::<f64>() * (duration - start);
                    Proposal {
                        video: video.clone(),
                        start,
                        end,
                        score: rng.random(),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs the demo under `output` (`tiny-tal/`, `bmn_tiny_tal.yaml`, `bmn/`).
pub fn demo(output: &Path, seed: u64) -> Result<LocalizationDemo, TrainError> {
    let t0 = Instant::now();
    let data = output.join("tiny-tal");
    let run = output.join("bmn");
    for dir in [&data, &run] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
    }
    let spec = TinySpec::default();
    let tiny = write(&data, &spec).map_err(io(&data))?;
    let cfg_path = output.join("bmn_tiny_tal.yaml");
    std::fs::write(&cfg_path, config_yaml(&tiny, &spec)).map_err(io(&cfg_path))?;
    let mut loaded = load(&cfg_path, &[])?;
    loaded.config.random_seed = seed;
    let (summary, _) = finetune(
        &loaded,
        &RunOptions {
            output: Some(run.clone()),
            ..RunOptions::default()
        },
    )?;
    if let Some(e) = TrainError::interrupted(&summary) {
        return Err(e);
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let Some(ckpt) = summary.checkpoint else {
        return Err(TrainError::Run("the BMN run wrote no checkpoint".into()));
    };
    let report = localize(
        &loaded,
        &ckpt,
        &LocalizeOptions {
            out_dir: run,
            epoch_tag: epoch_tag(&ckpt),
        },
    )?;
    let Some(LocalizeMetrics::Detections(m)) = &report.metrics else {
        return Err(TrainError::Run(
            "tiny-tal's validation set was not evaluated".into(),
        ));
    };
    let ar = |p: &crate::localization::eval::ProposalSummary| {
        p.ar_at
            .iter()
            .find(|(an, _)| *an == MAX_AN)
            .map_or(0.0, |&(_, ar)| ar)
    };
    let ours = m
        .proposals
        .first()
        .ok_or_else(|| TrainError::Run("no proposals were evaluated".into()))?;
    let gt = EpicGroundTruth::read(&tiny.anno_dir.join(ANNO_NAME), "validation")
        .map_err(|e| TrainError::Run(e.to_string()))?;
    let rows = gt.rows(ClassOf::Action);
    let uniform = average_recall_vs_avg_nr_proposals(
        &rows,
        &uniform_proposals(&report.durations, seed),
        Some(MAX_AN),
        &TIOU_THRESHOLDS,
    )
    .map_err(|e| TrainError::Run(e.to_string()))?;
    let uniform = crate::localization::eval::ProposalSummary::from_curve(&uniform, &REPORTED_AN);
    Ok(LocalizationDemo {
        ar100: ar(ours),
        auc: ours.auc,
        uniform_ar100: ar(&uniform),
        uniform_auc: uniform.auc,
        action_map: m.action.average,
        train_seconds,
        total_seconds: t0.elapsed().as_secs_f64(),
        metrics_file: report.metrics_file.clone(),
    })
}
