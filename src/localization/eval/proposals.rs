//! Class-agnostic proposal metrics: average recall against the average number of proposals
//! per video (AR@AN) and the area under that curve (AUC), as ActivityNet's
//! `average_recall_vs_avg_nr_proposals` and `ANETproposal.evaluate` define them
//! (Evaluation/eval_proposal.py of github.com/activitynet/ActivityNet, commit 82304fa).
//!
//! - Only the ground truth's videos count; proposals of other videos still count in the
//!   total that sets the per-video budget.
//! - Each video keeps its `int(n · ratio)` best-scored proposals (at most all of them), where
//!   ratio = max AN · videos / all proposals, so every video keeps the same share of its own.
//! - The curve has 100 points: at point k (1..100) a video looks at
//!   `int(kept · k/100 · max AN · videos / total kept)` of its kept proposals, and a
//!   ground-truth segment is recalled at a tIoU threshold when one of those overlaps it by at
//!   least the threshold. Recall pools the segments of all videos; AR averages recall over the
//!   thresholds; AN of point k is k/100 · max AN (up to rounding).
//! - The area is the trapezoidal integral of AR over AN; ActivityNet reports
//!   AUC = 100 · area / last AN.
//! - A video without proposals recalls nothing (a single zero-overlap column, as the
//!   reference).

use std::path::Path;

use super::argsort::argsort_descending;
use super::error::EvalFileError;
use super::fields::{join, read_json, Fields};
use super::map::{segment_iou, GroundTruth};

/// Points of the AR-AN curve.
pub const CURVE_POINTS: usize = 100;

/// One class-agnostic proposal (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub video: String,
    pub start: f64,
    pub end: f64,
    pub score: f64,
}

/// The AR-AN curve and its area.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallCurve {
    pub tious: Vec<f64>,
    /// The max AN the curve runs to (given, or all proposals / videos).
    pub max_avg_proposals: f64,
    /// recall[threshold][point].
    pub recall: Vec<Vec<f64>>,
    /// Recall averaged over the thresholds, per point (AR).
    pub avg_recall: Vec<f64>,
    /// Average proposals per video at each point (AN).
    pub proposals_per_video: Vec<f64>,
    /// Trapezoidal area under AR over AN.
    pub area: f64,
    /// 100 · area / last AN (ActivityNet's "Area Under the AR vs AN curve", in percent).
    pub auc: f64,
}

impl RecallCurve {
    /// AR at the point whose AN is `an` (within rounding), e.g. AR@1, AR@100 of a max-100 curve.
    pub fn ar_at(&self, an: f64) -> Option<f64> {
        self.proposals_per_video
            .iter()
            .position(|&p| (p - an).abs() <= 1e-9 * an.abs().max(1.0))
            .map(|j| self.avg_recall[j])
    }
}

/// ActivityNet's `average_recall_vs_avg_nr_proposals`: AR-AN of `proposals` against the
/// segments of `gt` (labels ignored). `max_avg_proposals` `None` means all proposals / videos.
pub fn average_recall_vs_avg_nr_proposals(
    gt: &[GroundTruth],
    proposals: &[Proposal],
    max_avg_proposals: Option<f64>,
    tious: &[f64],
) -> Result<RecallCurve, EvalFileError> {
    let mut videos: Vec<&str> = Vec::new();
    for g in gt {
        if !videos.contains(&g.video.as_str()) {
            videos.push(&g.video);
        }
    }
    if videos.is_empty() || proposals.is_empty() {
        return Err(EvalFileError::Undefined(format!(
            "AR@AN needs ground truth and proposals ({} ground-truth segments, {} proposals)",
            gt.len(),
            proposals.len()
        )));
    }
    let nv = videos.len() as f64;
    // The reference's `if not max_avg_nr_proposals`: 0 also means "all".
    let max_an = match max_avg_proposals {
        Some(m) if m != 0.0 => m,
        _ => proposals.len() as f64 / nv,
    };
    let ratio = max_an * nv / proposals.len() as f64;

    let (overlaps, total_kept) = overlaps(gt, proposals, &videos, ratio);
    if total_kept == 0 {
        return Err(EvalFileError::Undefined(format!(
            "AR@AN at max AN {max_an}: no video keeps a proposal ({} proposals for {} videos)",
            proposals.len(),
            videos.len()
        )));
    }
    let share = max_an * nv / total_kept as f64;
    let pcn: Vec<f64> = (1..=CURVE_POINTS)
        .map(|k| k as f64 / 100.0 * share)
        .collect();
    let recall = recall(&overlaps, &pcn, tious);
    let avg_recall: Vec<f64> = (0..CURVE_POINTS)
        .map(|j| recall.iter().map(|r| r[j]).sum::<f64>() / tious.len() as f64)
        .collect();
    let per_video = total_kept as f64 / nv;
    let proposals_per_video: Vec<f64> = pcn.iter().map(|&p| p * per_video).collect();
    let area = trapezoid(&avg_recall, &proposals_per_video);
    Ok(RecallCurve {
        tious: tious.to_vec(),
        max_avg_proposals: max_an,
        auc: 100.0 * area / proposals_per_video[CURVE_POINTS - 1],
        recall,
        avg_recall,
        proposals_per_video,
        area,
    })
}

/// tIoU[video][segment][kept proposal] of each video's best `ratio` share of its proposals
/// (best first), and how many proposals were kept in all. A video without proposals has one
/// zero column.
fn overlaps(
    gt: &[GroundTruth],
    proposals: &[Proposal],
    videos: &[&str],
    ratio: f64,
) -> (Vec<Vec<Vec<f64>>>, usize) {
    let mut out: Vec<Vec<Vec<f64>>> = Vec::with_capacity(videos.len());
    let mut total_kept = 0usize;
    for video in videos {
        let segs: Vec<(f64, f64)> = gt
            .iter()
            .filter(|g| g.video == *video)
            .map(|g| (g.start, g.end))
            .collect();
        let props: Vec<&Proposal> = proposals.iter().filter(|p| p.video == *video).collect();
        if props.is_empty() {
            out.push(vec![vec![0.0]; segs.len()]);
            continue;
        }
        let order = argsort_descending(&props.iter().map(|p| p.score).collect::<Vec<_>>());
        let kept = ((props.len() as f64 * ratio) as usize).min(props.len());
        total_kept += kept;
        let mut m = vec![Vec::with_capacity(kept); segs.len()];
        for &pi in &order[..kept] {
            let p = props[pi];
            for (row, iou) in m.iter_mut().zip(segment_iou((p.start, p.end), &segs)) {
                row.push(iou);
            }
        }
        out.push(m);
    }
    (out, total_kept)
}

/// Recall per threshold and curve point: the share of all segments matched at least `t` by one
/// of the first `pcn` share of their video's kept proposals.
fn recall(overlaps: &[Vec<Vec<f64>>], pcn: &[f64], tious: &[f64]) -> Vec<Vec<f64>> {
    let positives: f64 = overlaps.iter().map(|m| m.len() as f64).sum();
    tious
        .iter()
        .map(|&t| {
            let mut matches = vec![0f64; pcn.len()];
            for m in overlaps {
                // Every video has a segment (videos come from the ground truth).
                let cols = m[0].len();
                for (j, &p) in pcn.iter().enumerate() {
                    let n = ((cols as f64 * p) as usize).min(cols);
                    matches[j] += m
                        .iter()
                        .filter(|row| row[..n].iter().any(|&x| x >= t))
                        .count() as f64;
                }
            }
            matches.iter().map(|&x| x / positives).collect()
        })
        .collect()
}

/// `np.trapz(y, x)`.
fn trapezoid(y: &[f64], x: &[f64]) -> f64 {
    (1..y.len())
        .map(|i| (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0)
        .sum()
}

/// Reads an ActivityNet proposal file, `{"results": {video: [{"score", "segment"}, …]}, …}`,
/// in file order (only `results` is required).
pub fn read_proposals(path: &Path) -> Result<Vec<Proposal>, EvalFileError> {
    let v = read_json(path)?;
    let f = Fields::new(path);
    let top = f.object(&v, "")?;
    let mut out = Vec::new();
    for (video, props) in f.object(f.get(top, "", "results")?, "results")? {
        let path = join("results", video);
        for (i, p) in f.array(props, &path)?.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let p = f.object(p, &at)?;
            let (start, end) = f.segment(f.get(p, &at, "segment")?, &join(&at, "segment"))?;
            out.push(Proposal {
                video: video.clone(),
                start,
                end,
                score: f.number(f.get(p, &at, "score")?, &join(&at, "score"))?,
            });
        }
    }
    Ok(out)
}
