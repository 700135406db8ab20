//! Testing a whole video with overlapping windows: each window's maps are put back on the
//! video's grid of positions and averaged where windows overlap (the reference's
//! `fuse_epic_sliding_windows`), and a classifier's per-row verb / noun scores become maps of
//! the same shape by sampling every proposal (`perform_test`'s LOAD_CLASSIFIER_RES branch).

use tch::{Kind, Tensor};

use super::bm_layer::sample_mask;
use super::spec::MapSpec;

/// Sample points per proposal when a classifier's scores are turned into maps.
pub const CLASSIFIER_SAMPLES: i64 = 6;
/// Spatial views the classifier's results hold side by side (the reference's fixed 3).
pub const CLASSIFIER_VIEWS: i64 = 3;

/// The (T, N·D·T) matrix that samples CLASSIFIER_SAMPLES points inside every proposal, with no
/// margin around it.
pub fn classifier_sampling(map: &MapSpec) -> Tensor {
    sample_mask(&MapSpec {
        num_sample: CLASSIFIER_SAMPLES,
        boundary_ratio: 0.0,
        ..*map
    })
}

/// Per-proposal class probabilities from a classifier's per-position scores: the scores are
/// sampled at every proposal's points, soft-maxed over classes per view and point, then
/// averaged over views and points; proposals past the window are zeroed by `valid`.
///
/// # Shapes
/// scores (B, V·K, T), sampling (T, N·D·T), valid (D, T) -> (B, K, D, T).
pub fn classifier_maps(
    scores: &Tensor,
    sampling: &Tensor,
    valid: &Tensor,
    map: &MapSpec,
) -> Tensor {
    let (b, c) = (scores.size()[0], scores.size()[1]);
    let k = c / CLASSIFIER_VIEWS;
    // (B, V·K, T) x (T, N·D·T) -> (B, V·K, N·D·T) -> (B, V, K, N, D, T)
    scores
        .to_kind(Kind::Float)
        .matmul(sampling)
        .reshape([
            b,
            CLASSIFIER_VIEWS,
            k,
            CLASSIFIER_SAMPLES,
            map.dscale,
            map.tscale,
        ])
        .softmax(2, Kind::Float)
        .mean_dim([1i64, 3].as_slice(), false, Kind::Float)
        * valid.unsqueeze(0).unsqueeze(0)
}

/// One window's maps (CPU), masked by the valid-proposal mask.
#[derive(Debug)]
pub struct WindowMaps {
    /// (2, D, T): channel 0 regressed, 1 classified IoU.
    pub confidence: Tensor,
    /// (T)
    pub start: Tensor,
    pub end: Tensor,
    /// (K_verb, D, T) and (K_noun, D, T) class probabilities, when there are classes.
    pub verb: Option<Tensor>,
    pub noun: Option<Tensor>,
    /// Over the video's feature rows: whether each lies in the window.
    pub in_window: Vec<bool>,
}

/// A batch of windows' maps as the test keeps them: masked to the proposals inside each window
/// (`valid`, (D, T)), on the CPU, with class maps from the classifier's per-position scores
/// when there are any (`classes`, with [`classifier_sampling`]'s matrix on the maps' device,
/// built once per test: it holds T·6·D·T values).
///
/// # Shapes
/// confidence (B, 2, D, T), start / end (B, T), classes (B, V·K_verb, T) and
/// (B, V·K_noun, T); `in_window` one mask per window.
pub fn window_maps(
    confidence: &Tensor,
    start: &Tensor,
    end: &Tensor,
    classes: Option<(&Tensor, &Tensor, &Tensor)>,
    in_window: Vec<Vec<bool>>,
    valid: &Tensor,
    map: &MapSpec,
) -> Vec<WindowMaps> {
    let dev = confidence.device();
    let valid = valid.to_device(dev);
    let cpu = tch::Device::Cpu;
    let confidence = (confidence.to_kind(Kind::Float) * valid.unsqueeze(0).unsqueeze(0)).to(cpu);
    let (start, end) = (
        start.to_kind(Kind::Float).to(cpu),
        end.to_kind(Kind::Float).to(cpu),
    );
    let (verb, noun) = match classes {
        Some((v, n, sampling)) => {
            let maps = |scores: &Tensor| {
                classifier_maps(&scores.to_device(dev), sampling, &valid, map).to(cpu)
            };
            (Some(maps(v)), Some(maps(n)))
        }
        None => (None, None),
    };
    in_window
        .into_iter()
        .enumerate()
        .map(|(i, in_window)| {
            let i = i as i64;
            WindowMaps {
                confidence: confidence.get(i),
                start: start.get(i),
                end: end.get(i),
                verb: verb.as_ref().map(|v| v.get(i)),
                noun: noun.as_ref().map(|n| n.get(i)),
                in_window,
            }
        })
        .collect()
}

/// A video's maps on its own grid of L positions (one every two feature rows).
#[derive(Debug)]
pub struct VideoMaps {
    /// (L)
    pub start: Tensor,
    pub end: Tensor,
    /// (2, D, L)
    pub confidence: Tensor,
    /// (K, D, L)
    pub verb: Option<Tensor>,
    pub noun: Option<Tensor>,
}

/// Averages a video's windows (in time order) on its grid; `valid` is the (D, T) mask.
pub fn fuse_windows(windows: &[WindowMaps], valid: &Tensor) -> VideoMaps {
    let total = windows
        .last()
        .map_or(0, |w| w.in_window.iter().step_by(2).count()) as i64;
    let (d, t) = (valid.size()[0], valid.size()[1]);
    let zeros = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu));
    let mut count = zeros(&[total]);
    let mut map_count = zeros(&[d, total]);
    let mut start = zeros(&[total]);
    let mut end = zeros(&[total]);
    let mut confidence = zeros(&[2, d, total]);
    let classes = |pick: fn(&WindowMaps) -> &Option<Tensor>| {
        windows
            .first()
            .and_then(|w| pick(w).as_ref())
            .map(|m| zeros(&[m.size()[0], d, total]))
    };
    let mut verb = classes(|w| &w.verb);
    let mut noun = classes(|w| &w.noun);
    for w in windows {
        // The window's positions on the video's grid: every other row inside it, at most T
        // (a window whose rows round up to T + 1 positions would not fit, where the reference
        // fails).
        let positions: Vec<i64> = w
            .in_window
            .iter()
            .step_by(2)
            .take(total as usize)
            .enumerate()
            .filter(|(_, &inside)| inside)
            .map(|(p, _)| p as i64)
            .take(t as usize)
            .collect();
        let m = positions.len() as i64;
        if m == 0 {
            continue;
        }
        let at = Tensor::from_slice(&positions);
        let ones = Tensor::ones([m], (Kind::Float, tch::Device::Cpu));
        count = count.index_add(0, &at, &ones);
        start = start.index_add(0, &at, &w.start.narrow(0, 0, m));
        end = end.index_add(0, &at, &w.end.narrow(0, 0, m));
        confidence = confidence.index_add(2, &at, &w.confidence.narrow(2, 0, m));
        map_count = map_count.index_add(1, &at, &valid.narrow(1, 0, m));
        for (sum, map) in [(&mut verb, &w.verb), (&mut noun, &w.noun)] {
            if let (Some(s), Some(m_)) = (sum.as_mut(), map) {
                *s = s.index_add(2, &at, &m_.narrow(2, 0, m));
            }
        }
    }
    let floor = |c: Tensor| {
        let low = c.lt(0.01);
        c.masked_fill(&low, 1.0)
    };
    let (count, map_count) = (floor(count), floor(map_count));
    VideoMaps {
        start: start / &count,
        end: end / &count,
        confidence: confidence / &map_count,
        verb: verb.map(|v| v / &map_count),
        noun: noun.map(|n| n / &map_count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(value: f32, mask: Vec<bool>, t: i64, d: i64) -> WindowMaps {
        let full =
            |shape: &[i64]| Tensor::full(shape, value as f64, (Kind::Float, tch::Device::Cpu));
        WindowMaps {
            confidence: full(&[2, d, t]),
            start: full(&[t]),
            end: full(&[t]),
            verb: None,
            noun: None,
            in_window: mask,
        }
    }

    /// Two half-overlapping windows of 4 positions on a 6-position video: the overlap is the
    /// mean of both, the rest each window's own.
    #[test]
    fn overlapping_windows_are_averaged() {
        let (t, d) = (4, 2);
        // Rows (two per position): the first window covers rows 0..8, the second 4..12.
        let first: Vec<bool> = (0..8).map(|_| true).collect();
        let second: Vec<bool> = (0..12).map(|r| r >= 4).collect();
        let valid = Tensor::ones([d, t], (Kind::Float, tch::Device::Cpu));
        let fused = fuse_windows(
            &[window(1.0, first, t, d), window(3.0, second, t, d)],
            &valid,
        );
        let s: Vec<f32> = Vec::try_from(&fused.start).unwrap();
        assert_eq!(s, [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let c: Vec<f32> = Vec::try_from(fused.confidence.get(1).get(0)).unwrap();
        assert_eq!(c, [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    }

    /// Probabilities: each proposal's class scores sum to one inside the window, zero past it.
    #[test]
    fn classifier_maps_are_probabilities_over_classes() {
        let map = MapSpec {
            tscale: 8,
            dscale: 4,
            num_sample: 4,
            num_sample_perbin: 3,
            boundary_ratio: 0.5,
        };
        let scores = Tensor::randn([2, 3 * 5, 8], (Kind::Float, tch::Device::Cpu));
        let valid = crate::localization::labels::LabelMaps::new(8, 4).valid_mask();
        let m = classifier_maps(&scores, &classifier_sampling(&map), &valid, &map);
        assert_eq!(m.size(), [2, 5, 4, 8]);
        let sums = m.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        assert!((sums.double_value(&[0, 1, 2]) - 1.0).abs() < 1e-5);
        assert_eq!(sums.double_value(&[0, 3, 7]), 0.0);
    }
}
