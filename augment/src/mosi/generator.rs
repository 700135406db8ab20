//! Generating the pseudo-motion clips of one image (MOSI.md §4): optional frame-size
//! standardisation, a crop window sliding from `start` to `end` at each speed, normalisation,
//! and an optional static mask.

use rand::Rng;
use tch::{Device, IndexOp, Kind, Tensor};

use super::{MosiError, SpeedConfig, SpeedSet};
use crate::transforms::color::{color_jitter, ColorJitterConfig};

/// Which split a clip is made for: training draws random starts and distance jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
    Test,
}

/// PRETRAIN.FRAME_SIZE_STANDARDIZE_*: resize the short side, then crop a box of aspect `aspect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardize {
    /// Short side after resizing: `[lo, hi]` drawn per clip (lo == hi for a fixed size).
    pub resize: [usize; 2],
    /// Side of the crop taken from the resized image (before the aspect ratio is applied).
    pub crop: usize,
    /// PRETRAIN.ASPECT_RATIO range.
    pub aspect_ratio: [f64; 2],
}

/// How training clips are mirrored (with probability 0.5 per clip, train and val splits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlipMode {
    /// Mirror the source image before the window moves: content is mirrored, the motion and its
    /// label stay correct. tada's default.
    #[default]
    Image,
    /// Mirror the finished clip, as the reference does: x-motion is reversed but the label is
    /// kept, so half the x-moving clips carry the opposite label. Only for reproducing the
    /// reference's published numbers.
    Reference,
    /// No flipping.
    Off,
}

/// Everything the generator needs, in its own terms (tada maps its config onto this).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    pub speeds: SpeedConfig,
    /// PRETRAIN.NUM_FRAMES.
    pub num_frames: usize,
    /// DATA.TRAIN_CROP_SIZE: side of the moving window and of the output clips.
    pub crop_size: usize,
    pub standardize: Option<Standardize>,
    /// PRETRAIN.DISTANCE_JITTER.
    pub distance_jitter: [f64; 2],
    /// PRETRAIN.MASK_SIZE_RATIO when PRETRAIN.STATIC_MASK is on.
    pub static_mask: Option<[f64; 2]>,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// Colour jitter for the train and val splits (AUGMENTATION.COLOR_AUG).
    pub color: Option<ColorJitterConfig>,
    pub flip: FlipMode,
}

/// The clips of one image.
#[derive(Debug)]
pub struct MosiSample {
    /// `(K, 3, T, S, S)` float32, normalised, in speed-set order.
    pub clips: Tensor,
    /// Top-left `[x, y]` of the window per clip and frame: `(K, T, 2)` int64.
    pub trajectories: Tensor,
}

/// Start and signed distance of the window along one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisMotion {
    pub start: f64,
    pub end: f64,
}

fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

fn randint(rng: &mut impl Rng, lo: i64, hi: i64) -> i64 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// The MoSI generator: fixed speed set, per-image random draws from the caller's RNG.
pub struct MosiGenerator {
    cfg: GeneratorConfig,
    speeds: SpeedSet,
}

impl MosiGenerator {
    pub fn new(cfg: GeneratorConfig) -> Result<Self, MosiError> {
        let speeds = SpeedSet::new(&cfg.speeds)?;
        Ok(Self { cfg, speeds })
    }

    pub fn speed_set(&self) -> &SpeedSet {
        &self.speeds
    }

    /// Window motion along an axis of length `len` (MOSI.md §4 step 3).
    pub fn axis_motion(
        &self,
        len: usize,
        speed: i64,
        split: Split,
        rng: &mut impl Rng,
    ) -> Result<AxisMotion, MosiError> {
        let room = len as i64 - self.cfg.crop_size as i64;
        if room < 0 || (room == 0 && speed != 0) {
            return Err(MosiError::ImageTooSmall {
                len,
                crop: self.cfg.crop_size,
            });
        }
        let f = self.speeds.factor(speed);
        let [j_lo, j_hi] = self.cfg.distance_jitter;
        let jitter = match split {
            Split::Train if f.abs() < 1.0 => uniform(rng, j_lo, j_hi),
            Split::Train => uniform(rng, j_lo, 1.0),
            _ => 1.0,
        };
        let d = room as f64 * f * jitter;
        let start = match split {
            // Python's int() truncates toward zero.
            Split::Train => randint(
                rng,
                (-d).max(0.0) as i64,
                (room as f64).min(room as f64 - d) as i64,
            ) as f64,
            _ => ((room as f64 - d) / 2.0).floor(),
        };
        Ok(AxisMotion {
            start,
            end: start + d,
        })
    }

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
        let mut clips = Vec::with_capacity(self.speeds.len());
        let mut trajectories = Vec::with_capacity(self.speeds.len());
        for &[sx, sy] in &self.speeds.speeds {
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
            let mx = self.axis_motion(w as usize, sx, split, rng)?;
            let my = self.axis_motion(h as usize, sy, split, rng)?;
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
#[path = "generator_tests.rs"]
mod tests;
