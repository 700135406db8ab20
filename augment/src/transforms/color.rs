//! Colour jitter and grayscale on clips, as the reference's `ColorJitter`
//! (docs/transforms.md#colour-jitter-and-grayscale): brightness, contrast, saturation and hue
//! factors (one per clip or one per frame), applied in a random order, plus a grayscale step placed
//! first or last.

use rand::seq::SliceRandom;
use rand::Rng;
use tch::{Kind, Tensor};

/// AUGMENTATION colour settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ColorJitterConfig {
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub hue: f64,
    /// Probability that the four colour operations run at all (AUGMENTATION.COLOR_P).
    pub color_p: f64,
    /// Probability of the grayscale step.
    pub grayscale: f64,
    /// One factor per clip (true) or one per frame (false).
    pub consistent: bool,
    pub shuffle: bool,
    pub gray_first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Brightness,
    Contrast,
    Saturation,
    Hue,
    Gray,
}

/// ITU-R 601 luma, kept as one channel.
///
/// # Shapes
/// `(3, T, H, W)` -> `(1, T, H, W)`.
pub fn luma(x: &Tensor) -> Tensor {
    let w = Tensor::from_slice(&[0.299f32, 0.587, 0.114])
        .to_device(x.device())
        .view([3, 1, 1, 1]);
    (x * w).sum_dim_intlist(0, true, Kind::Float)
}

/// Grayscale copied to three channels.
pub fn grayscale(x: &Tensor) -> Tensor {
    luma(x).expand_as(x).copy()
}

fn blend(x: &Tensor, other: &Tensor, f: &Tensor) -> Tensor {
    // f·x + (1−f)·other
    ((x - other) * f + other).clamp(0.0, 1.0)
}

/// Factors broadcast over the clip: `(1, T, 1, 1)`, on the clip's device (the jitter also runs
/// on CUDA views in contrastive pretraining).
fn factor_tensor(f: &[f32], like: &Tensor) -> Tensor {
    Tensor::from_slice(f)
        .view([1, f.len() as i64, 1, 1])
        .to_device(like.device())
}

/// One factor per frame (all equal when `consistent`), drawn uniformly from `[lo, hi)`.
fn draw_factors(rng: &mut impl Rng, lo: f64, hi: f64, t: usize, consistent: bool) -> Vec<f32> {
    let mut draw = || {
        if hi > lo {
            rng.random_range(lo..hi) as f32
        } else {
            lo as f32
        }
    };
    if consistent {
        vec![draw(); t]
    } else {
        (0..t).map(|_| draw()).collect()
    }
}

/// One step of a drawn jitter, with its per-frame factors.
#[derive(Debug, Clone, PartialEq)]
pub enum ColorStep {
    Gray,
    Brightness(Vec<f32>),
    Contrast(Vec<f32>),
    Saturation(Vec<f32>),
    /// Hue shift as a fraction of the colour circle.
    Hue(Vec<f32>),
}

/// The random part of a colour jitter: which steps run, in which order, with which factors.
/// Drawing it apart from applying it lets a caller draw every clip's parameters first (in the
/// same RNG order as [`color_jitter`]) and apply them with its own kernels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColorPlan {
    pub steps: Vec<ColorStep>,
}

/// Draws a jitter for a clip of `t` frames, consuming the RNG exactly as [`color_jitter`] does.
pub fn draw_color_plan(cfg: &ColorJitterConfig, t: usize, rng: &mut impl Rng) -> ColorPlan {
    let mut ops: Vec<Op> = Vec::new();
    if rng.random::<f64>() < cfg.color_p {
        ops.extend([Op::Brightness, Op::Contrast, Op::Saturation, Op::Hue]);
        if cfg.shuffle {
            ops.shuffle(rng);
        }
    }
    if rng.random::<f64>() < cfg.grayscale {
        if cfg.gray_first {
            ops.insert(0, Op::Gray);
        } else {
            ops.push(Op::Gray);
        }
    }
    let range = |v: f64| ((1.0 - v).max(0.0), 1.0 + v);
    let mut draw = |lo: f64, hi: f64| draw_factors(rng, lo, hi, t, cfg.consistent);
    let steps = ops
        .into_iter()
        .map(|op| match op {
            Op::Gray => ColorStep::Gray,
            Op::Brightness => {
                let (lo, hi) = range(cfg.brightness);
                ColorStep::Brightness(draw(lo, hi))
            }
            Op::Contrast => {
                let (lo, hi) = range(cfg.contrast);
                ColorStep::Contrast(draw(lo, hi))
            }
            Op::Saturation => {
                let (lo, hi) = range(cfg.saturation);
                ColorStep::Saturation(draw(lo, hi))
            }
            Op::Hue => ColorStep::Hue(draw(-cfg.hue, cfg.hue)),
        })
        .collect();
    ColorPlan { steps }
}

/// Applies a drawn jitter to a `(3, T, H, W)` clip in [0, 1] with tensor ops.
pub fn apply_color_plan(x: &Tensor, plan: &ColorPlan) -> Tensor {
    let mut out = x.shallow_clone();
    for step in &plan.steps {
        out = match step {
            ColorStep::Gray => grayscale(&out),
            ColorStep::Brightness(f) => (&out * factor_tensor(f, x)).clamp(0.0, 1.0),
            ColorStep::Contrast(f) => {
                // Per-frame mean grey level: (1, T, 1, 1).
                let mean = luma(&out).mean_dim([2, 3].as_slice(), true, Kind::Float);
                blend(&out, &mean, &factor_tensor(f, x))
            }
            ColorStep::Saturation(f) => blend(&out, &luma(&out), &factor_tensor(f, x)),
            ColorStep::Hue(f) => adjust_hue(&out, &factor_tensor(f, x)),
        };
    }
    out
}

/// Hue rotation by `shift` (a fraction of the colour circle), through HSV as torchvision does.
///
/// # Shapes
/// `x`: `(3, T, H, W)`; `shift`: `(1, T, 1, 1)`.
pub fn adjust_hue(x: &Tensor, shift: &Tensor) -> Tensor {
    let (r, g, b) = (x.get(0), x.get(1), x.get(2));
    let maxc = x.amax(0, false);
    let minc = x.amin(0, false);
    let delta = &maxc - &minc;
    let v = maxc.shallow_clone();
    let safe_max = maxc.where_scalarother(&maxc.ne(0.0), 1.0);
    let s = &delta / safe_max;
    let safe_delta = delta.where_scalarother(&delta.ne(0.0), 1.0);
    let rc = (&maxc - &r) / &safe_delta;
    let gc = (&maxc - &g) / &safe_delta;
    let bc = (&maxc - &b) / &safe_delta;
    let is_r = maxc.eq_tensor(&r);
    let is_g = maxc.eq_tensor(&g).logical_and(&is_r.logical_not());
    let is_b = is_r.logical_or(&is_g).logical_not();
    let h = (&bc - &gc) * is_r.to_kind(Kind::Float)
        + (&rc - &bc + 2.0) * is_g.to_kind(Kind::Float)
        + (&gc - &rc + 4.0) * is_b.to_kind(Kind::Float);
    let h: Tensor = h / 6.0 + 1.0;
    let h = h.remainder(1.0);
    // Grey pixels have no hue; they stay grey whatever the shift.
    let h = h.where_scalarother(&delta.ne(0.0), 0.0);
    let h = (h + shift.squeeze_dim(0)).remainder(1.0);
    hsv_to_rgb(&h, &s, &v)
}

fn hsv_to_rgb(h: &Tensor, s: &Tensor, v: &Tensor) -> Tensor {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - &i;
    let i = i.to_kind(Kind::Int64).remainder(6);
    let p = (v * (s.neg() + 1.0)).clamp(0.0, 1.0);
    let q = (v * ((s * &f).neg() + 1.0)).clamp(0.0, 1.0);
    let t = (v * ((s * (f.neg() + 1.0)).neg() + 1.0)).clamp(0.0, 1.0);
    // Sector k of the hue circle picks (r, g, b) from (v, t, p, q) as in torchvision.
    let table: [[&Tensor; 3]; 6] = [
        [v, &t, &p],
        [&q, v, &p],
        [&p, v, &t],
        [&p, &q, v],
        [&t, &p, v],
        [v, &p, &q],
    ];
    let out = Tensor::zeros_like(v).unsqueeze(0).repeat([3, 1, 1, 1]);
    for (k, rgb) in table.iter().enumerate() {
        let mask = i.eq(k as i64).to_kind(Kind::Float);
        for (c, comp) in rgb.iter().enumerate() {
            let _ = out.get(c as i64).g_add_(&(*comp * &mask));
        }
    }
    out
}

/// Applies the configured jitter to a `(3, T, H, W)` clip in [0, 1].
pub fn color_jitter(x: &Tensor, cfg: &ColorJitterConfig, rng: &mut impl Rng) -> Tensor {
    let plan = draw_color_plan(cfg, x.size()[1] as usize, rng);
    apply_color_plan(x, &plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn pixel(r: f32, g: f32, b: f32) -> Tensor {
        Tensor::from_slice(&[r, g, b]).view([3, 1, 1, 1])
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn hue_shift_rotates_primaries_and_zero_shift_is_identity() {
        let red = pixel(1.0, 0.0, 0.0);
        let third = Tensor::from_slice(&[1.0f32 / 3.0]).view([1, 1, 1, 1]);
        assert!(max_diff(&adjust_hue(&red, &third), &pixel(0.0, 1.0, 0.0)) < 1e-5);
        let x = Tensor::rand([3, 2, 4, 5], (Kind::Float, tch::Device::Cpu));
        let zero = Tensor::zeros([1, 2, 1, 1], (Kind::Float, tch::Device::Cpu));
        assert!(max_diff(&adjust_hue(&x, &zero), &x) < 1e-5);
        let grey = pixel(0.3, 0.3, 0.3);
        assert!(max_diff(&adjust_hue(&grey, &third), &grey) < 1e-6);
    }

    #[test]
    fn grayscale_uses_601_weights() {
        let g = grayscale(&pixel(1.0, 0.5, 0.0));
        assert!(max_diff(&g, &pixel(0.5925, 0.5925, 0.5925)) < 1e-6);
    }

    #[test]
    fn jitter_stays_in_range_and_respects_probabilities() {
        let x = Tensor::rand([3, 4, 6, 6], (Kind::Float, tch::Device::Cpu));
        let mut cfg = ColorJitterConfig {
            brightness: 0.5,
            contrast: 0.5,
            saturation: 0.5,
            hue: 0.25,
            color_p: 1.0,
            grayscale: 0.0,
            consistent: false,
            shuffle: true,
            gray_first: true,
        };
        let y = color_jitter(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(y.min().double_value(&[]) >= 0.0 && y.max().double_value(&[]) <= 1.0);
        assert!(max_diff(&x, &y) > 1e-3, "colour ops ran");
        cfg.color_p = 0.0;
        assert!(
            max_diff(
                &x,
                &color_jitter(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(1))
            ) == 0.0
        );
        cfg.grayscale = 1.0;
        let g = color_jitter(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(
            max_diff(&g.get(0), &g.get(2)) == 0.0,
            "grayscale always fires at p = 1"
        );
    }
}
