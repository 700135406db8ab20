//! Post-processing of one video's maps, as the reference's EPIC-Kitchens path does it:
//! candidate proposals from boundary peaks (`parse_epic_bmn_proposals`), the 'cr' rescoring and
//! SELECT_SCORE filter, Gaussian soft-NMS with a width-dependent IoU threshold (`soft_nms`),
//! and proposals in seconds.

use crate::config::schema::PostProcessConfig;
use crate::config::KeyError;

/// One candidate proposal, positions as fractions of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    pub xmin: f64,
    pub xmax: f64,
    pub xmin_score: f64,
    pub xmax_score: f64,
    /// Classification confidence (map channel 1).
    pub clr_score: f64,
    /// Regression confidence (map channel 0).
    pub reg_score: f64,
    /// xmin_score · xmax_score · clr_score · reg_score.
    pub score: f64,
    /// (duration index, start index) in the map.
    pub cell: (usize, usize),
}

impl Proposal {
    /// The reference's proposal row: xmin, xmax, xmin_score, xmax_score, clr_score,
    /// reg_score, score ([`PROPOSAL_COLUMNS`]).
    pub fn row(&self) -> [f64; 7] {
        [
            self.xmin,
            self.xmax,
            self.xmin_score,
            self.xmax_score,
            self.clr_score,
            self.reg_score,
            self.score,
        ]
    }
}

/// The names of [`Proposal::row`]'s columns (the reference's table head).
pub const PROPOSAL_COLUMNS: [&str; 7] = [
    "xmin",
    "xmax",
    "xmin_score",
    "xmax_score",
    "clr_score",
    "reg_score",
    "score",
];

/// A proposal after soft-NMS: its decayed score and its index among the candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub xmin: f64,
    pub xmax: f64,
    pub index: usize,
}

/// LOCALIZATION.POST_PROCESS values of the soft-NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftNms {
    /// SOFT_NMS_ALPHA: a suppressed score is multiplied by exp(−IoU^IOU_POWER / alpha).
    pub alpha: f64,
    /// SOFT_NMS_LOW_THRES, SOFT_NMS_HIGH_THRES: a neighbour decays when its IoU with the kept
    /// proposal exceeds low + (high − low) · the kept proposal's width.
    pub low_thres: f64,
    pub high_thres: f64,
    pub iou_power: f64,
    /// Proposals kept at most: int(duration / PROP_NUM_RATIO) + 1 in the reference.
    pub max_proposals: usize,
}

impl SoftNms {
    /// From LOCALIZATION.POST_PROCESS, for a video of `duration` seconds.
    pub fn from_config(p: &PostProcessConfig, duration: f64) -> Result<Self, KeyError> {
        let key = "LOCALIZATION.POST_PROCESS.PROP_NUM_RATIO";
        let ratio = p
            .prop_num_ratio
            .ok_or_else(|| KeyError::missing(key, "the proposal count of soft-NMS"))?;
        if !(ratio.is_finite() && ratio > 0.0) {
            return Err(KeyError::invalid(key, format!("must be > 0, got {ratio}")));
        }
        if !(p.soft_nms_alpha.is_finite() && p.soft_nms_alpha > 0.0) {
            return Err(KeyError::invalid(
                "LOCALIZATION.POST_PROCESS.SOFT_NMS_ALPHA",
                format!("must be > 0, got {}", p.soft_nms_alpha),
            ));
        }
        Ok(Self {
            alpha: p.soft_nms_alpha,
            low_thres: p.soft_nms_low_thres,
            high_thres: p.soft_nms_high_thres,
            iou_power: p.iou_power,
            max_proposals: max_proposals(duration, ratio),
        })
    }
}

/// POST_PROCESS.SCORE_TYPE `cr`, checked, with its powers and SELECT_SCORE:
/// (clr_power, reg_power, select_score).
pub fn cr_scoring(p: &PostProcessConfig) -> Result<(f64, f64, f64), KeyError> {
    if p.score_type.trim() != "cr" {
        return Err(KeyError::invalid(
            "LOCALIZATION.POST_PROCESS.SCORE_TYPE",
            format!("is {:?}; tada builds \"cr\"", p.score_type),
        ));
    }
    Ok((p.clr_power, p.reg_power, p.select_score))
}

/// Positions that may start (or end) a proposal: the first (last) one, local maxima, and
/// those above half the sequence's maximum.
fn boundary_candidates(scores: &[f32], first: bool) -> Vec<bool> {
    let t = scores.len();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut bins = vec![false; t];
    if t == 0 {
        return bins;
    }
    bins[if first { 0 } else { t - 1 }] = true;
    for i in 1..t.saturating_sub(1) {
        let s = scores[i];
        if (s > scores[i + 1] && s > scores[i - 1]) || s > 0.5 * max {
            bins[i] = true;
        }
    }
    bins
}

/// Every proposal between a start candidate and an end candidate, duration-major as the
/// reference enumerates them. Map cell (d, s) is the proposal from `s` to `s + d + 1` (one
/// position longer than the sampling mask's cell (d, s), as in the reference's parser).
///
/// # Shapes
/// start, end: T values; clr, reg: D·T values, row-major (duration, start).
pub fn proposals_from_maps(start: &[f32], end: &[f32], clr: &[f32], reg: &[f32]) -> Vec<Proposal> {
    let t = start.len();
    let d = clr.len().checked_div(t).unwrap_or(0);
    let (starts, ends) = (
        boundary_candidates(start, true),
        boundary_candidates(end, false),
    );
    let mut out = Vec::new();
    for dur in 0..d {
        for s in 0..t {
            let e = s + dur + 1;
            if e < t && starts[s] && ends[e] {
                let (xmin_score, xmax_score) = (start[s], end[e]);
                let (clr_score, reg_score) = (clr[dur * t + s], reg[dur * t + s]);
                // The reference multiplies float32 scalars.
                let score = xmin_score * xmax_score * clr_score * reg_score;
                out.push(Proposal {
                    xmin: s as f64 / t as f64,
                    xmax: e as f64 / t as f64,
                    xmin_score: xmin_score.into(),
                    xmax_score: xmax_score.into(),
                    clr_score: clr_score.into(),
                    reg_score: reg_score.into(),
                    score: score.into(),
                    cell: (dur, s),
                });
            }
        }
    }
    out
}

/// SCORE_TYPE 'cr': clr^CLR_POWER · reg^REG_POWER; proposals scoring at most SELECT_SCORE are
/// dropped. Returns (score, xmin, xmax, candidate index).
pub fn rescore_cr(props: &[Proposal], clr_power: f64, reg_power: f64, select: f64) -> Vec<Scored> {
    props
        .iter()
        .enumerate()
        .map(|(index, p)| Scored {
            score: p.clr_score.powf(clr_power) * p.reg_score.powf(reg_power),
            xmin: p.xmin,
            xmax: p.xmax,
            index,
        })
        .filter(|s| s.score > select)
        .collect()
}

/// IoU of each of `spans` with `(lo, hi)`, as the reference's `iou_with_anchors`.
fn iou_with(spans: &[Scored], lo: f64, hi: f64) -> Vec<f64> {
    spans
        .iter()
        .map(|a| {
            let len = a.xmax - a.xmin;
            let inter = (a.xmax.min(hi) - a.xmin.max(lo)).max(0.0);
            inter / (len - inter + hi - lo)
        })
        .collect()
}

/// Gaussian soft-NMS: repeatedly keeps the best remaining proposal and decays the scores of
/// those overlapping it. Like the reference, it stops with one candidate left (never kept) or
/// `max_proposals` kept; the result is in decreasing score order.
pub fn soft_nms(candidates: &[Scored], p: &SoftNms) -> Vec<Scored> {
    let mut rest: Vec<Scored> = candidates.to_vec();
    // Descending by score; equal scores keep their order.
    rest.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = Vec::new();
    while rest.len() > 1 && kept.len() < p.max_proposals {
        // The first maximum, as list.index(max(list)).
        let best =
            (0..rest.len()).fold(0, |b, i| if rest[i].score > rest[b].score { i } else { b });
        let top = rest[best];
        let ious = iou_with(&rest, top.xmin, top.xmax);
        let limit = p.low_thres + (p.high_thres - p.low_thres) * (top.xmax - top.xmin);
        for (i, r) in rest.iter_mut().enumerate() {
            if i != best && ious[i] > limit {
                r.score *= (-ious[i].powf(p.iou_power) / p.alpha).exp();
            }
        }
        kept.push(rest.remove(best));
    }
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept
}

/// The proposal count the reference keeps for a video of `duration` seconds.
pub fn max_proposals(duration: f64, prop_num_ratio: f64) -> usize {
    (duration / prop_num_ratio) as usize + 1
}

/// Proposals as (start, end) seconds of a `duration`-second video, with their scores.
pub fn to_seconds(kept: &[Scored], duration: f64) -> Vec<(f64, f64, f64)> {
    kept.iter()
        .map(|k| {
            (
                k.xmin.max(0.0) * duration,
                k.xmax.min(1.0) * duration,
                k.score,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bmn_epic.yaml's POST_PROCESS (PROP_NUM_RATIO given twice there: the later 1.0 counts).
    #[test]
    fn soft_nms_settings_come_from_post_process() {
        let mut p = PostProcessConfig {
            soft_nms_low_thres: 0.25,
            soft_nms_high_thres: 0.9,
            prop_num_ratio: Some(1.0),
            reg_power: 1.0,
            select_score: 0.0,
            ..PostProcessConfig::default()
        };
        let s = SoftNms::from_config(&p, 37.0).unwrap();
        assert_eq!(
            (s.alpha, s.low_thres, s.high_thres, s.max_proposals),
            (0.4, 0.25, 0.9, 38)
        );
        assert_eq!(cr_scoring(&p).unwrap(), (1.2, 1.0, 0.0));
        p.score_type = "se".into();
        assert!(cr_scoring(&p)
            .unwrap_err()
            .to_string()
            .contains("SCORE_TYPE"));
        p.prop_num_ratio = None;
        assert!(SoftNms::from_config(&p, 37.0)
            .unwrap_err()
            .to_string()
            .contains("PROP_NUM_RATIO"));
    }
}
