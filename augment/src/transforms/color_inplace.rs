//! The colour jitter of [`super::color`] on a plain `(3, T, H, W)` float buffer, in place, one
//! pass per step instead of a dozen tensor ops. Each step repeats the tensor version's float32
//! operations in the same order, so results are bit-identical (tested against
//! [`apply_color_plan`](super::color::apply_color_plan)). The one reduction whose summation order
//! libtorch decides (and which differs between its AVX2 and AVX-512 kernels), the per-frame mean of
//! the contrast step, is still computed by libtorch.

use tch::{Kind, Tensor};

use super::color::{ColorPlan, ColorStep};

/// ITU-R 601 weights, as the `(3, 1, 1, 1)` float32 tensor of [`super::color::luma`].
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// Luma of one pixel: libtorch sums the three weighted channels in channel order.
#[inline(always)]
fn luma(r: f32, g: f32, b: f32) -> f32 {
    r * LUMA[0] + g * LUMA[1] + b * LUMA[2]
}

/// libtorch's `clamp(0, 1)` for non-NaN values.
#[inline(always)]
fn unit_clamp(x: f32) -> f32 {
    x.clamp(0.0, 1.0)
}

/// Truncation toward zero in float arithmetic only (`f32::trunc` is a libm call on plain
/// x86-64 and `as i32` saturates lane by lane; both stop the loops from vectorising). Adding and
/// subtracting 2^23 rounds |x| to an integer; one step down where that rounded up. Exact.
#[inline(always)]
fn trunc(x: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let a = x.abs();
    let r = (a + TWO_23) - TWO_23;
    let r = if r > a { r - 1.0 } else { r };
    // From 2^23 on every float is an integer already.
    if a >= TWO_23 {
        x
    } else {
        r.copysign(x)
    }
}

/// libtorch's float `remainder(x, 1)`: `fmod`, then shifted into [0, 1) for negative results.
/// `x - trunc(x)` is `fmod(x, 1)` exactly, up to the sign of a zero, which `copysign` restores.
#[inline(always)]
fn remainder1(x: f32) -> f32 {
    let m = (x - trunc(x)).copysign(x);
    if m != 0.0 && m < 0.0 {
        m + 1.0
    } else {
        m
    }
}

/// Mutable views of the three channel planes of a `(3, T, H, W)` buffer.
#[inline(always)]
fn channels(buf: &mut [f32]) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let n = buf.len() / 3;
    let (r, gb) = buf.split_at_mut(n);
    let (g, b) = gb.split_at_mut(n);
    (r, g, b)
}

/// Grayscale: each channel becomes the pixel's luma.
#[inline(always)]
fn gray(buf: &mut [f32]) {
    let (r, g, b) = channels(buf);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let y = luma(*r, *g, *b);
        (*r, *g, *b) = (y, y, y);
    }
}

/// `clamp(x·f, 0, 1)` with one factor per frame.
#[inline(always)]
fn brightness(buf: &mut [f32], hw: usize, f: &[f32]) {
    for (frame, &f) in buf.chunks_exact_mut(hw).zip(f.iter().cycle()) {
        for x in frame {
            *x = unit_clamp(*x * f);
        }
    }
}

/// `clamp((x − other)·f + other, 0, 1)`, as the tensor version's `blend`.
#[inline(always)]
fn blend(x: f32, other: f32, f: f32) -> f32 {
    unit_clamp((x - other) * f + other)
}

/// Contrast: blend every pixel with its frame's mean luma.
#[inline(always)]
fn contrast(buf: &mut [f32], t: usize, h: usize, w: usize, f: &[f32]) {
    let hw = h * w;
    let mut y = vec![0f32; t * hw];
    {
        let n = t * hw;
        let (r, g, b) = (&buf[..n], &buf[n..2 * n], &buf[2 * n..]);
        for (i, y) in y.iter_mut().enumerate() {
            *y = luma(r[i], g[i], b[i]);
        }
    }
    // (T·H·W) -> (1, T, H, W), the shape the tensor version reduces.
    let means = Tensor::from_slice(&y)
        .view([1, t as i64, h as i64, w as i64])
        .mean_dim([2, 3].as_slice(), true, Kind::Float);
    let means = Vec::<f32>::try_from(&means.view([-1])).unwrap_or_else(|_| vec![0.0; t]);
    // The channel planes are consecutive, each of T frames: frame index cycles every T chunks.
    for (k, frame) in buf.chunks_exact_mut(hw).enumerate() {
        let (m, f) = (means[k % t], f[k % t]);
        for x in frame {
            *x = blend(*x, m, f);
        }
    }
}

/// Saturation: blend every pixel with its own luma.
#[inline(always)]
fn saturation(buf: &mut [f32], hw: usize, f: &[f32]) {
    let (r, g, b) = channels(buf);
    let frames = r
        .chunks_exact_mut(hw)
        .zip(g.chunks_exact_mut(hw))
        .zip(b.chunks_exact_mut(hw));
    for (((r, g), b), &f) in frames.zip(f) {
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let y = luma(*r, *g, *b);
            (*r, *g, *b) = (blend(*r, y, f), blend(*g, y, f), blend(*b, y, f));
        }
    }
}

/// Hue rotation of one pixel through HSV, the tensor version's `adjust_hue` step by step.
#[inline(always)]
fn hue_pixel(r: f32, g: f32, b: f32, shift: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let delta = maxc - minc;
    let v = maxc;
    let safe_max = if maxc != 0.0 { maxc } else { 1.0 };
    let s = delta / safe_max;
    let safe_delta = if delta != 0.0 { delta } else { 1.0 };
    let rc = (maxc - r) / safe_delta;
    let gc = (maxc - g) / safe_delta;
    let bc = (maxc - b) / safe_delta;
    let is_r = maxc == r;
    let is_g = maxc == g && !is_r;
    let is_b = !(is_r || is_g);
    let as_f = |m: bool| if m { 1.0f32 } else { 0.0 };
    // The masked sum keeps the tensor version's products and additions.
    let h = (bc - gc) * as_f(is_r) + (rc - bc + 2.0) * as_f(is_g) + (gc - rc + 4.0) * as_f(is_b);
    let h = remainder1(h / 6.0 + 1.0);
    let h = if delta != 0.0 { h } else { 0.0 };
    let h = remainder1(h + shift);
    // hsv -> rgb: h is in [0, 1], so floor is truncation and the sector is at most 6 (which is
    // sector 0 again).
    let i6 = trunc(h * 6.0);
    let f = h * 6.0 - i6;
    let sector = if i6 >= 6.0 { i6 - 6.0 } else { i6 };
    let p = unit_clamp(v * (-s + 1.0));
    let q = unit_clamp(v * (-(s * f) + 1.0));
    let t = unit_clamp(v * (-(s * (-f + 1.0)) + 1.0));
    // The tensor version adds each candidate times a 0/1 mask; exactly one mask is 1 and the
    // candidates are >= 0, so the sum is the selected candidate. Selecting without branches
    // lets the loop vectorise.
    let pick = |c: [f32; 6]| {
        let mut out = c[0];
        for (k, &ck) in c.iter().enumerate().skip(1) {
            if sector == k as f32 {
                out = ck;
            }
        }
        out
    };
    (
        pick([v, q, p, p, t, v]),
        pick([t, v, v, q, p, p]),
        pick([p, p, t, v, v, q]),
    )
}

/// Hue: rotate every pixel by its frame's shift.
#[inline(always)]
fn hue(buf: &mut [f32], hw: usize, shift: &[f32]) {
    let (r, g, b) = channels(buf);
    let frames = r
        .chunks_exact_mut(hw)
        .zip(g.chunks_exact_mut(hw))
        .zip(b.chunks_exact_mut(hw));
    for (((r, g), b), &sh) in frames.zip(shift) {
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            (*r, *g, *b) = hue_pixel(*r, *g, *b, sh);
        }
    }
}

/// Applies a drawn jitter to a `(3, T, H, W)` buffer in [0, 1], in place.
///
/// # Shapes
/// `buf`: `3·T·H·W` values, channel-major; factors: `T` per step.
pub fn apply_color_plan_inplace(buf: &mut [f32], t: usize, h: usize, w: usize, plan: &ColorPlan) {
    assert_eq!(buf.len(), 3 * t * h * w, "buffer is not (3, T, H, W)");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { apply_avx2(buf, t, h, w, plan) };
        return;
    }
    apply(buf, t, h, w, plan);
}

/// [`apply`] compiled for AVX2. The hue step's HSV round trip is about 90 instructions per
/// pixel; plain x86-64 (SSE2) has half the lanes and no blend, and runs it 3–4x slower. The
/// operations are the same IEEE ones, so the results are too (LLVM never fuses a multiply and an
/// add on its own).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply_avx2(buf: &mut [f32], t: usize, h: usize, w: usize, plan: &ColorPlan) {
    apply(buf, t, h, w, plan);
}

#[inline(always)]
fn apply(buf: &mut [f32], t: usize, h: usize, w: usize, plan: &ColorPlan) {
    let hw = h * w;
    for step in &plan.steps {
        match step {
            ColorStep::Gray => gray(buf),
            ColorStep::Brightness(f) => brightness(buf, hw, f),
            ColorStep::Contrast(f) => contrast(buf, t, h, w, f),
            ColorStep::Saturation(f) => saturation(buf, hw, f),
            ColorStep::Hue(f) => hue(buf, hw, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::{Device, Kind, Tensor};

    use super::*;
    use crate::transforms::color::{apply_color_plan, draw_color_plan, ColorJitterConfig};

    fn cfg(consistent: bool, gray_first: bool) -> ColorJitterConfig {
        ColorJitterConfig {
            brightness: 0.5,
            contrast: 0.5,
            saturation: 0.5,
            hue: 0.25,
            color_p: 0.8,
            grayscale: 0.3,
            consistent,
            shuffle: true,
            gray_first,
        }
    }

    /// Random clips with exact 8-bit levels (as the generator makes them) plus some exact greys,
    /// saturated and zero pixels, jittered both ways: every value must have the same bits.
    #[test]
    fn matches_tensor_jitter_bit_for_bit() {
        let (t, h, w) = (4i64, 9i64, 13i64);
        for seed in 0..60u64 {
            tch::manual_seed(seed as i64);
            let mut x = Tensor::randint(256, [3, t, h, w], (Kind::Float, Device::Cpu)) / 255.0;
            if seed % 3 == 0 {
                // Grey, black and white pixels hit the delta == 0 and max == 0 branches.
                x.narrow(3, 0, 3).copy_(&x.narrow(3, 0, 3).narrow(0, 0, 1));
                let _ = x.narrow(3, 3, 1).fill_(0.0);
                let _ = x.narrow(3, 4, 1).fill_(1.0);
            }
            if seed % 5 == 1 {
                x = Tensor::rand([3, t, h, w], (Kind::Float, Device::Cpu));
            }
            let c = cfg(seed % 2 == 0, seed % 4 < 2);
            let plan = draw_color_plan(&c, t as usize, &mut ChaCha8Rng::seed_from_u64(seed));
            let want = apply_color_plan(&x, &plan);
            let src = Vec::<f32>::try_from(&x.contiguous().view([-1])).unwrap();
            let dims = (t as usize, h as usize, w as usize);
            // The dispatching entry point (AVX2 where the CPU has it) and the portable loop.
            let mut fast = src.clone();
            apply_color_plan_inplace(&mut fast, dims.0, dims.1, dims.2, &plan);
            let mut portable = src;
            apply(&mut portable, dims.0, dims.1, dims.2, &plan);
            for (name, buf) in [("dispatched", fast), ("portable", portable)] {
                let got = Tensor::from_slice(&buf).view([3, t, h, w]);
                let same = got.eq_tensor(&want).all().int64_value(&[]) == 1;
                assert!(
                    same,
                    "{name}, seed {seed} plan {plan:?}: max |diff| {}",
                    (&got - &want).abs().max().double_value(&[])
                );
            }
        }
    }
}
