//! Generating the pseudo-motion clips of one image
//! (docs/mosi.md#generating-the-clips-of-one-image): optional frame-size standardisation, a crop
//! window sliding from `start` to `end` at each speed, normalisation, and an optional static mask.

use rand::Rng;
use tch::{Device, Kind, Tensor};

use super::assemble::{copy_clip, finish_clip, MaskBox, Windows};
use super::source::{Normalize, Source, Tone};
use super::{MosiError, SpeedConfig, SpeedSet};
use crate::transforms::color::{draw_color_plan, ColorJitterConfig, ColorPlan, ColorStep};
use crate::transforms::color_inplace::apply_color_plan_inplace;

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

pub(super) fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

pub(super) fn randint(rng: &mut impl Rng, lo: i64, hi: i64) -> i64 {
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

    /// Window motion along an axis of length `len` (docs/mosi.md#window-motion).
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

    /// Draws the standardisation of one clip (docs/mosi.md#frame-size-standardisation): the resized
    /// size of the whole image and the box cut from it, as the reference does per clip.
    fn draw_standardize(
        &self,
        (h0, w0): (usize, usize),
        st: &Standardize,
        rng: &mut impl Rng,
    ) -> StandardBox {
        let (h0, w0) = (h0 as f64, w0 as f64);
        let r = randint(rng, st.resize[0] as i64, st.resize[1] as i64) as f64;
        let a = uniform(rng, st.aspect_ratio[0], st.aspect_ratio[1]);
        let (h, w) = if h0 <= w0 {
            (r, (r / h0 * w0).trunc())
        } else {
            ((r / w0 * h0).trunc(), r)
        };
        let c = st.crop as f64;
        let (ch, cw) = if a >= 1.0 {
            ((c / a).trunc(), c)
        } else {
            (c, (c * a).trunc())
        };
        let top = randint(rng, 0, (h - ch) as i64) as usize;
        let left = randint(rng, 0, (w - cw) as i64) as usize;
        let (h, w) = (h as usize, w as usize);
        // A crop larger than the resized image is cut at its border (the tensor version failed
        // here instead).
        StandardBox {
            resized: (h, w),
            top,
            left,
            h: (top + ch as usize).min(h) - top,
            w: (left + cw as usize).min(w) - left,
        }
    }

    /// Draws everything random about one clip of speed `(sx, sy)`: standardisation, flip, x then y
    /// motion, colour, mask. That is the reference's order except for the flip, which it draws
    /// after the colour jitter; the image flip (`FlipMode::Image`) must be known before the window
    /// moves, so it is drawn first in every mode (docs/mosi.md#generating-the-clips-of-one-image).
    fn draw_clip(
        &self,
        image_hw: (usize, usize),
        (sx, sy): (i64, i64),
        split: Split,
        rng: &mut impl Rng,
    ) -> Result<ClipPlan, MosiError> {
        let (s, t) = (self.cfg.crop_size as i64, self.cfg.num_frames as i64);
        let area = match &self.cfg.standardize {
            Some(st) => self.draw_standardize(image_hw, st, rng),
            None => StandardBox {
                resized: image_hw,
                top: 0,
                left: 0,
                h: image_hw.0,
                w: image_hw.1,
            },
        };
        let augment = split != Split::Test;
        let flip = augment && self.cfg.flip != FlipMode::Off && rng.random::<f64>() < 0.5;
        let mx = self.axis_motion(area.w, sx, split, rng)?;
        let my = self.axis_motion(area.h, sy, split, rng)?;
        // torch's float32 linspace, truncated: bit-identical trajectories to the reference.
        let path = |m: AxisMotion, len: usize| {
            let p = Tensor::linspace(m.start, m.end, t, (Kind::Float, Device::Cpu))
                .to_kind(Kind::Int64)
                .clamp(0, len as i64 - s);
            Vec::<i64>::try_from(&p).unwrap_or_default()
        };
        let (xs, ys) = (path(mx, area.w), path(my, area.h));
        let color = match (augment, &self.cfg.color) {
            (true, Some(c)) => Some(draw_color_plan(c, t as usize, rng)),
            _ => None,
        };
        let mask = self.cfg.static_mask.map(|ratio| {
            let still = randint(rng, 0, t - 1) as usize;
            let rho = uniform(rng, ratio[0], ratio[1]);
            let m = (s as f64 * rho) as i64;
            let x0 = randint(rng, 0, s - m) as usize;
            let y0 = randint(rng, 0, s - m) as usize;
            MaskBox {
                still,
                x0,
                y0,
                // A ratio above 1 gives a box covering the whole clip (the tensor version failed).
                side: m.clamp(0, s) as usize,
            }
        });
        Ok(ClipPlan {
            area,
            flip,
            xs,
            ys,
            color,
            mask,
        })
    }

    /// Generates the K clips of one image (`(H, W, 3)` uint8) in speed-set order.
    ///
    /// All random draws are made first, clip by clip in the reference's order; then each
    /// (standardised) image is converted to float planes once, and every clip is written straight
    /// into the output by row copies (colour-jittered clips go through one buffer). Results are
    /// bit-identical to running the reference's tensor pipeline clip by clip.
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
        let image_hw = (shape[0] as usize, shape[1] as usize);
        let plans = self
            .speeds
            .speeds
            .iter()
            .map(|&[sx, sy]| self.draw_clip(image_hw, (sx, sy), split, rng))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sources = Sources::default();
        let (k, t, s) = (plans.len(), self.cfg.num_frames, self.cfg.crop_size);
        let norm = Normalize {
            mean: self.cfg.mean.map(|v| v as f32),
            std: self.cfg.std.map(|v| v as f32),
        };
        let clips = new_float_tensor(&[k, 3, t, s, s], |out| {
            let mut jitter_buf = Vec::new();
            for (plan, dst) in plans.iter().zip(out.chunks_exact_mut(3 * t * s * s)) {
                let src = sources.get(image, plan.area.resized, self.cfg.standardize.is_some());
                self.write_clip(dst, src, plan, &norm, &mut jitter_buf);
            }
        });
        let xy: Vec<i64> = plans
            .iter()
            .flat_map(|p| p.xs.iter().zip(&p.ys).flat_map(|(&x, &y)| [x, y]))
            .collect();
        Ok(MosiSample {
            clips,
            // (K·T·2) -> (K, T, 2).
            trajectories: Tensor::from_slice(&xy).view([k as i64, t as i64, 2]),
        })
    }

    /// Writes one drawn clip into `dst` (`(3, T, S, S)`).
    fn write_clip(
        &self,
        dst: &mut [f32],
        src: &mut Source,
        plan: &ClipPlan,
        norm: &Normalize,
        jitter_buf: &mut Vec<f32>,
    ) {
        let s = self.cfg.crop_size;
        let a = &plan.area;
        let image_flip = plan.flip && self.cfg.flip == FlipMode::Image;
        let clip_flip = plan.flip && self.cfg.flip == FlipMode::Reference;
        // Left edge of the clip's image in the source, or in its mirror image.
        let col0 = if image_flip {
            src.w - a.left - a.w
        } else {
            a.left
        };
        let src_w = src.w;
        let frame_origins = |mirror_clip: bool| -> Vec<(usize, usize)> {
            plan.xs
                .iter()
                .zip(&plan.ys)
                .map(|(&x, &y)| {
                    let col = col0 + x as usize;
                    // Mirroring the finished clip reads the window from the mirror image.
                    let col = if mirror_clip { src_w - s - col } else { col };
                    (a.top + y as usize, col)
                })
                .collect()
        };
        let tone = match plan.color.as_ref().map(|c| c.steps.as_slice()) {
            None | Some([]) => Some(Tone::Color),
            Some([ColorStep::Gray]) => Some(Tone::Gray),
            Some(_) => None,
        };
        match tone {
            Some(tone) => {
                let origins = frame_origins(clip_flip);
                let windows = Windows {
                    plane_w: src_w,
                    planes: src.planes(tone, image_flip || clip_flip, norm),
                    origins: &origins,
                };
                copy_clip(dst, &windows, s, plan.mask);
            }
            None => {
                // The jitter's contrast step averages each frame, so the clip is jittered in its
                // own orientation and only mirrored while normalising.
                let origins = frame_origins(false);
                let windows = Windows {
                    plane_w: src_w,
                    planes: src.planes(Tone::Unit, image_flip, norm),
                    origins: &origins,
                };
                jitter_buf.resize(dst.len(), 0.0);
                copy_clip(jitter_buf, &windows, s, None);
                let t = origins.len();
                if let Some(color) = &plan.color {
                    apply_color_plan_inplace(jitter_buf, t, s, s, color);
                }
                finish_clip(dst, jitter_buf, t, s, norm, clip_flip, plan.mask);
            }
        }
    }
}

/// The box a clip's image is cut from: the whole image, or a standardised crop.
#[derive(Debug, Clone, Copy)]
struct StandardBox {
    /// Size of the whole (resized) image the box lies in.
    resized: (usize, usize),
    top: usize,
    left: usize,
    h: usize,
    w: usize,
}

/// Everything random about one clip.
struct ClipPlan {
    area: StandardBox,
    flip: bool,
    /// Window top-left per frame, in the clip's image.
    xs: Vec<i64>,
    ys: Vec<i64>,
    color: Option<ColorPlan>,
    mask: Option<MaskBox>,
}

/// The images of one `generate` call: the input, or one standardised image per drawn size.
#[derive(Default)]
struct Sources {
    items: Vec<((usize, usize), Source)>,
}

impl Sources {
    fn get(&mut self, image: &Tensor, size: (usize, usize), resize: bool) -> &mut Source {
        let at = match self.items.iter().position(|(k, _)| *k == size) {
            Some(i) => i,
            None => {
                let rgb = if resize {
                    resized_rgb(image, size)
                } else {
                    image.contiguous()
                };
                let bytes = Vec::<u8>::try_from(&rgb.view([-1])).unwrap_or_default();
                self.items.push((size, Source::new(bytes, size.0, size.1)));
                self.items.len() - 1
            }
        };
        &mut self.items[at].1
    }
}

/// Short-side resize of the whole image with the reference's ops (bilinear on float,
/// align_corners false), cast back to uint8 by truncation. Cropping commutes with the
/// element-wise cast, so every clip's box can be cut from this one image.
///
/// # Shapes
/// `image`: `(H, W, 3)` uint8 -> `(h, w, 3)` uint8, contiguous.
fn resized_rgb(image: &Tensor, (h, w): (usize, usize)) -> Tensor {
    // (H, W, 3) -> (1, 3, H, W) for interpolation.
    let chw = image.permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float);
    let (h, w) = (h as i64, w as i64);
    let st = chw.stride();
    let channels_last = st[1] == 1 && st[3] == 3 && st[2] == 3 * chw.size()[3];
    if channels_last {
        // An (H, W, 3) image is channels-last, and so is libtorch's kernel for it; left to
        // itself, the op returns a contiguous (1, 3, h, w) copy of its result, which then has to
        // be transposed back. Handing it a channels-last output (an (h, w, 3) buffer seen as
        // (1, 3, h, w)) skips both copies; the values are those of the same kernel.
        let hwc = Tensor::empty([1, h, w, 3], (Kind::Float, Device::Cpu));
        // (1, h, w, 3) -> (1, 3, h, w) view.
        let out = hwc.permute([0, 3, 1, 2]);
        let _ = chw.upsample_bilinear2d_out(&out, [h, w], false, None, None);
        // (1, h, w, 3) -> (h, w, 3).
        hwc.get(0).to_kind(Kind::Uint8)
    } else {
        let resized = chw.upsample_bilinear2d([h, w], false, None, None);
        // (1, 3, h, w) -> (h, w, 3).
        resized
            .get(0)
            .permute([1, 2, 0])
            .to_kind(Kind::Uint8)
            .contiguous()
    }
}

/// A new contiguous float32 CPU tensor of `shape`, filled in place by `fill`, so the 60 MB of
/// clips of an image are written once instead of built in Rust and copied.
fn new_float_tensor(shape: &[usize], fill: impl FnOnce(&mut [f32])) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let out = Tensor::empty(dims.as_slice(), (Kind::Float, Device::Cpu));
    let n: usize = shape.iter().product();
    if n == 0 {
        return out;
    }
    assert!(out.is_contiguous() && out.numel() == n);
    // SAFETY: libtorch just allocated `out` as a contiguous float32 CPU tensor of exactly `n`
    // elements, so its data pointer is valid and aligned for `n` f32 writes; no other handle to
    // this storage exists while the slice lives (it ends before `out` is returned).
    let buf = unsafe { std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, n) };
    fill(buf);
    out
}
#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
