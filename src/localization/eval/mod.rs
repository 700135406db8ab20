//! Evaluation of temporal localisation:
//! - detection AP per class at temporal-IoU thresholds and its mean (`map`, the reference's
//!   `compute_average_precision_detection`, after ActivityNet's `eval_detection`);
//! - the reference's `Epicdetection` end to end: the ground-truth and detection JSON files
//!   (`ground_truth`, `detection_files`) and action / verb / noun mAP (`epic_detection`);
//! - class-agnostic proposal AR@AN and AUC (`proposals`, ActivityNet's `eval_proposal`);
//! - the record written as `metrics.json` (`report`).
//!
//! Rankings break ties as numpy's `argsort` does (`argsort`).

mod argsort;
mod detection_files;
mod epic_detection;
mod error;
mod fields;
mod ground_truth;
mod map;
mod proposals;
mod py_json;
mod report;

pub use argsort::{argsort, argsort_descending};
pub use detection_files::{
    detections_json, read_detections, write_detections, ActionDetection, ActionKey, ScoredAction,
};
pub use epic_detection::{
    evaluate_detection_files, evaluate_epic_detection, EpicDetectionMaps, LOCALIZATION_TIOUS,
};
pub use error::EvalFileError;
pub use ground_truth::{
    parse_action, ActionSegment, ClassOf, EpicGroundTruth, GROUND_TRUTH_FIELDS,
};
pub use map::{
    average_precision, interpolated_prec_rec, mean_average_precision, segment_iou, Detection,
    GroundTruth, MeanAp, TIOU_THRESHOLDS,
};
pub use proposals::{
    average_recall_vs_avg_nr_proposals, read_proposals, Proposal, RecallCurve, CURVE_POINTS,
};
pub use py_json::{py_float, py_string};
pub use report::{LocalizationMetrics, MapSummary, ProposalSummary};
