//! The generator as it was before the batched rewrite: one tensor op chain per clip. Kept (test
//! only) as the oracle the fast path must match bit for bit on every configuration.

use rand::Rng;
use tch::{Device, IndexOp, Kind, Tensor};

use super::generator::{randint, uniform};
use super::*;
use crate::transforms::color::color_jitter;

/// The old `MosiGenerator::generate` and its helpers, on a generator built with `cfg`.
pub(super) struct Legacy<'a> {
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

/// Freezes everything but a random square box to one random frame (MOSI.md §4 step 7).
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::mosi::{Axes, LabelMode};
    use crate::transforms::color::ColorJitterConfig;

    fn color(color_p: f64, consistent: bool, gray_first: bool) -> ColorJitterConfig {
        ColorJitterConfig {
            brightness: 0.5,
            contrast: 0.5,
            saturation: 0.5,
            hue: 0.25,
            color_p,
            grayscale: 0.3,
            consistent,
            shuffle: true,
            gray_first,
        }
    }

    /// Configuration number `i` of a sweep over every switch the generator has.
    fn config(i: usize) -> GeneratorConfig {
        let standardize = match i % 3 {
            0 => None,
            1 => Some(Standardize {
                resize: [64, 64],
                crop: 64,
                aspect_ratio: [1.0, 1.0],
            }),
            _ => Some(Standardize {
                resize: [60, 72],
                crop: 56,
                aspect_ratio: [0.75, 1.33],
            }),
        };
        let color = match (i / 3) % 4 {
            0 => None,
            1 => Some(color(0.0, true, true)),
            2 => Some(color(1.0, false, true)),
            _ => Some(color(0.5, true, false)),
        };
        let flip = [FlipMode::Image, FlipMode::Reference, FlipMode::Off][(i / 12) % 3];
        let static_mask = [Some([0.3, 0.5]), None, Some([0.2, 1.0])][(i / 36) % 3];
        GeneratorConfig {
            speeds: SpeedConfig {
                num_classes: if i % 2 == 0 { 5 } else { 3 },
                decouple: i % 5 != 0,
                axes: Axes::Xy,
                zero_out: false,
                label_mode: LabelMode::Joint,
            },
            num_frames: if i % 2 == 0 { 8 } else { 5 },
            crop_size: 24 + 4 * (i % 3),
            standardize,
            distance_jitter: if i % 4 == 0 { [1.0, 1.0] } else { [0.5, 1.0] },
            static_mask,
            mean: [0.45, 0.4, 0.35],
            std: [0.225, 0.25, 0.2],
            color,
            flip,
        }
    }

    /// The batched generator against the clip-by-clip tensor pipeline: same clips to the bit,
    /// same trajectories, and the RNG left in the same state, over 108 configurations x 3 splits
    /// and contiguous as well as strided input images.
    #[test]
    fn fast_path_matches_legacy_bit_for_bit() {
        let splits = [Split::Train, Split::Val, Split::Test];
        for i in 0..108 {
            let cfg = config(i);
            let gen = MosiGenerator::new(cfg.clone()).unwrap();
            let legacy = Legacy {
                gen: &gen,
                cfg: &cfg,
            };
            tch::manual_seed(i as i64);
            let (h, w) = ([48, 70, 61][i % 3], [64, 52, 77][(i / 3) % 3]);
            let image = if i % 2 == 0 {
                Tensor::randint(256, [h, w, 3], (Kind::Uint8, Device::Cpu))
            } else {
                // (3, H, W) storage seen as (H, W, 3): a strided image.
                Tensor::randint(256, [3, h, w], (Kind::Uint8, Device::Cpu)).permute([1, 2, 0])
            };
            for (j, &split) in splits.iter().enumerate() {
                let seed = (i * 3 + j) as u64;
                let mut rng_new = ChaCha8Rng::seed_from_u64(seed);
                let mut rng_old = ChaCha8Rng::seed_from_u64(seed);
                let new = gen.generate(&image, split, &mut rng_new);
                let old = legacy.generate(&image, split, &mut rng_old);
                let (new, old) = match (new, old) {
                    (Ok(n), Ok(o)) => (n, o),
                    (Err(a), Err(b)) => {
                        assert_eq!(a, b, "config {i} {split:?}");
                        continue;
                    }
                    (n, o) => panic!("config {i} {split:?}: {:?} vs {:?}", n.err(), o.err()),
                };
                assert_eq!(new.clips.size(), old.clips.size(), "config {i} {split:?}");
                assert!(
                    new.trajectories.equal(&old.trajectories),
                    "config {i} {split:?}: trajectories"
                );
                let same = new.clips.eq_tensor(&old.clips).all().int64_value(&[]) == 1;
                assert!(
                    same,
                    "config {i} {split:?}: max |diff| {}",
                    (&new.clips - &old.clips).abs().max().double_value(&[])
                );
                assert_eq!(
                    rng_new.random::<u64>(),
                    rng_old.random::<u64>(),
                    "config {i} {split:?}: RNG consumed differently"
                );
            }
        }
    }

    /// The full MoSI recipe as `tada bench data` runs it (240x320 image, short side to 320, 9
    /// clips of 16x112x112, static mask), with the reference's grayscale-only jitter and with
    /// full per-frame jitter, in both flip modes.
    #[test]
    fn recipe_sized_samples_match_legacy_bit_for_bit() {
        tch::manual_seed(7);
        let image = Tensor::randint(256, [240, 320, 3], (Kind::Uint8, Device::Cpu));
        for (i, (color_p, flip)) in [
            (0.0, FlipMode::Image),
            (1.0, FlipMode::Image),
            (0.0, FlipMode::Reference),
            (1.0, FlipMode::Reference),
        ]
        .into_iter()
        .enumerate()
        {
            let cfg = GeneratorConfig {
                speeds: SpeedConfig::default(),
                num_frames: 16,
                crop_size: 112,
                standardize: Some(Standardize {
                    resize: [320, 320],
                    crop: 320,
                    aspect_ratio: [1.0, 1.0],
                }),
                distance_jitter: [1.0, 1.0],
                static_mask: Some([0.3, 0.5]),
                mean: [0.45; 3],
                std: [0.225; 3],
                color: Some(color(color_p, false, true)),
                flip,
            };
            let gen = MosiGenerator::new(cfg.clone()).unwrap();
            let legacy = Legacy {
                gen: &gen,
                cfg: &cfg,
            };
            let seed = 100 + i as u64;
            let new = gen
                .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(seed))
                .unwrap();
            let old = legacy
                .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(seed))
                .unwrap();
            assert_eq!(new.clips.size(), [9, 3, 16, 112, 112]);
            assert!(new.trajectories.equal(&old.trajectories), "case {i}");
            let same = new.clips.eq_tensor(&old.clips).all().int64_value(&[]) == 1;
            assert!(same, "case {i}: clips differ");
        }
    }
}
