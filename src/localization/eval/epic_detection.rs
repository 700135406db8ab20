//! Action, verb and noun detection mAP of a detection file against the ground truth: the
//! reference's `Epicdetection.evaluate()` (tadaconv/utils/eval_tal/eval_epic_detection.py).
//!
//! Each of the three is the mean over the ground truth's classes (actions by index, verbs and
//! nouns by id, in first-seen order) of the class's AP per tIoU threshold; detections are
//! grouped by the same key, so a detection of a known action counts for its `verb` and `noun`
//! fields' classes too. Detections of classes the ground truth lacks count nowhere.

use std::path::Path;

use super::detection_files::{read_detections, ScoredAction};
use super::error::EvalFileError;
use super::ground_truth::{ClassOf, EpicGroundTruth};
use super::map::{mean_average_precision, Detection, MeanAp};

/// The thresholds the reference's localisation test evaluates at
/// (`runs/test_epic_localization.py`).
pub const LOCALIZATION_TIOUS: [f64; 5] = [0.1, 0.2, 0.3, 0.4, 0.5];

/// AP per (threshold, class) and mAP per threshold for actions, verbs and nouns.
#[derive(Debug, Clone, PartialEq)]
pub struct EpicDetectionMaps {
    pub tious: Vec<f64>,
    pub action: MeanAp,
    pub verb: MeanAp,
    pub noun: MeanAp,
}

/// `Epicdetection.evaluate()` on parsed inputs.
pub fn evaluate_epic_detection(
    gt: &EpicGroundTruth,
    dets: &[ScoredAction],
    tious: &[f64],
) -> EpicDetectionMaps {
    let by = |class: ClassOf| {
        let rows: Vec<Detection> = dets
            .iter()
            .map(|d| Detection {
                video: d.video.clone(),
                start: d.start,
                end: d.end,
                score: d.score,
                label: match class {
                    ClassOf::Action => d.action,
                    ClassOf::Verb => d.verb,
                    ClassOf::Noun => d.noun,
                },
            })
            .collect();
        mean_average_precision(&gt.rows(class), &rows, tious)
    };
    EpicDetectionMaps {
        tious: tious.to_vec(),
        action: by(ClassOf::Action),
        verb: by(ClassOf::Verb),
        noun: by(ClassOf::Noun),
    }
}

/// The reference's `evaluate_detection(gt_file, detection_file, tiou_thresholds)`: the
/// "validation" subset of the ground truth against a detection file.
pub fn evaluate_detection_files(
    ground_truth: &Path,
    detections: &Path,
    tious: &[f64],
) -> Result<EpicDetectionMaps, EvalFileError> {
    let gt = EpicGroundTruth::read(ground_truth, "validation")?;
    let dets = read_detections(detections, &gt)?;
    Ok(evaluate_epic_detection(&gt, &dets, tious))
}
