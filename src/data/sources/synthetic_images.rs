//! A deterministic synthetic image source: gradient backgrounds, textured shapes and noise, so
//! MoSI has structure to track without any dataset on disk. Image `i` of seed `s` is always the
//! same picture.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

fn colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    [
        rng.random::<f32>(),
        rng.random::<f32>(),
        rng.random::<f32>(),
    ]
}

/// The `index`-th image of stream `seed`, `(height, width, 3)` uint8.
pub fn synthetic_image(seed: u64, index: u64, height: usize, width: usize) -> Tensor {
    // One independent stream per image, so images can be made in any order or in parallel.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (h, w) = (height as f32, width as f32);
    let (c0, c1) = (colour(&mut rng), colour(&mut rng));
    let angle = rng.random::<f32>() * std::f32::consts::TAU;
    let (ca, sa) = (angle.cos(), angle.sin());
    let freq = 2.0 + rng.random::<f32>() * 10.0;
    let mut px = vec![0f32; height * width * 3];
    for y in 0..height {
        for x in 0..width {
            let (u, v) = (x as f32 / w, y as f32 / h);
            let g = ((u - 0.5) * ca + (v - 0.5) * sa + 0.5).clamp(0.0, 1.0);
            let stripes = 0.08 * ((u * ca - v * sa) * freq * std::f32::consts::TAU).sin();
            for c in 0..3 {
                px[(y * width + x) * 3 + c] = c0[c] * (1.0 - g) + c1[c] * g + stripes;
            }
        }
    }
    let shapes = rng.random_range(4..10);
    for _ in 0..shapes {
        let col = colour(&mut rng);
        let (cx, cy) = (rng.random::<f32>() * w, rng.random::<f32>() * h);
        let (rx, ry) = (
            (0.05 + rng.random::<f32>() * 0.2) * w,
            (0.05 + rng.random::<f32>() * 0.2) * h,
        );
        let round = rng.random::<bool>();
        let checker = 4.0 + rng.random::<f32>() * 12.0;
        let (x0, x1) = (
            ((cx - rx).max(0.0)) as usize,
            ((cx + rx).min(w - 1.0)) as usize,
        );
        let (y0, y1) = (
            ((cy - ry).max(0.0)) as usize,
            ((cy + ry).min(h - 1.0)) as usize,
        );
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
                if round && dx * dx + dy * dy > 1.0 {
                    continue;
                }
                // A checker texture inside each shape gives the motion something to lock onto.
                let tex = if ((x as f32 / checker) as i32 + (y as f32 / checker) as i32) % 2 == 0 {
                    0.85
                } else {
                    1.0
                };
                for c in 0..3 {
                    px[(y * width + x) * 3 + c] = col[c] * tex;
                }
            }
        }
    }
    let bytes: Vec<u8> = px
        .iter()
        .map(|v| ((v + (rng.random::<f32>() - 0.5) * 0.04).clamp(0.0, 1.0) * 255.0) as u8)
        .collect();
    // (H*W*3) -> (H, W, 3).
    Tensor::from_slice(&bytes)
        .view([height as i64, width as i64, 3])
        .to_kind(Kind::Uint8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_varied_and_textured() {
        let a = synthetic_image(7, 0, 60, 80);
        assert_eq!(a.size(), vec![60, 80, 3]);
        assert!(
            a.equal(&synthetic_image(7, 0, 60, 80)),
            "same seed and index, same image"
        );
        assert!(
            !a.equal(&synthetic_image(7, 1, 60, 80)),
            "index changes the image"
        );
        assert!(
            !a.equal(&synthetic_image(8, 0, 60, 80)),
            "seed changes the image"
        );
        let std = a.to_kind(Kind::Float).std(true).double_value(&[]);
        assert!(std > 10.0, "image has contrast: std {std}");
    }
}
