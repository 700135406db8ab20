//! Spatial clip transforms (docs/transforms.md#spatial-transforms): uint8 THWC frames in, float
//! CTHW clips out; short-side scale jitter or RandomResizedCrop for training, short-side resize
//! plus centre or three-crop views for testing, horizontal flip, normalisation.

use rand::Rng;
use tch::{IndexOp, Kind, Tensor};

/// `(T, H, W, 3)` uint8 -> `(3, T, H, W)` float in [0, 1].
pub fn to_float_cthw(frames: &Tensor) -> Tensor {
    frames.permute([3, 0, 1, 2]).to_kind(Kind::Float) / 255.0
}

/// `(x - mean_c) / std_c` on a `(3, T, H, W)` clip.
pub fn normalize(x: &Tensor, mean: [f64; 3], std: [f64; 3]) -> Tensor {
    let m = Tensor::from_slice(&mean.map(|v| v as f32))
        .view([3, 1, 1, 1])
        .to_device(x.device());
    let s = Tensor::from_slice(&std.map(|v| v as f32))
        .view([3, 1, 1, 1])
        .to_device(x.device());
    (x - m) / s
}

/// Mirrors every frame left-right.
pub fn hflip(x: &Tensor) -> Tensor {
    x.flip([3])
}

/// Output size when the short side becomes `short` (the reference truncates the long side).
pub fn short_side_size(h: i64, w: i64, short: i64) -> (i64, i64) {
    if h < w {
        (short, (w as f64 / h as f64 * short as f64) as i64)
    } else {
        ((h as f64 / w as f64 * short as f64) as i64, short)
    }
}

/// Bilinear resize of a `(3, T, H, W)` clip (C acts as the batch and T as channels, as in the
/// reference), align_corners false.
pub fn resize(x: &Tensor, h: i64, w: i64) -> Tensor {
    x.upsample_bilinear2d([h, w], false, None, None)
}

/// `(3, T, H, W)` -> `(3, T, size, size)` at top-left `(y, x)`.
fn cut(x: &Tensor, y: i64, x0: i64, size: i64) -> Tensor {
    x.i((.., .., y..y + size, x0..x0 + size))
}

/// Training crop of the "Kinetics" kind: short side drawn from `[lo, hi]`, then a random square.
pub fn random_short_side_crop(
    x: &Tensor,
    lo: f64,
    hi: f64,
    crop: i64,
    rng: &mut impl Rng,
) -> Tensor {
    let s = x.size();
    let short = if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    } as i64;
    let (h, w) = short_side_size(s[2], s[3], short.max(crop));
    let x = resize(x, h, w);
    let y0 = rng.random_range(0.0..=(h - crop) as f64) as i64;
    let x0 = rng.random_range(0.0..=(w - crop) as f64) as i64;
    cut(&x, y0, x0, crop)
}

/// torchvision's RandomResizedCrop: area fraction in `area`, log-uniform aspect in `ratio`,
/// 10 attempts, then a centre crop of the clamped aspect; the box is resized to `crop`².
pub fn random_resized_crop(
    x: &Tensor,
    area: [f64; 2],
    ratio: [f64; 2],
    crop: i64,
    rng: &mut impl Rng,
) -> Tensor {
    let s = x.size();
    let (h, w) = (s[2] as f64, s[3] as f64);
    let uniform = |rng: &mut dyn rand::RngCore, lo: f64, hi: f64| {
        if hi > lo {
            rng.random_range(lo..hi)
        } else {
            lo
        }
    };
    for _ in 0..10 {
        let target = h * w * uniform(rng, area[0], area[1]);
        let aspect = uniform(rng, ratio[0].ln(), ratio[1].ln()).exp();
        let (bw, bh) = (
            (target * aspect).sqrt().round() as i64,
            (target / aspect).sqrt().round() as i64,
        );
        if bw > 0 && bh > 0 && bw <= s[3] && bh <= s[2] {
            let y0 = rng.random_range(0..=s[2] - bh);
            let x0 = rng.random_range(0..=s[3] - bw);
            return resize(&x.i((.., .., y0..y0 + bh, x0..x0 + bw)), crop, crop);
        }
    }
    let in_ratio = w / h;
    let (bw, bh) = if in_ratio < ratio[0] {
        (s[3], (w / ratio[0]).round() as i64)
    } else if in_ratio > ratio[1] {
        ((h * ratio[1]).round() as i64, s[2])
    } else {
        (s[3], s[2])
    };
    let (y0, x0) = ((s[2] - bh) / 2, (s[3] - bw) / 2);
    resize(&x.i((.., .., y0..y0 + bh, x0..x0 + bw)), crop, crop)
}

/// Test view: resize the short side to `scale`, then crop `crop`² at spatial index `index` of
/// `count` (1: centre; 3: top/left, centre, bottom/right along the long side).
pub fn test_crop(x: &Tensor, scale: i64, crop: i64, index: usize, count: usize) -> Tensor {
    let s = x.size();
    let (h, w) = short_side_size(s[2], s[3], scale.max(crop));
    let x = resize(x, h, w);
    let (cy, cx) = ((h - crop) / 2, (w - crop) / 2);
    let (y0, x0) = match (count, index) {
        (3, 0) if w <= h => (0, cx),
        (3, 0) => (cy, 0),
        (3, 2) if w <= h => (h - crop, cx),
        (3, 2) => (cy, w - crop),
        _ => (cy, cx),
    };
    cut(&x, y0, x0, crop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::Device;

    /// A (3, 2, H, W) clip whose value is the column index, so crops reveal their position.
    fn columns(h: i64, w: i64) -> Tensor {
        Tensor::arange(w, (Kind::Float, Device::Cpu))
            .view([1, 1, 1, w])
            .expand([3, 2, h, w], false)
            .contiguous()
    }

    #[test]
    fn layout_and_normalisation() {
        let frames = Tensor::full([2, 4, 6, 3], 51, (Kind::Uint8, Device::Cpu));
        let x = to_float_cthw(&frames);
        assert_eq!(x.size(), vec![3, 2, 4, 6]);
        let y = normalize(&x, [0.1, 0.2, 0.3], [0.5, 0.5, 0.5]);
        assert!((y.double_value(&[1, 0, 0, 0]) - 0.0).abs() < 1e-6);
        assert_eq!(hflip(&columns(2, 5)).double_value(&[0, 0, 0, 0]), 4.0);
    }

    #[test]
    fn test_views_are_centre_and_three_crops() {
        let x = columns(8, 16);
        // No resize needed (short side 8 = scale): centre and left/right views along the width.
        assert_eq!(test_crop(&x, 8, 8, 0, 1).double_value(&[0, 0, 0, 0]), 4.0);
        assert_eq!(test_crop(&x, 8, 8, 0, 3).double_value(&[0, 0, 0, 0]), 0.0);
        assert_eq!(test_crop(&x, 8, 8, 2, 3).double_value(&[0, 0, 0, 0]), 8.0);
        assert_eq!(short_side_size(240, 320, 224), (224, 298));
        assert_eq!(
            test_crop(&columns(240, 320), 224, 112, 1, 3).size(),
            vec![3, 2, 112, 112]
        );
    }

    #[test]
    fn training_crops_have_the_crop_size() {
        let x = columns(60, 80);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..10 {
            assert_eq!(
                random_short_side_crop(&x, 40.0, 56.0, 32, &mut rng).size(),
                vec![3, 2, 32, 32]
            );
            assert_eq!(
                random_resized_crop(&x, [0.08, 1.0], [0.75, 1.333], 32, &mut rng).size(),
                vec![3, 2, 32, 32]
            );
        }
        // An impossible area falls back to the centre crop.
        assert_eq!(
            random_resized_crop(&x, [5.0, 6.0], [1.0, 1.0], 16, &mut rng).size(),
            vec![3, 2, 16, 16]
        );
    }
}
