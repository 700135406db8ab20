//! What `tada localize` writes: per-video proposals, the detection JSON byte for byte as the
//! reference writes it (`tal_tools.epic_localization_post_processing`), and the metrics of a
//! labelled split: the reference's `Epicdetection` mAP read back from that file, and
//! ActivityNet's AR@AN / AUC of the class-agnostic proposals.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::Config;
use crate::localization::detect::VideoDetections;
use crate::localization::eval::{
    average_recall_vs_avg_nr_proposals, evaluate_epic_detection, read_detections, write_detections,
    ActionDetection, ActionKey, ClassOf, EpicGroundTruth, EvalFileError, LocalizationMetrics,
    Proposal, ProposalSummary, LOCALIZATION_TIOUS, TIOU_THRESHOLDS,
};
use crate::localization::features::{FeatureSet, TalSplit};
use crate::localization::post::{Proposal as Candidate, PROPOSAL_COLUMNS};
use crate::train::TrainError;

/// Average proposals per video the AR-AN curve runs to, and the ANs reported.
pub const MAX_AN: f64 = 100.0;
pub const REPORTED_AN: [f64; 5] = [1.0, 5.0, 10.0, 50.0, 100.0];

/// The files of one `tada localize` pass.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// `<PROPS_DIR>_ep<tag>_<TEST_SET>/`: one `<video>.json` per video.
    pub proposals_dir: PathBuf,
    /// `<RESULT_FILE>_ep<tag>_<TEST_SET>.json`.
    pub detections: PathBuf,
    /// `metrics_ep<tag>_<TEST_SET>.json`.
    pub metrics: PathBuf,
    key: ActionKey,
}

fn io(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn eval(e: EvalFileError) -> TrainError {
    TrainError::Run(e.to_string())
}

impl RunFiles {
    pub fn new(cfg: &Config, dir: &Path, tag: &str) -> Self {
        let set = &cfg.test.test_set;
        let l = &cfg.localization;
        Self {
            proposals_dir: dir.join(format!("{}_ep{tag}_{set}", l.props_dir)),
            detections: dir.join(format!("{}_ep{tag}_{set}.json", l.result_file)),
            metrics: dir.join(format!("metrics_ep{tag}_{set}.json")),
            key: ActionKey::for_test_set(set),
        }
    }

    pub fn create(&self) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.proposals_dir).map_err(|e| io(&self.proposals_dir, e))
    }

    /// A video's candidate proposals (normalised to its grid) and the kept ones (seconds).
    pub fn write_proposals(&self, video: &str, found: &VideoDetections) -> Result<(), TrainError> {
        let candidates: Vec<[f64; 7]> = found.candidates.iter().map(Candidate::row).collect();
        let kept: Vec<Value> = found
            .proposals
            .iter()
            .map(|&(s, e, score)| json!({"segment": [s, e], "score": score}))
            .collect();
        let doc = json!({
            "heads": PROPOSAL_COLUMNS,
            "candidates": candidates,
            "kept": kept,
        });
        write_json(&self.proposals_dir.join(format!("{video}.json")), &doc)
    }

    /// The detection JSON: the reference's file when the detections carry actions, else the
    /// class-agnostic proposals in ActivityNet's proposal layout (`results` per video of
    /// `score` and `segment`).
    pub fn write_detections(
        &self,
        results: &[(String, VideoDetections)],
    ) -> Result<bool, TrainError> {
        let labelled = results
            .iter()
            .all(|(_, f)| f.detections.iter().all(|d| d.action.is_some()))
            && results.iter().any(|(_, f)| !f.detections.is_empty());
        if labelled {
            // Shortest video first: the reference's order with POST_PROCESS.THREAD 1.
            let mut order: Vec<&(String, VideoDetections)> = results.iter().collect();
            order.sort_by(|a, b| a.1.duration.total_cmp(&b.1.duration));
            let by_video: Vec<(String, Vec<ActionDetection>)> = order
                .into_iter()
                .map(|(video, f)| {
                    let dets = f
                        .detections
                        .iter()
                        .filter_map(|d| {
                            let (verb, noun) = d.action?;
                            Some(ActionDetection {
                                score: d.score,
                                verb,
                                noun,
                                segment: d.segment,
                            })
                        })
                        .collect();
                    (video.clone(), dets)
                })
                .collect();
            write_detections(&self.detections, &by_video, self.key).map_err(eval)?;
        } else {
            let videos: serde_json::Map<String, Value> = results
                .iter()
                .map(|(video, f)| {
                    let props: Vec<Value> = f
                        .proposals
                        .iter()
                        .map(|&(s, e, score)| json!({"score": score, "segment": [s, e]}))
                        .collect();
                    (video.clone(), Value::Array(props))
                })
                .collect();
            write_json(
                &self.detections,
                &json!({"version": "0.2", "challenge": "proposals", "results": videos}),
            )?;
        }
        Ok(labelled)
    }
}

fn write_json(path: &Path, v: &Value) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| TrainError::Run(e.to_string()))?;
    crate::atomic_write::write(path, text.as_bytes()).map_err(|e| io(path, e))
}

/// What `tada localize` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LocalizeReport {
    pub videos: usize,
    pub windows: usize,
    pub proposals: usize,
    pub detections: usize,
    pub detections_file: PathBuf,
    pub metrics_file: Option<PathBuf>,
    /// The ground truth evaluated against: DATA.ANNO_DIR/DATA.ANNO_NAME, or the annotation
    /// list when ANNO_NAME is unset.
    pub ground_truth: Option<PathBuf>,
    /// The validation set's metrics (detection mAP with classifier results; AR@AN always).
    pub metrics: Option<LocalizeMetrics>,
    /// Each tested video's length in seconds.
    pub durations: Vec<(String, f64)>,
}

/// The metrics file's record.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LocalizeMetrics {
    /// Detections with actions: mAP (tIoU 0.1–0.5, as the reference's localisation test) and
    /// the proposals' AR@AN.
    Detections(LocalizationMetrics),
    /// Class-agnostic proposals: AR@AN alone.
    Proposals { proposals: Vec<ProposalSummary> },
}

impl LocalizeMetrics {
    /// AR@`an` at the ActivityNet thresholds (tIoU 0.5:0.05:0.95).
    pub fn ar_at(&self, an: f64) -> Option<f64> {
        let p = match self {
            Self::Detections(m) => &m.proposals,
            Self::Proposals { proposals } => proposals,
        };
        p.first()?
            .ar_at
            .iter()
            .find(|(a, _)| (a - an).abs() < 1e-9)
            .map(|&(_, ar)| ar)
    }
}

/// The split's ground truth: the ANNO_NAME JSON (its `validation` subset) when set, else the
/// annotation list's segments.
fn ground_truth(cfg: &Config, set: &FeatureSet) -> Result<(EpicGroundTruth, PathBuf), TrainError> {
    let name = cfg.data.anno_name.trim();
    if !name.is_empty() {
        let path = Path::new(&cfg.data.anno_dir).join(name);
        return Ok((
            EpicGroundTruth::read(&path, "validation").map_err(eval)?,
            path,
        ));
    }
    let labels: Vec<(String, f64, f64, String)> = set
        .index
        .video_windows()
        .into_iter()
        .flat_map(|(v, _)| {
            let name = &set.index.videos[v].name;
            set.index
                .segments
                .get(&v)
                .into_iter()
                .flatten()
                .map(move |s| {
                    (
                        name.clone(),
                        s.start,
                        s.end,
                        format!("{},{}", s.verb, s.noun),
                    )
                })
        })
        .collect();
    let gt = EpicGroundTruth::from_rows(
        labels
            .iter()
            .map(|(v, s, e, l)| (v.as_str(), *s, *e, l.as_str())),
    )
    .map_err(eval)?;
    let path = Path::new(&cfg.data.anno_dir).join(TalSplit::Validation.annotation_file());
    Ok((gt, path))
}

/// AR@AN of the kept proposals against the ground truth's segments, at the ActivityNet
/// thresholds and at the localisation test's.
fn proposal_metrics(
    gt: &EpicGroundTruth,
    results: &[(String, VideoDetections)],
) -> Result<Vec<ProposalSummary>, TrainError> {
    let props: Vec<Proposal> = results
        .iter()
        .flat_map(|(video, f)| {
            f.proposals
                .iter()
                .map(move |&(start, end, score)| Proposal {
                    video: video.clone(),
                    start,
                    end,
                    score,
                })
        })
        .collect();
    if props.is_empty() {
        return Ok(Vec::new());
    }
    let rows = gt.rows(ClassOf::Action);
    [&TIOU_THRESHOLDS[..], &LOCALIZATION_TIOUS[..]]
        .iter()
        .map(|tious| {
            average_recall_vs_avg_nr_proposals(&rows, &props, Some(MAX_AN), tious)
                .map(|c| ProposalSummary::from_curve(&c, &REPORTED_AN))
                .map_err(eval)
        })
        .collect()
}

/// Writes the detection JSON, evaluates a labelled split and writes the metrics.
pub(super) fn finish(
    cfg: &Config,
    set: &FeatureSet,
    split: TalSplit,
    files: &RunFiles,
    results: Vec<(String, VideoDetections)>,
) -> Result<LocalizeReport, TrainError> {
    let labelled = files.write_detections(&results)?;
    let mut report = LocalizeReport {
        videos: results.len(),
        windows: set.index.windows.len(),
        proposals: results.iter().map(|(_, f)| f.proposals.len()).sum(),
        detections: results.iter().map(|(_, f)| f.detections.len()).sum(),
        detections_file: files.detections.clone(),
        metrics_file: None,
        ground_truth: None,
        metrics: None,
        durations: results
            .iter()
            .map(|(v, f)| (v.clone(), f.duration))
            .collect(),
    };
    if split != TalSplit::Validation {
        return Ok(report);
    }
    let (gt, gt_path) = ground_truth(cfg, set)?;
    let proposals = proposal_metrics(&gt, &results)?;
    let metrics = match labelled {
        true => {
            // Read back from the file, as the reference evaluates what it wrote.
            let dets = read_detections(&files.detections, &gt).map_err(eval)?;
            let maps = evaluate_epic_detection(&gt, &dets, &LOCALIZATION_TIOUS);
            LocalizeMetrics::Detections(LocalizationMetrics::new(&maps, proposals))
        }
        false => LocalizeMetrics::Proposals { proposals },
    };
    let doc = serde_json::to_value(&metrics).map_err(|e| TrainError::Run(e.to_string()))?;
    write_json(&files.metrics, &doc)?;
    report.metrics_file = Some(files.metrics.clone());
    report.ground_truth = Some(gt_path);
    report.metrics = Some(metrics);
    Ok(report)
}
