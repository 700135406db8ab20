//! Detection mAP: a detection is a true positive at a threshold when its best still-unmatched
//! ground-truth segment of the same video and class overlaps it by at least that tIoU;
//! precision/recall over detections in decreasing score order, VOC-style interpolated AP.
//! Equal scores and equal overlaps are ranked as numpy's `argsort()[::-1]` ranks them
//! (`super::argsort`).

use std::collections::HashMap;

use super::argsort::argsort_descending as descending;

/// The reference's tIoU thresholds: 0.5, 0.55, …, 0.95.
pub const TIOU_THRESHOLDS: [f64; 10] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/// One annotated segment (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub video: String,
    pub start: f64,
    pub end: f64,
    pub label: usize,
}

/// One detected segment (seconds) with its confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub video: String,
    pub start: f64,
    pub end: f64,
    pub label: usize,
    pub score: f64,
}

/// AP per (threshold, class) and its mean over classes per threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanAp {
    /// The classes present in the ground truth, in first-seen order (the reference's order).
    pub classes: Vec<usize>,
    /// ap[threshold][class index].
    pub ap: Vec<Vec<f64>>,
    /// Mean over classes, per threshold.
    pub map: Vec<f64>,
}

impl MeanAp {
    /// The mean over thresholds (the reference's "Average-mAP").
    pub fn average(&self) -> f64 {
        self.map.iter().sum::<f64>() / self.map.len().max(1) as f64
    }
}

/// Temporal IoU of `target` with each candidate (start, end).
pub fn segment_iou(target: (f64, f64), candidates: &[(f64, f64)]) -> Vec<f64> {
    candidates
        .iter()
        .map(|&(s, e)| {
            let inter = (target.1.min(e) - target.0.max(s)).max(0.0);
            inter / ((e - s) + (target.1 - target.0) - inter)
        })
        .collect()
}

/// VOC 2011 interpolated AP: precision made monotone from the right, summed over the recall
/// steps.
pub fn interpolated_prec_rec(prec: &[f64], rec: &[f64]) -> f64 {
    let mut mprec = Vec::with_capacity(prec.len() + 2);
    mprec.push(0.0);
    mprec.extend_from_slice(prec);
    mprec.push(0.0);
    let mut mrec = Vec::with_capacity(rec.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(rec);
    mrec.push(1.0);
    for i in (0..mprec.len() - 1).rev() {
        mprec[i] = mprec[i].max(mprec[i + 1]);
    }
    (1..mrec.len())
        .filter(|&i| mrec[i] != mrec[i - 1])
        .map(|i| (mrec[i] - mrec[i - 1]) * mprec[i])
        .sum()
}

/// AP of one class's detections against that class's ground truth, per threshold.
pub fn average_precision(gt: &[&GroundTruth], dets: &[&Detection], tious: &[f64]) -> Vec<f64> {
    if dets.is_empty() {
        return vec![0.0; tious.len()];
    }
    let npos = gt.len() as f64;
    let order = descending(&dets.iter().map(|d| d.score).collect::<Vec<_>>());
    // lock[t][g]: ground truth g is matched at threshold t.
    let mut lock = vec![vec![false; gt.len()]; tious.len()];
    let mut tp = vec![vec![0f64; dets.len()]; tious.len()];
    let mut fp = vec![vec![0f64; dets.len()]; tious.len()];
    // The class's ground truth per video, in order (the reference's groupby('video-id')).
    let mut by_video: HashMap<&str, Vec<usize>> = HashMap::new();
    for (g, row) in gt.iter().enumerate() {
        by_video.entry(row.video.as_str()).or_default().push(g);
    }
    let none = Vec::new();
    for (rank, &di) in order.iter().enumerate() {
        let d = dets[di];
        let same = by_video.get(d.video.as_str()).unwrap_or(&none);
        let spans: Vec<(f64, f64)> = same.iter().map(|&g| (gt[g].start, gt[g].end)).collect();
        let ious = segment_iou((d.start, d.end), &spans);
        let by_iou = descending(&ious);
        for (t, &thr) in tious.iter().enumerate() {
            let hit = by_iou
                .iter()
                .take_while(|&&j| ious[j] >= thr)
                .find(|&&j| !lock[t][same[j]]);
            match hit {
                Some(&j) => {
                    tp[t][rank] = 1.0;
                    lock[t][same[j]] = true;
                }
                None => fp[t][rank] = 1.0,
            }
        }
    }
    (0..tious.len())
        .map(|t| {
            let (mut ctp, mut cfp) = (0.0, 0.0);
            let (mut prec, mut rec) = (Vec::new(), Vec::new());
            for r in 0..dets.len() {
                ctp += tp[t][r];
                cfp += fp[t][r];
                rec.push(ctp / npos);
                prec.push(ctp / (ctp + cfp));
            }
            interpolated_prec_rec(&prec, &rec)
        })
        .collect()
}

/// AP of every ground-truth class at each threshold; detections of other classes are ignored.
pub fn mean_average_precision(gt: &[GroundTruth], dets: &[Detection], tious: &[f64]) -> MeanAp {
    // Rows of each class in input order; classes in first-seen order.
    let mut classes = Vec::new();
    let mut groups: HashMap<usize, (Vec<&GroundTruth>, Vec<&Detection>)> = HashMap::new();
    for g in gt {
        let group = groups.entry(g.label).or_insert_with(|| {
            classes.push(g.label);
            Default::default()
        });
        group.0.push(g);
    }
    for d in dets {
        if let Some(group) = groups.get_mut(&d.label) {
            group.1.push(d);
        }
    }
    let per_class: Vec<Vec<f64>> = classes
        .iter()
        .map(|c| {
            let (g, d) = &groups[c];
            average_precision(g, d, tious)
        })
        .collect();
    let ap: Vec<Vec<f64>> = (0..tious.len())
        .map(|t| per_class.iter().map(|c| c[t]).collect())
        .collect();
    let map = ap
        .iter()
        .map(|row| row.iter().sum::<f64>() / row.len().max(1) as f64)
        .collect();
    MeanAp { classes, ap, map }
}
