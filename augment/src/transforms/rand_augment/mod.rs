//! RandAugment on video clips, equal to the reference's (`tadaconv/datasets/utils/auto_augment.py`,
//! timm's RandAugment on PIL images): a float `(3, T, H, W)` clip in [0, 1] is truncated to 8-bit
//! levels, `n` ops are chosen uniformly with replacement (or by weight, without), and each chosen
//! op is applied to every frame with one draw (fires with probability 0.5, magnitude noise, sign,
//! resample filter), so all frames get the same op sequence. The result goes back to float / 255.
//!
//! Drawing and applying are separate: [`RandAugment::draw`] makes every random choice as plain
//! data ([`RandAugmentDraw`]); [`RandAugment::apply`] runs it. The pixel arithmetic repeats
//! Pillow's C code operation by operation (libImaging `Geometry.c`, `Blend.c`, `Convert.c`,
//! `Filter.c`, `ImageOps`), so the output levels are PIL's to the bit (tested against golden
//! tensors of the reference, `tests/fixtures/rand_augment`).
//!
//! Deliberate differences from the reference under Pillow 13:
//! - posterize to fewer than 1 bit (PosterizeIncreasing at magnitude 10, Posterize under 2.5)
//!   gives a black image, as Pillow before 13 did; Pillow 13 raises `ValueError` there, which
//!   with `rand-m9-n4-mstd0.5-inc1` is about 0.3% of clips (4 layers · 1/15 · 0.5 · P(gauss(9,
//!   0.5) >= 10) = 0.0228).
//! - input values outside [0, 1] saturate at levels 0 and 255 (numpy's float -> uint8 cast is
//!   undefined there).

mod draw;
mod enhance;
mod geometry;
mod level;
mod pixel;

use tch::{Device, Kind, Tensor};

pub use draw::{LayerDraw, RandAugmentDraw};
pub use level::LevelArg;

/// Every op of the two RandAugment op lists, named as in the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    Posterize,
    PosterizeIncreasing,
    Solarize,
    SolarizeIncreasing,
    SolarizeAdd,
    Color,
    ColorIncreasing,
    Contrast,
    ContrastIncreasing,
    Brightness,
    BrightnessIncreasing,
    Sharpness,
    SharpnessIncreasing,
    ShearX,
    ShearY,
    TranslateXRel,
    TranslateYRel,
}

impl OpKind {
    /// Every op, in declaration order.
    pub const ALL: [OpKind; 21] = [
        OpKind::AutoContrast,
        OpKind::Equalize,
        OpKind::Invert,
        OpKind::Rotate,
        OpKind::Posterize,
        OpKind::PosterizeIncreasing,
        OpKind::Solarize,
        OpKind::SolarizeIncreasing,
        OpKind::SolarizeAdd,
        OpKind::Color,
        OpKind::ColorIncreasing,
        OpKind::Contrast,
        OpKind::ContrastIncreasing,
        OpKind::Brightness,
        OpKind::BrightnessIncreasing,
        OpKind::Sharpness,
        OpKind::SharpnessIncreasing,
        OpKind::ShearX,
        OpKind::ShearY,
        OpKind::TranslateXRel,
        OpKind::TranslateYRel,
    ];

    /// The reference's name of the op.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::AutoContrast => "AutoContrast",
            OpKind::Equalize => "Equalize",
            OpKind::Invert => "Invert",
            OpKind::Rotate => "Rotate",
            OpKind::Posterize => "Posterize",
            OpKind::PosterizeIncreasing => "PosterizeIncreasing",
            OpKind::Solarize => "Solarize",
            OpKind::SolarizeIncreasing => "SolarizeIncreasing",
            OpKind::SolarizeAdd => "SolarizeAdd",
            OpKind::Color => "Color",
            OpKind::ColorIncreasing => "ColorIncreasing",
            OpKind::Contrast => "Contrast",
            OpKind::ContrastIncreasing => "ContrastIncreasing",
            OpKind::Brightness => "Brightness",
            OpKind::BrightnessIncreasing => "BrightnessIncreasing",
            OpKind::Sharpness => "Sharpness",
            OpKind::SharpnessIncreasing => "SharpnessIncreasing",
            OpKind::ShearX => "ShearX",
            OpKind::ShearY => "ShearY",
            OpKind::TranslateXRel => "TranslateXRel",
            OpKind::TranslateYRel => "TranslateYRel",
        }
    }

    /// The op of a reference name.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Whether the op's level function draws a random sign.
    pub fn signed(self) -> bool {
        self.geometric()
            || matches!(
                self,
                OpKind::ColorIncreasing
                    | OpKind::ContrastIncreasing
                    | OpKind::BrightnessIncreasing
                    | OpKind::SharpnessIncreasing
            )
    }

    /// Whether the op resamples (and so takes the filter and the fill colour).
    pub fn geometric(self) -> bool {
        matches!(
            self,
            OpKind::Rotate
                | OpKind::ShearX
                | OpKind::ShearY
                | OpKind::TranslateXRel
                | OpKind::TranslateYRel
        )
    }
}

/// The op list of `rand-…` without `inc` (the reference's `_RAND_TRANSFORMS`).
pub const RAND_OPS: [OpKind; 15] = [
    OpKind::AutoContrast,
    OpKind::Equalize,
    OpKind::Invert,
    OpKind::Rotate,
    OpKind::Posterize,
    OpKind::Solarize,
    OpKind::SolarizeAdd,
    OpKind::Color,
    OpKind::Contrast,
    OpKind::Brightness,
    OpKind::Sharpness,
    OpKind::ShearX,
    OpKind::ShearY,
    OpKind::TranslateXRel,
    OpKind::TranslateYRel,
];

/// The op list of `rand-…-inc1` (`_RAND_INCREASING_TRANSFORMS`): severity grows with magnitude.
pub const RAND_INCREASING_OPS: [OpKind; 15] = [
    OpKind::AutoContrast,
    OpKind::Equalize,
    OpKind::Invert,
    OpKind::Rotate,
    OpKind::PosterizeIncreasing,
    OpKind::SolarizeIncreasing,
    OpKind::SolarizeAdd,
    OpKind::ColorIncreasing,
    OpKind::ContrastIncreasing,
    OpKind::BrightnessIncreasing,
    OpKind::SharpnessIncreasing,
    OpKind::ShearX,
    OpKind::ShearY,
    OpKind::TranslateXRel,
    OpKind::TranslateYRel,
];

/// Choice weights of `w0` (`_RAND_CHOICE_WEIGHTS_0`), by position in either op list: the
/// reference looks them up with the names of [`RAND_OPS`] even for the increasing list.
const CHOICE_WEIGHTS_0: [f64; 15] = [
    0.025, 0.005, 0.0, 0.3, 0.0, 0.005, 0.005, 0.025, 0.005, 0.005, 0.025, 0.2, 0.2, 0.1, 0.1,
];

/// PIL's resampling filter for the geometric ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    Bilinear,
    Bicubic,
}

/// How the magnitude of a fired op is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MagnitudeNoise {
    /// The configured magnitude (`mstd0`, or no `mstd`).
    Fixed,
    /// `gauss(m, std)` (`mstd` in (0, 100]).
    Gauss(f64),
    /// `uniform(0, m)` (`mstd` above 100: the reference's infinite std).
    Uniform,
}

/// A parsed RandAugment spec with the fill colour of the crop's mean.
#[derive(Debug, Clone, PartialEq)]
pub struct RandAugment {
    /// The ops to choose from.
    pub ops: Vec<OpKind>,
    /// How many ops are chosen per clip (`n`, default 2).
    pub num_layers: usize,
    /// `m` (default 10).
    pub magnitude: f64,
    pub noise: MagnitudeNoise,
    /// Upper clip of a drawn magnitude: `mmax`, 10 when absent or 0.
    pub magnitude_max: f64,
    /// `w0`: choice probabilities per op, chosen without replacement; `None`: uniform with.
    pub weights: Option<Vec<f64>>,
    /// Colour of pixels a geometric op brings in: `round(255 * mean)` per channel.
    pub fill: [u8; 3],
    /// `creat_auto_augmentation` fixes bicubic; without it the reference draws per frame.
    pub resample: Resample,
}

/// Why a spec or a clip was refused.
#[derive(Debug, thiserror::Error)]
pub enum RandAugmentError {
    #[error("RandAugment spec {spec:?} does not start with \"rand\"")]
    NotRand { spec: String },
    #[error("unknown RandAugment config section {section:?} in {spec:?}")]
    UnknownSection { section: String, spec: String },
    #[error("RandAugment config section {section:?} in {spec:?} has no valid number")]
    BadValue { section: String, spec: String },
    #[error("RandAugment weight set {index} in {spec:?} does not exist (only w0)")]
    UnknownWeights { index: i64, spec: String },
    #[error("RandAugment spec {spec:?} chooses {n} ops without replacement from {available}")]
    TooManyLayers {
        n: usize,
        available: usize,
        spec: String,
    },
    #[error("RandAugment needs a (3, T, H, W) clip, got {0:?}")]
    BadClip(Vec<i64>),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// The reference's magnitude scale: level arguments are `magnitude / 10` of their range.
pub(crate) const LEVEL_DENOM: f64 = 10.0;

impl RandAugment {
    /// Parses `rand-m9-n4-mstd0.5-inc1` as `creat_auto_augmentation(spec, img_size, mean)`:
    /// sections `m` (int), `n` (int), `w` (int, only 0), `mstd` (float; above 100 uniform), `mmax`
    /// (int), `inc`. Like the reference, a section without a digit is skipped, `mstd`/`mmax`
    /// keep their first value and the others their last, and `inc` with any value (`inc0` too,
    /// the reference tests the string's truth) selects the increasing op list. `img_size` sets
    /// the reference's `translate_const`, which only the absolute translations (in neither op
    /// list) read, so it is unused here.
    pub fn parse(spec: &str, img_size: i64, mean: [f64; 3]) -> Result<Self, RandAugmentError> {
        let _ = img_size;
        let mut sections = spec.split('-');
        if sections.next() != Some("rand") {
            return Err(RandAugmentError::NotRand { spec: spec.into() });
        }
        let mut out = RandAugment {
            ops: RAND_OPS.to_vec(),
            num_layers: 2,
            magnitude: LEVEL_DENOM,
            noise: MagnitudeNoise::Fixed,
            magnitude_max: LEVEL_DENOM,
            weights: None,
            // Python's round() is half to even.
            fill: mean.map(|m| (255.0 * m).round_ties_even().clamp(0.0, 255.0) as u8),
            resample: Resample::Bicubic,
        };
        let (mut mstd, mut mmax) = (None, None);
        for section in sections {
            // The reference splits at the first digit; a section without one is skipped.
            let Some(at) = section.find(|c: char| c.is_ascii_digit()) else {
                continue;
            };
            let (key, val) = section.split_at(at);
            let bad = || RandAugmentError::BadValue {
                section: section.into(),
                spec: spec.into(),
            };
            let int = || val.parse::<i64>().map_err(|_| bad());
            match key {
                "mstd" => {
                    let v = val.parse::<f64>().map_err(|_| bad())?;
                    mstd.get_or_insert(v);
                }
                "mmax" => {
                    let v = int()?;
                    mmax.get_or_insert(v);
                }
                "inc" => out.ops = RAND_INCREASING_OPS.to_vec(),
                "m" => out.magnitude = int()? as f64,
                "n" => out.num_layers = usize::try_from(int()?).map_err(|_| bad())?,
                "w" => {
                    let index = int()?;
                    if index != 0 {
                        return Err(RandAugmentError::UnknownWeights {
                            index,
                            spec: spec.into(),
                        });
                    }
                    out.weights = Some(CHOICE_WEIGHTS_0.to_vec());
                }
                _ => {
                    return Err(RandAugmentError::UnknownSection {
                        section: section.into(),
                        spec: spec.into(),
                    })
                }
            }
        }
        out.finish(mstd, mmax, spec)
    }

    /// The magnitude noise and bound of the parsed `mstd` and `mmax`, and the check that a
    /// weighted choice has enough ops.
    fn finish(
        mut self,
        mstd: Option<f64>,
        mmax: Option<i64>,
        spec: &str,
    ) -> Result<Self, RandAugmentError> {
        self.noise = match mstd {
            Some(s) if s > 100.0 => MagnitudeNoise::Uniform,
            Some(s) if s > 0.0 => MagnitudeNoise::Gauss(s),
            _ => MagnitudeNoise::Fixed,
        };
        // `magnitude_max or 10`: an mmax of 0 falls back to 10.
        self.magnitude_max = match mmax {
            Some(m) if m != 0 => m as f64,
            _ => LEVEL_DENOM,
        };
        if let Some(w) = &self.weights {
            // numpy refuses to choose more distinct ops than have a non-zero weight.
            let available = w.iter().filter(|&&p| p > 0.0).count();
            if self.num_layers > available {
                return Err(RandAugmentError::TooManyLayers {
                    n: self.num_layers,
                    available,
                    spec: spec.into(),
                });
            }
        }
        Ok(self)
    }

    /// A fresh draw applied to `clip`: what the clip pipeline runs per training clip.
    pub fn augment(
        &self,
        clip: &Tensor,
        rng: &mut impl rand::Rng,
    ) -> Result<Tensor, RandAugmentError> {
        self.apply(clip, &self.draw(rng))
    }

    /// Applies a draw to a `(3, T, H, W)` float clip in [0, 1] (any device): levels are
    /// `trunc(255 x)`, every fired op runs on every frame, the result is `levels / 255`.
    ///
    /// # Shapes
    /// `clip`: `(3, T, H, W)`; returns the same shape, float, on the clip's device.
    pub fn apply(&self, clip: &Tensor, draw: &RandAugmentDraw) -> Result<Tensor, RandAugmentError> {
        let size = clip.size();
        if size.len() != 4 || size[0] != 3 {
            return Err(RandAugmentError::BadClip(size));
        }
        let (t, h, w) = (size[1] as usize, size[2] as usize, size[3] as usize);
        let x = clip
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            // (3, T, H, W) -> (3·T·H·W).
            .view([-1]);
        let src = Vec::<f32>::try_from(&x)?;
        // The reference multiplies in float32 and casts to uint8, which truncates.
        let mut levels: Vec<u8> = src
            .iter()
            .map(|&v| (v * 255.0).clamp(0.0, 255.0) as i32 as u8)
            .collect();
        drop(src);
        self.apply_levels(&mut levels, t, h, w, draw);
        // levels / 255 in float32, as the reference divides; a table of the 256 quotients.
        let quotient: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
        let out: Vec<f32> = levels.iter().map(|&v| quotient[v as usize]).collect();
        // (3·T·H·W) -> (3, T, H, W).
        Ok(Tensor::from_slice(&out)
            .view([3, size[1], size[2], size[3]])
            .to_device(clip.device()))
    }

    /// [`apply`](Self::apply) on 8-bit levels, in place.
    ///
    /// # Shapes
    /// `levels`: `3·T·H·W` values, channel-major `(3, T, H, W)`.
    fn apply_levels(
        &self,
        levels: &mut [u8],
        t: usize,
        h: usize,
        w: usize,
        draw: &RandAugmentDraw,
    ) {
        debug_assert_eq!(levels.len(), 3 * t * h * w);
        let mut clip = Clip { levels, t, h, w };
        for layer in draw.layers.iter().filter(|l| l.fired) {
            apply_op(&mut clip, layer, self.fill);
        }
    }
}

/// A `(3, T, H, W)` clip of 8-bit levels.
pub(crate) struct Clip<'a> {
    pub levels: &'a mut [u8],
    pub t: usize,
    pub h: usize,
    pub w: usize,
}

impl Clip<'_> {
    /// The three channel planes (`H·W` each) of frame `f`.
    pub fn frame(&mut self, f: usize) -> [&mut [u8]; 3] {
        let hw = self.h * self.w;
        let n = self.t * hw;
        let (r, gb) = self.levels.split_at_mut(n);
        let (g, b) = gb.split_at_mut(n);
        let at = f * hw..(f + 1) * hw;
        [&mut r[at.clone()], &mut g[at.clone()], &mut b[at]]
    }

    /// Every `H·W` plane: channel-major, frame-minor.
    pub fn planes(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        let hw = self.h * self.w;
        self.levels.chunks_exact_mut(hw.max(1))
    }
}

/// One fired op on every frame.
fn apply_op(clip: &mut Clip, layer: &LayerDraw, fill: [u8; 3]) {
    use LevelArg::{Float, Int};
    let arg = layer.level_arg();
    match (layer.op, arg) {
        (OpKind::AutoContrast, _) => pixel::autocontrast(clip),
        (OpKind::Equalize, _) => pixel::equalize(clip),
        (OpKind::Invert, _) => pixel::invert(clip),
        (OpKind::Posterize | OpKind::PosterizeIncreasing, Int(bits)) => {
            pixel::posterize(clip, bits)
        }
        (OpKind::Solarize | OpKind::SolarizeIncreasing, Int(thresh)) => {
            pixel::solarize(clip, thresh)
        }
        (OpKind::SolarizeAdd, Int(add)) => pixel::solarize_add(clip, add),
        (OpKind::Color | OpKind::ColorIncreasing, Float(f)) => enhance::color(clip, f),
        (OpKind::Contrast | OpKind::ContrastIncreasing, Float(f)) => enhance::contrast(clip, f),
        (OpKind::Brightness | OpKind::BrightnessIncreasing, Float(f)) => {
            enhance::brightness(clip, f)
        }
        (OpKind::Sharpness | OpKind::SharpnessIncreasing, Float(f)) => enhance::sharpness(clip, f),
        (OpKind::Rotate, Float(deg)) => geometry::rotate(clip, deg, layer.resample, fill),
        (OpKind::ShearX, Float(f)) => {
            geometry::affine(clip, [1.0, f, 0.0, 0.0, 1.0, 0.0], layer.resample, fill)
        }
        (OpKind::ShearY, Float(f)) => {
            geometry::affine(clip, [1.0, 0.0, 0.0, f, 1.0, 0.0], layer.resample, fill)
        }
        (OpKind::TranslateXRel, Float(pct)) => {
            let px = pct * clip.w as f64;
            geometry::affine(clip, [1.0, 0.0, px, 0.0, 1.0, 0.0], layer.resample, fill)
        }
        (OpKind::TranslateYRel, Float(pct)) => {
            let px = pct * clip.h as f64;
            geometry::affine(clip, [1.0, 0.0, 0.0, 0.0, 1.0, px], layer.resample, fill)
        }
        (op, arg) => unreachable!("level::level_arg gives {op:?} no {arg:?}"),
    }
}

#[cfg(test)]
mod tests;
