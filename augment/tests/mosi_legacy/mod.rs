//! The MoSI generator as it was before the batched rewrite: one tensor op chain per clip. It is
//! not part of the library; the batched generator must match it bit for bit on every
//! configuration (tests/mosi_fast_path.rs).

use rand::Rng;
use tada_augment::mosi::{
    AxisMotion, FlipMode, GeneratorConfig, MosiError, MosiGenerator, MosiSample, Split, Standardize,
};
use tada_augment::transforms::color::color_jitter;
use tch::{Device, IndexOp, Kind, Tensor};

/// A uniform draw in `[lo, hi)`, or `lo` for an empty range: the generator's own rule, restated
/// so the oracle consumes the RNG exactly as the generator must.
fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// A uniform integer in `[lo, hi]` (both ends included, as Python's `randint`), or `lo` for an
/// empty range.
fn randint(rng: &mut impl Rng, lo: i64, hi: i64) -> i64 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// The old `MosiGenerator::generate` and its helpers, on a generator built with `cfg`.
pub struct Legacy<'a> {
    pub gen: &'a MosiGenerator,
    pub cfg: &'a GeneratorConfig,
}

impl Legacy<'_> {
    /// Resizes the short side and crops a random box, as the reference does per clip.
    ///
    /// # Shapes
    /// `image`: `(H, W, 3)` uint8 -> `(H', W', 3)` uint8.
    fn standardize(&self, image: &Tensor, st: &Standardize, rng: &mut impl Rng) -> Tensor {
        let (h0, w0) = (image.size()[0] as f64, image.size()[1] as f64);
        let r = randint(rng, st.resize[0] as i64, st.resize[1] as i64) as f64;
        let a = uniform(rng, st.aspect_ratio[0], st.aspect_ratio[1]);
        let (h, w) = if h0 <= w0 {
            (r, (r / h0 * w0).trunc())
        } else {
            ((r / w0 * h0).trunc(), r)
        };
        // (H, W, 3) -> (1, 3, H, W) for interpolation.
        let chw = image.permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float);
        let resized = chw.upsample_bilinear2d([h as i64, w as i64], false, None, None);
        let c = st.crop as f64;
        let (ch, cw) = if a >= 1.0 {
            ((c / a).trunc(), c)
        } else {
            (c, (c * a).trunc())
        };
        let top = randint(rng, 0, (h - ch) as i64);
        let left = randint(rng, 0, (w - cw) as i64);
        let cropped = resized.i((0, .., top..top + ch as i64, left..left + cw as i64));
        // (3, H', W') -> (H', W', 3); the float -> uint8 cast truncates, as in the reference.
        cropped.permute([1, 2, 0]).to_kind(Kind::Uint8)
    }

    /// Generates the K clips of one image (`(H, W, 3)` uint8) in speed-set order.
    pub fn generate(
        &self,
        image: &Tensor,
        split: Split,
        rng: &mut impl Rng,
    ) -> Result<MosiSample, MosiError> {
        let shape = image.size();
        if shape.len() != 3 || shape[2] != 3 || image.kind() != Kind::Uint8 {
            return Err(MosiError::BadImage(format!(
                "{:?} {:?}",
                image.kind(),
                shape
            )));
        }
        let (s, t) = (self.cfg.crop_size as i64, self.cfg.num_frames as i64);
        let mean = Tensor::from_slice(&self.cfg.mean.map(|v| v as f32)).view([3, 1, 1, 1]);
        let std = Tensor::from_slice(&self.cfg.std.map(|v| v as f32)).view([3, 1, 1, 1]);
        let mut clips = Vec::with_capacity(self.gen.speed_set().len());
        let mut trajectories = Vec::with_capacity(self.gen.speed_set().len());
        for &[sx, sy] in &self.gen.speed_set().speeds {
            let mut img = match &self.cfg.standardize {
                Some(st) => self.standardize(image, st, rng),
                None => image.shallow_clone(),
            };
            let augment = split != Split::Test;
            let flip = augment && self.cfg.flip != FlipMode::Off && rng.random::<f64>() < 0.5;
            if flip && self.cfg.flip == FlipMode::Image {
                // (H, W, 3): mirror the columns.
                img = img.flip([1]);
            }
            let (h, w) = (img.size()[0], img.size()[1]);
            let mx = self.gen.axis_motion(w as usize, sx, split, rng)?;
            let my = self.gen.axis_motion(h as usize, sy, split, rng)?;
            // torch's float32 linspace, truncated: bit-identical trajectories to the reference.
            let path = |m: AxisMotion, len: i64| {
                Tensor::linspace(m.start, m.end, t, (Kind::Float, Device::Cpu))
                    .to_kind(Kind::Int64)
                    .clamp(0, len - s)
            };
            let (px, py) = (path(mx, w), path(my, h));
            let xs = Vec::<i64>::try_from(&px).unwrap_or_default();
            let ys = Vec::<i64>::try_from(&py).unwrap_or_default();
            let frames: Vec<Tensor> = xs
                .iter()
                .zip(&ys)
                .map(|(&x, &y)| img.i((y..y + s, x..x + s, ..)))
                .collect();
            // (T, S, S, 3) uint8 -> (3, T, S, S) float in [0, 1], then normalised.
            let mut clip = Tensor::stack(&frames, 0)
                .permute([3, 0, 1, 2])
                .to_kind(Kind::Float)
                / 255.0;
            if let (true, Some(color)) = (augment, &self.cfg.color) {
                clip = color_jitter(&clip, color, rng);
            }
            let mut clip = (clip - &mean) / &std;
            if flip && self.cfg.flip == FlipMode::Reference {
                // (3, T, S, S): mirror the columns of every frame.
                clip = clip.flip([3]);
            }
            if let Some(ratio) = self.cfg.static_mask {
                clip = static_mask(&clip, ratio, rng);
            }
            clips.push(clip);
            trajectories.push(Tensor::stack(&[px, py], 1));
        }
        Ok(MosiSample {
            clips: Tensor::stack(&clips, 0),
            trajectories: Tensor::stack(&trajectories, 0),
        })
    }
}

/// Freezes everything but a random square box to one random frame (docs/mosi.md#static-mask).
///
/// # Shapes
/// `clip`: `(3, T, S, S)` -> `(3, T, S, S)`.
fn static_mask(clip: &Tensor, ratio: [f64; 2], rng: &mut impl Rng) -> Tensor {
    let size = clip.size();
    let (t, s) = (size[1], size[3]);
    let still = randint(rng, 0, t - 1);
    let rho = uniform(rng, ratio[0], ratio[1]);
    let m = (s as f64 * rho) as i64;
    let x0 = randint(rng, 0, s - m);
    let y0 = randint(rng, 0, s - m);
    // (3, 1, S, S) broadcast over T.
    let out = clip.i((.., still..still + 1)).expand_as(clip).copy();
    out.i((.., .., y0..y0 + m, x0..x0 + m))
        .copy_(&clip.i((.., .., y0..y0 + m, x0..x0 + m)));
    out
}
