//! An embedded synthetic feature dataset with planted action segments, for training BMN
//! without EPIC-Kitchens features: each window is Gaussian noise with one to `max_segments`
//! segments where a fixed "action" direction is added, so that boundaries and extents are
//! learnable from the features alone.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::labels::LabelMaps;

/// Sizes of the synthetic windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticSpec {
    /// Feature dimensions (DATA.NUM_INPUT_CHANNELS).
    pub channels: usize,
    /// Positions per window (DATA.TEMPORAL_SCALE).
    pub tscale: usize,
    /// Durations of the map (DATA.DURATION_SCALE).
    pub dscale: usize,
    /// Segments per window: 1..=max_segments.
    pub max_segments: usize,
    /// Standard deviation of the background noise; the action direction has norm √channels.
    pub noise: f64,
}

/// One window: features and the planted segments as fractions of the window.
#[derive(Debug)]
pub struct Window {
    /// (C, T)
    pub features: Tensor,
    pub segments: Vec<(f64, f64)>,
}

/// A batch with its training targets.
#[derive(Debug)]
pub struct Batch {
    /// (B, C, T)
    pub features: Tensor,
    /// (B, T)
    pub start: Tensor,
    pub end: Tensor,
    /// (B, D, T)
    pub iou_map: Tensor,
    pub mask: Tensor,
    pub segments: Vec<Vec<(f64, f64)>>,
}

/// Window `index` of the stream seeded by `seed`: the same pair gives the same window.
pub fn window(spec: &SyntheticSpec, seed: u64, index: u64) -> Window {
    let (c, t) = (spec.channels, spec.tscale);
    // The action direction is shared by every window of the seed.
    let mut dir_rng = ChaCha8Rng::seed_from_u64(seed);
    let direction: Vec<f64> = (0..c)
        .map(|_| if dir_rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect();
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1));
    let mut values: Vec<f32> = (0..c * t)
        .map(|_| (gaussian(&mut rng) * spec.noise) as f32)
        .collect();
    let count = rng.random_range(1..=spec.max_segments.max(1));
    let mut segments = Vec::new();
    for _ in 0..count {
        // Lengths of 2 .. D-1 positions, inside the window.
        let len = rng.random_range(2..spec.dscale.max(3));
        let start = rng.random_range(0..=t.saturating_sub(len));
        for pos in start..start + len {
            for (ch, d) in direction.iter().enumerate() {
                values[ch * t + pos] += *d as f32;
            }
        }
        segments.push((start as f64 / t as f64, (start + len) as f64 / t as f64));
    }
    Window {
        // (C·T) -> (C, T)
        features: Tensor::from_slice(&values).reshape([c as i64, t as i64]),
        segments,
    }
}

/// Windows `first .. first + size` with their BMN targets.
pub fn batch(spec: &SyntheticSpec, seed: u64, first: u64, size: usize) -> Batch {
    let maps = LabelMaps::new(spec.tscale, spec.dscale);
    let windows: Vec<Window> = (0..size as u64)
        .map(|i| window(spec, seed, first + i))
        .collect();
    let targets: Vec<_> = windows.iter().map(|w| maps.targets(&w.segments)).collect();
    let mask = maps.valid_mask();
    Batch {
        features: Tensor::stack(&windows.iter().map(|w| &w.features).collect::<Vec<_>>(), 0),
        start: Tensor::stack(&targets.iter().map(|t| &t.start).collect::<Vec<_>>(), 0),
        end: Tensor::stack(&targets.iter().map(|t| &t.end).collect::<Vec<_>>(), 0),
        iou_map: Tensor::stack(&targets.iter().map(|t| &t.iou_map).collect::<Vec<_>>(), 0),
        mask: mask
            .unsqueeze(0)
            .expand([size as i64, -1, -1], false)
            .contiguous(),
        segments: windows.into_iter().map(|w| w.segments).collect(),
    }
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
