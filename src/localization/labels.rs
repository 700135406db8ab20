//! BMN's training targets for one window, as the reference's feature dataset builds them:
//! start / end scores (how much of each position's anchor a 3-position band around a ground
//! truth boundary covers), the IoU map of every (duration, start) proposal with its best
//! ground-truth segment, and the mask of proposals inside the window.

use tch::Tensor;

/// The map's anchors for one (TEMPORAL_SCALE, DURATION_SCALE).
#[derive(Debug, Clone)]
pub struct LabelMaps {
    tscale: usize,
    dscale: usize,
}

/// One window's targets.
#[derive(Debug)]
pub struct WindowTargets {
    /// (T) start and end scores in [0, 1].
    pub start: Tensor,
    pub end: Tensor,
    /// (D, T) best IoU of proposal (d, s) = [s/T, (s + d + 1)/T] with a ground truth segment.
    pub iou_map: Tensor,
}

impl LabelMaps {
    pub fn new(tscale: usize, dscale: usize) -> Self {
        Self { tscale, dscale }
    }

    fn gap(&self) -> f64 {
        1.0 / self.tscale as f64
    }

    /// Proposal (d, s) as fractions of the window, computed as the reference's match map.
    fn span(&self, d: usize, s: usize) -> (f64, f64) {
        let xmin = self.gap() * s as f64;
        (xmin, xmin + self.gap() * (d + 1) as f64)
    }

    /// (D, T) 1 where the proposal ends inside the window.
    pub fn valid_mask(&self) -> Tensor {
        let v: Vec<f32> = (0..self.dscale)
            .flat_map(|d| (0..self.tscale).map(move |s| (d, s)))
            .map(|(d, s)| f32::from(u8::from(self.span(d, s).1 <= 1.0)))
            .collect();
        // (D·T) -> (D, T)
        Tensor::from_slice(&v).reshape([self.dscale as i64, self.tscale as i64])
    }

    /// Ground truth (start, end) in seconds from the window's start, over a window of
    /// `duration` seconds, clipped to [0, 1] of the window.
    pub fn normalise(gt: &[(f64, f64)], duration: f64) -> Vec<(f64, f64)> {
        gt.iter()
            .map(|&(s, e)| {
                (
                    (s / duration).clamp(0.0, 1.0),
                    (e / duration).clamp(0.0, 1.0),
                )
            })
            .collect()
    }

    /// The targets of segments `gt` (fractions of the window); all zeros without any.
    pub fn targets(&self, gt: &[(f64, f64)]) -> WindowTargets {
        let (t, d) = (self.tscale, self.dscale);
        let mut iou = vec![0f32; d * t];
        for (dur, s) in (0..d).flat_map(|dur| (0..t).map(move |s| (dur, s))) {
            let (lo, hi) = self.span(dur, s);
            let best = gt
                .iter()
                .map(|&(bs, be)| {
                    let inter = (hi.min(be) - lo.max(bs)).max(0.0);
                    inter / ((hi - lo) - inter + be - bs)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            iou[dur * t + s] = if gt.is_empty() { 0.0 } else { best as f32 };
        }
        // The boundary band: 3 positions wide (the reference's fixed 3 / TEMPORAL_SCALE).
        let band = 3.0 / t as f64;
        let score = |points: Vec<f64>| -> Tensor {
            let v: Vec<f32> = (0..t)
                .map(|j| {
                    // The reference's anchors span [j − 0.5, j + 1.5] positions: its upper
                    // ends are counted from 1.
                    let amin = self.gap() * (j as f64 - 0.5);
                    let amax = self.gap() * ((j + 1) as f64 + 0.5);
                    points
                        .iter()
                        .map(|&p| {
                            let inter =
                                (amax.min(p + band / 2.0) - amin.max(p - band / 2.0)).max(0.0);
                            inter / (amax - amin)
                        })
                        .fold(0.0, f64::max) as f32
                })
                .collect();
            Tensor::from_slice(&v)
        };
        WindowTargets {
            start: score(gt.iter().map(|g| g.0).collect()),
            end: score(gt.iter().map(|g| g.1).collect()),
            iou_map: Tensor::from_slice(&iou).reshape([d as i64, t as i64]),
        }
    }
}
