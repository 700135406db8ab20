//! Which frames of a video make a clip (docs/transforms.md#temporal-sampling): interval-based
//! (every r-th frame, scaled by fps / TARGET_FPS) and segment-based (one frame per equal segment).

use rand::Rng;
use tch::{Device, Kind, Tensor};

/// Which temporal view of a video to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalView {
    /// A random position (training, and the reference's in-training validation).
    Random,
    /// View `index` of `count` evenly spread views (testing); with one view, the centre.
    Test { index: usize, count: usize },
}

/// Interval-based sampling parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalSampling {
    pub num_frames: usize,
    pub sampling_rate: usize,
    pub target_fps: f64,
    pub minus_interval: bool,
}

fn truncated_linspace(start: f64, end: f64, n: usize, len: usize) -> Vec<i64> {
    // torch's float32 linspace, as the reference uses, so indices match it exactly.
    let t = Tensor::linspace(start, end, n as i64, (Kind::Float, Device::Cpu))
        .clamp(0.0, (len - 1) as f64);
    Vec::<i64>::try_from(t.to_kind(Kind::Int64)).unwrap_or_default()
}

/// Frame indices of one clip of a `len`-frame video at `fps`.
pub fn interval_indices(
    s: &IntervalSampling,
    len: usize,
    fps: f64,
    view: TemporalView,
    rng: &mut impl Rng,
) -> Vec<i64> {
    let len = len.max(1);
    if s.num_frames == 1 {
        return vec![rng.random_range(0..len as i64)];
    }
    let span = (s.num_frames * s.sampling_rate) as f64 * fps / s.target_fps;
    let room = (len as f64 - span).max(0.0);
    let start = match view {
        TemporalView::Random => {
            if room > 0.0 {
                rng.random_range(0.0..room)
            } else {
                0.0
            }
        }
        TemporalView::Test { count: 1, .. } => room / 2.0,
        TemporalView::Test { index, count } => room * index as f64 / count as f64,
    };
    let end = if s.minus_interval {
        start + span - s.sampling_rate as f64
    } else {
        start + span - 1.0
    };
    truncated_linspace(start, end, s.num_frames, len)
}

/// Frame indices of one clip by segment-based sampling.
pub fn segment_indices(
    num_frames: usize,
    len: usize,
    view: TemporalView,
    rng: &mut impl Rng,
) -> Vec<i64> {
    let len = len.max(1);
    let edges = Vec::<f32>::try_from(Tensor::linspace(
        0.0,
        len as f64,
        num_frames as i64 + 1,
        (Kind::Float, Device::Cpu),
    ))
    .unwrap_or_default();
    let points: Vec<f32> = edges
        .windows(2)
        .map(|e| match view {
            TemporalView::Random => e[0] + (e[1] - e[0]) * rng.random::<f32>(),
            TemporalView::Test { count: 1, .. } => (e[0] + e[1]) / 2.0,
            TemporalView::Test { index, count } => {
                e[0] + (e[1] - e[0]) * (index + 1) as f32 / count as f32
            }
        })
        .collect();
    // Round half to even, as torch.round does.
    let t = Tensor::from_slice(&points)
        .clamp(0.0, (len - 1) as f64)
        .round();
    Vec::<i64>::try_from(t.to_kind(Kind::Int64)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const S: IntervalSampling = IntervalSampling {
        num_frames: 8,
        sampling_rate: 4,
        target_fps: 30.0,
        minus_interval: false,
    };

    #[test]
    fn interval_test_views() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // 100 frames at 30 fps: span 32, room 68; one view starts at 34 and ends at 65.
        let one = interval_indices(
            &S,
            100,
            30.0,
            TemporalView::Test { index: 0, count: 1 },
            &mut rng,
        );
        assert_eq!(one, vec![34, 38, 42, 47, 51, 56, 60, 65]);
        let first = interval_indices(
            &S,
            100,
            30.0,
            TemporalView::Test { index: 0, count: 2 },
            &mut rng,
        );
        assert_eq!(first[0], 0);
        // Too short a video: clamped to the last frame.
        let short = interval_indices(
            &S,
            10,
            30.0,
            TemporalView::Test { index: 0, count: 1 },
            &mut rng,
        );
        assert_eq!(short.len(), 8);
        assert_eq!(*short.last().unwrap(), 9);
        // 60 fps doubles the span in frames.
        let fast = interval_indices(
            &S,
            200,
            60.0,
            TemporalView::Test { index: 0, count: 1 },
            &mut rng,
        );
        assert_eq!(fast[1] - fast[0], 9);
    }

    #[test]
    fn random_views_stay_in_range_and_are_seeded() {
        for seed in 0..20 {
            let a = interval_indices(
                &S,
                50,
                30.0,
                TemporalView::Random,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            let b = interval_indices(
                &S,
                50,
                30.0,
                TemporalView::Random,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            assert_eq!(a, b);
            assert!(a.iter().all(|&i| (0..50).contains(&i)) && a.windows(2).all(|w| w[0] <= w[1]));
            let s = segment_indices(
                8,
                50,
                TemporalView::Random,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            assert!(s.iter().all(|&i| (0..50).contains(&i)));
        }
    }

    #[test]
    fn segment_midpoints() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // 16 frames, 4 segments of 4: midpoints 2, 6, 10, 14.
        assert_eq!(
            segment_indices(4, 16, TemporalView::Test { index: 0, count: 1 }, &mut rng),
            vec![2, 6, 10, 14]
        );
        // Half-way points 1.25 frames into 2.5-frame segments round half to even: 1.25 -> 1.
        assert_eq!(
            segment_indices(4, 10, TemporalView::Test { index: 0, count: 2 }, &mut rng),
            vec![1, 4, 6, 9]
        );
    }
}
