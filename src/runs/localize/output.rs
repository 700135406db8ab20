//! What `tada localize` writes: per-video proposals, the detection JSON in the reference's
//! layout (`tal_tools.epic_localization_post_processing`), and the metrics of a labelled split.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::localization::detect::VideoDetections;
use crate::localization::eval::{mean_average_precision, Detection, GroundTruth};
use crate::localization::features::{FeatureSet, TalSplit};
use crate::train::TrainError;

/// The tIoU thresholds the reference's localisation test evaluates at.
pub const TEST_TIOU: [f64; 5] = [0.1, 0.2, 0.3, 0.4, 0.5];

/// The files of one `tada localize` pass.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// `<PROPS_DIR>_ep<tag>_<TEST_SET>/`: one `<video>.json` per video.
    pub proposals_dir: PathBuf,
    /// `<RESULT_FILE>_ep<tag>_<TEST_SET>.json`.
    pub detections: PathBuf,
    /// `metrics_ep<tag>_<TEST_SET>.json`.
    pub metrics: PathBuf,
    /// Whether detections are keyed `label` (a validation set) or `action`.
    label_key: &'static str,
}

fn io(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RunFiles {
    pub fn new(cfg: &Config, dir: &Path, tag: &str) -> Self {
        let set = &cfg.test.test_set;
        let l = &cfg.localization;
        Self {
            proposals_dir: dir.join(format!("{}_ep{tag}_{set}", l.props_dir)),
            detections: dir.join(format!("{}_ep{tag}_{set}.json", l.result_file)),
            metrics: dir.join(format!("metrics_ep{tag}_{set}.json")),
            label_key: if set.contains("val") {
                "label"
            } else {
                "action"
            },
        }
    }

    pub fn create(&self) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.proposals_dir).map_err(|e| io(&self.proposals_dir, e))
    }

    /// A video's candidate proposals (normalised to its grid) and the kept ones (seconds).
    pub fn write_proposals(&self, video: &str, found: &VideoDetections) -> Result<(), TrainError> {
        let candidates: Vec<[f64; 7]> = found
            .candidates
            .iter()
            .map(|p| {
                [
                    p.xmin,
                    p.xmax,
                    p.xmin_score,
                    p.xmax_score,
                    p.clr_score,
                    p.reg_score,
                    p.score,
                ]
            })
            .collect();
        let doc = json!({
            "heads": ["xmin", "xmax", "xmin_score", "xmax_score", "clr_score", "reg_score", "score"],
            "candidates": candidates,
            "kept": found.proposals.iter().map(|&(s, e, score)| json!({"segment": [s, e], "score": score})).collect::<Vec<_>>(),
        });
        let path = self.proposals_dir.join(format!("{video}.json"));
        write_json(&path, &doc)
    }

    /// The detection JSON as the reference writes it.
    fn detection_json(&self, results: &[(String, VideoDetections)]) -> Value {
        let mut videos = Map::new();
        for (name, found) in results {
            let entries: Vec<Value> = found
                .detections
                .iter()
                .map(|d| {
                    let mut m = Map::new();
                    m.insert("score".into(), json!(d.score));
                    if let Some(a) = &d.action {
                        m.insert(self.label_key.into(), json!(a));
                    }
                    if let (Some(v), Some(n)) = (d.verb, d.noun) {
                        m.insert("verb".into(), json!(v));
                        m.insert("noun".into(), json!(n));
                    }
                    m.insert("segment".into(), json!(d.segment));
                    Value::Object(m)
                })
                .collect();
            videos.insert(name.clone(), Value::Array(entries));
        }
        json!({
            "version": "0.2",
            "challenge": "action_detection",
            "sls_pt": 2,
            "sls_tl": 3,
            "sls_td": 3,
            "results": videos,
        })
    }
}

fn write_json(path: &Path, v: &Value) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| TrainError::Run(e.to_string()))?;
    crate::atomic_write::write(path, text.as_bytes()).map_err(|e| io(path, e))
}

/// mAP per tIoU threshold and its mean.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MapScores {
    pub thresholds: Vec<f64>,
    pub map: Vec<f64>,
    pub average: f64,
}

/// What `tada localize` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LocalizeReport {
    pub videos: usize,
    pub windows: usize,
    pub proposals: usize,
    pub detections: usize,
    pub detections_file: PathBuf,
    /// DATA.ANNO_DIR/DATA.ANNO_NAME when set: the ground-truth JSON (ActivityNet layout) of the
    /// split, for the reference's evaluation script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground_truth_file: Option<PathBuf>,
    /// Action (verb, noun), verb and noun detection mAP; on a labelled split with class maps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<MapScores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verb: Option<MapScores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noun: Option<MapScores>,
}

fn scores(gt: &[GroundTruth], dets: &[Detection]) -> MapScores {
    let m = mean_average_precision(gt, dets, &TEST_TIOU);
    MapScores {
        thresholds: TEST_TIOU.to_vec(),
        average: m.average(),
        map: m.map,
    }
}

/// Writes the detection JSON, evaluates a labelled split and writes the metrics.
pub(super) fn finish(
    cfg: &Config,
    set: &FeatureSet,
    split: TalSplit,
    files: &RunFiles,
    results: Vec<(String, VideoDetections)>,
) -> Result<LocalizeReport, TrainError> {
    write_json(&files.detections, &files.detection_json(&results))?;
    let mut report = LocalizeReport {
        videos: results.len(),
        windows: set.index.windows.len(),
        proposals: results.iter().map(|(_, f)| f.proposals.len()).sum(),
        detections: results.iter().map(|(_, f)| f.detections.len()).sum(),
        detections_file: files.detections.clone(),
        ground_truth_file: match cfg.data.anno_name.trim() {
            "" => None,
            name => Some(Path::new(&cfg.data.anno_dir).join(name)),
        },
        action: None,
        verb: None,
        noun: None,
    };
    if split == TalSplit::Validation {
        if let Some(m) = evaluate(set, &results) {
            report.action = Some(m.action);
            report.verb = Some(m.verb);
            report.noun = Some(m.noun);
        }
    }
    let doc = serde_json::to_value(&report).map_err(|e| TrainError::Run(e.to_string()))?;
    write_json(&files.metrics, &doc)?;
    Ok(report)
}

/// Action, verb and noun detection mAP at [`TEST_TIOU`].
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionScores {
    pub action: MapScores,
    pub verb: MapScores,
    pub noun: MapScores,
}

/// Scores labelled detections against the split's annotated segments as the reference's
/// `Epicdetection`: an action is a (verb, noun) pair, its classes numbered in the ground
/// truth's first-seen order; detections of an action the ground truth never has are dropped
/// (from the verb and noun scores as well).
/// `None` when no detection carries a label (no classifier results).
pub fn evaluate(
    set: &FeatureSet,
    results: &[(String, VideoDetections)],
) -> Option<DetectionScores> {
    let labelled = results
        .iter()
        .any(|(_, f)| f.detections.iter().any(|d| d.verb.is_some()));
    if !labelled {
        return None;
    }
    let mut actions: Vec<(i64, i64)> = Vec::new();
    let (mut gt_a, mut gt_v, mut gt_n) = (Vec::new(), Vec::new(), Vec::new());
    for &v in &set.index.annotated {
        let video = &set.index.videos[v].name;
        for s in set.index.segments.get(&v).into_iter().flatten() {
            let g = |label: usize| GroundTruth {
                video: video.clone(),
                start: s.start,
                end: s.end,
                label,
            };
            let pair = (s.verb, s.noun);
            let a = match actions.iter().position(|a| *a == pair) {
                Some(i) => i,
                None => {
                    actions.push(pair);
                    actions.len() - 1
                }
            };
            gt_a.push(g(a));
            gt_v.push(g(s.verb as usize));
            gt_n.push(g(s.noun as usize));
        }
    }
    let (mut d_a, mut d_v, mut d_n) = (Vec::new(), Vec::new(), Vec::new());
    for (video, found) in results {
        for d in &found.detections {
            let (Some(verb), Some(noun)) = (d.verb, d.noun) else {
                continue;
            };
            let det = |label: usize| Detection {
                video: video.clone(),
                start: d.segment[0],
                end: d.segment[1],
                label,
                score: d.score,
            };
            // The reader drops them before anything is scored, so they count for neither
            // their verb nor their noun either.
            if let Some(a) = actions
                .iter()
                .position(|a| *a == (verb as i64, noun as i64))
            {
                d_a.push(det(a));
                d_v.push(det(verb));
                d_n.push(det(noun));
            }
        }
    }
    Some(DetectionScores {
        action: scores(&gt_a, &d_a),
        verb: scores(&gt_v, &d_v),
        noun: scores(&gt_n, &d_n),
    })
}
