//! A video's detections from its fused maps, as the reference's `parse_epic_bmn_proposals`
//! and `epic_video_post_process`: candidate proposals from the boundary peaks, SCORE_TYPE `cr`
//! rescoring, soft-NMS keeping int(duration / PROP_NUM_RATIO) + 1, and for each kept proposal
//! its five best (verb, noun) pairs, scored proposal × pair^ACTION_SCORE_POWER.

use tch::Tensor;

use super::actions::fuse_verb_noun;
use super::fuse::VideoMaps;
use super::post::{proposals_from_maps, rescore_cr, soft_nms, Proposal, SoftNms};

/// Action pairs written per kept proposal.
pub const PAIRS_PER_PROPOSAL: usize = 5;

/// Post-processing settings (LOCALIZATION.POST_PROCESS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostSettings {
    pub clr_power: f64,
    pub reg_power: f64,
    pub select_score: f64,
    pub action_score_power: f64,
}

/// One detection. Without class maps (no classifier results) a detection is a class-agnostic
/// proposal: no action.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionEntry {
    pub score: f64,
    /// (verb, noun).
    pub action: Option<(usize, usize)>,
    pub segment: [f64; 2],
}

impl DetectionEntry {
    pub fn verb(&self) -> Option<usize> {
        self.action.map(|a| a.0)
    }

    pub fn noun(&self) -> Option<usize> {
        self.action.map(|a| a.1)
    }

    /// The action as the detection file spells it, `"verb,noun"`.
    pub fn label(&self) -> Option<String> {
        self.action.map(|(v, n)| format!("{v},{n}"))
    }
}

/// A video's candidates and its detections.
#[derive(Debug)]
pub struct VideoDetections {
    /// The video's length in seconds.
    pub duration: f64,
    /// Every candidate proposal (normalised to the video's grid).
    pub candidates: Vec<Proposal>,
    /// Kept proposals in seconds with their scores, best first.
    pub proposals: Vec<(f64, f64, f64)>,
    pub detections: Vec<DetectionEntry>,
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::try_from(t.flatten(0, -1).contiguous()).unwrap_or_default()
}

/// Detections of a `duration`-second video from its fused maps.
pub fn detect(maps: &VideoMaps, duration: f64, nms: &SoftNms, s: &PostSettings) -> VideoDetections {
    let candidates = proposals_from_maps(
        &values(&maps.start),
        &values(&maps.end),
        &values(&maps.confidence.get(1)),
        &values(&maps.confidence.get(0)),
    );
    let scored = rescore_cr(&candidates, s.clr_power, s.reg_power, s.select_score);
    let mut kept = match scored.len() {
        0 | 1 => scored,
        _ => soft_nms(&scored, nms),
    };
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept.truncate(nms.max_proposals);
    let seconds = |x: f64, lo: bool| match lo {
        true => x.max(0.0) * duration,
        false => x.min(1.0) * duration,
    };
    let proposals: Vec<(f64, f64, f64)> = kept
        .iter()
        .map(|k| (seconds(k.xmin, true), seconds(k.xmax, false), k.score))
        .collect();
    let mut detections = Vec::new();
    for k in &kept {
        let segment = [seconds(k.xmin, true), seconds(k.xmax, false)];
        let (dur, st) = candidates[k.index].cell;
        match (&maps.verb, &maps.noun) {
            (Some(v), Some(n)) => {
                let cell = |m: &Tensor| values(&m.select(1, dur as i64).select(1, st as i64));
                for pair in fuse_verb_noun(&cell(v), &cell(n))
                    .into_iter()
                    .take(PAIRS_PER_PROPOSAL)
                {
                    detections.push(DetectionEntry {
                        score: k.score * f64::from(pair.score).powf(s.action_score_power),
                        action: Some((pair.verb, pair.noun)),
                        segment,
                    });
                }
            }
            _ => detections.push(DetectionEntry {
                score: k.score,
                action: None,
                segment,
            }),
        }
    }
    VideoDetections {
        duration,
        candidates,
        proposals,
        detections,
    }
}
