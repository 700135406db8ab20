//! Evaluation of temporal detections: average precision per class at temporal-IoU thresholds
//! and its mean (the reference's `Epicdetection`, after ActivityNet's `eval_detection`).

mod map;

pub use map::{
    average_precision, interpolated_prec_rec, mean_average_precision, segment_iou, Detection,
    GroundTruth, MeanAp, TIOU_THRESHOLDS,
};
