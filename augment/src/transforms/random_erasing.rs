//! Random erasing of normalised clips, as the reference's `RandomErasing`
//! (tadaconv/datasets/utils/random_erasing.py, from timm): with probability PROB, 1 to COUNT
//! boxes per clip, each covering `U(AREA_RANGE) / count` of a frame with a log-uniform aspect
//! ratio in `[MIN_ASPECT, 1 / MIN_ASPECT]`, the same box on every frame, filled with zeros, one
//! normal value per channel, or normal noise per element.
//!
//! Drawing ([`RandomErasing::draw`]) is separate from applying ([`RandomErasing::apply`]) so that
//! a draw is plain data: the tests rebuild the reference's recorded draws and apply them.

use rand::Rng;
use rand_distr::StandardNormal;
use tch::{IndexOp, Tensor};

/// AUGMENTATION.RANDOM_ERASING.MODE: what an erased box is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomErasingMode {
    /// Zeros (the normalised mean).
    Const,
    /// One standard-normal value per channel, the same over the box and the frames.
    Rand,
    /// A standard-normal value per element of the box.
    Pixel,
}

/// AUGMENTATION.RANDOM_ERASING, with the field names of tada's config schema.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomErasingConfig {
    pub enable: bool,
    pub prob: f64,
    pub mode: RandomErasingMode,
    /// `[min, max]` boxes per clip, both inclusive.
    pub count: Vec<u32>,
    /// For a batch: the first `B / num_splits` clips stay clean when `num_splits > 1`.
    pub num_splits: u32,
    /// `[min, max]` fraction of the frame area covered by all boxes together.
    pub area_range: Vec<f64>,
    pub min_aspect: f64,
}

/// A RANDOM_ERASING value that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RandomErasingError {
    #[error("AUGMENTATION.RANDOM_ERASING.PROB must be in [0, 1], got {0}")]
    Prob(f64),
    #[error("AUGMENTATION.RANDOM_ERASING.COUNT must be [min, max] with min <= max, got {0:?}")]
    Count(Vec<u32>),
    #[error(
        "AUGMENTATION.RANDOM_ERASING.AREA_RANGE must be [min, max] with 0 <= min <= max, got {0:?}"
    )]
    AreaRange(Vec<f64>),
    #[error("AUGMENTATION.RANDOM_ERASING.MIN_ASPECT must be a positive number, got {0}")]
    MinAspect(f64),
}

/// The values written into one box.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    Zero,
    /// `C` values.
    Channel(Vec<f32>),
    /// `C·T·height·width` values in `(C, T, height, width)` order.
    Pixel(Vec<f32>),
}

/// One erased box: rows `top..top + height`, columns `left..left + width` of every frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasedBox {
    pub top: i64,
    pub left: i64,
    pub height: i64,
    pub width: i64,
    pub fill: Fill,
}

/// The random choices for one clip.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErasingDraw {
    /// Whether the PROB draw passed (false also when erasing is disabled or the clip is kept
    /// clean by NUM_SPLITS).
    pub applied: bool,
    /// Boxes asked for (0 when not applied); a box whose 10 attempts all failed is missing from
    /// `boxes`.
    pub count: u32,
    pub boxes: Vec<ErasedBox>,
}

/// The reference's draw sequence, so that a recorded sequence can stand in for an [`Rng`].
pub(crate) trait ErasingSource {
    /// `U[0, 1)`.
    fn unit(&mut self) -> f64;
    /// Uniform integer in `lo..=hi`.
    fn int_inclusive(&mut self, lo: i64, hi: i64) -> i64;
    /// `lo + (hi − lo)·U[0, 1)`, as Python's `random.uniform`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64;
    /// The fill of a `(c, t, h, w)` box.
    fn fill(&mut self, mode: RandomErasingMode, shape: [i64; 4]) -> Fill;
}

/// An [`Rng`] as an [`ErasingSource`].
pub(crate) struct RngSource<'a, R: Rng>(pub &'a mut R);

impl<R: Rng> ErasingSource for RngSource<'_, R> {
    fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    fn int_inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.random_range(lo..=hi)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.0.random::<f64>()
    }

    fn fill(&mut self, mode: RandomErasingMode, [c, t, h, w]: [i64; 4]) -> Fill {
        let mut normals = |n: i64| {
            (0..n)
                .map(|_| self.0.sample::<f32, _>(StandardNormal))
                .collect()
        };
        match mode {
            RandomErasingMode::Const => Fill::Zero,
            RandomErasingMode::Rand => Fill::Channel(normals(c)),
            RandomErasingMode::Pixel => Fill::Pixel(normals(c * t * h * w)),
        }
    }
}

/// Validated RANDOM_ERASING settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomErasing {
    cfg: RandomErasingConfig,
    count: (u32, u32),
    area: (f64, f64),
    /// `(ln MIN_ASPECT, ln 1/MIN_ASPECT)`.
    log_aspect: (f64, f64),
}

impl RandomErasing {
    pub fn new(cfg: RandomErasingConfig) -> Result<Self, RandomErasingError> {
        if !(0.0..=1.0).contains(&cfg.prob) {
            return Err(RandomErasingError::Prob(cfg.prob));
        }
        let count = match cfg.count[..] {
            [lo, hi] if lo <= hi => (lo, hi),
            _ => return Err(RandomErasingError::Count(cfg.count.clone())),
        };
        let area = match cfg.area_range[..] {
            [lo, hi] if lo >= 0.0 && lo <= hi && hi.is_finite() => (lo, hi),
            _ => return Err(RandomErasingError::AreaRange(cfg.area_range.clone())),
        };
        if !(cfg.min_aspect > 0.0 && cfg.min_aspect.is_finite()) {
            return Err(RandomErasingError::MinAspect(cfg.min_aspect));
        }
        let log_aspect = (cfg.min_aspect.ln(), (1.0 / cfg.min_aspect).ln());
        Ok(Self {
            cfg,
            count,
            area,
            log_aspect,
        })
    }

    pub fn config(&self) -> &RandomErasingConfig {
        &self.cfg
    }

    /// The boxes and fills for one `(c, t, h, w)` clip.
    pub fn draw(&self, c: i64, t: i64, h: i64, w: i64, rng: &mut impl Rng) -> ErasingDraw {
        self.draw_from([c, t, h, w], &mut RngSource(rng))
    }

    /// One draw per clip of a `(b, c, t, h, w)` batch, the first `b / NUM_SPLITS` clips left
    /// clean when NUM_SPLITS > 1 (the reference's "clean portion" for split batches).
    pub fn draw_batch(
        &self,
        b: i64,
        c: i64,
        t: i64,
        h: i64,
        w: i64,
        rng: &mut impl Rng,
    ) -> Vec<ErasingDraw> {
        let mut source = RngSource(rng);
        let start = self.batch_start(b);
        (0..b)
            .map(|i| {
                if i < start {
                    ErasingDraw::default()
                } else {
                    self.draw_from([c, t, h, w], &mut source)
                }
            })
            .collect()
    }

    /// Index of the first clip of a batch of `b` that is erased.
    pub fn batch_start(&self, b: i64) -> i64 {
        if self.cfg.num_splits > 1 {
            b / self.cfg.num_splits as i64
        } else {
            0
        }
    }

    /// The draw sequence of the reference's `_erase`: the PROB test, the count (drawn only when
    /// min < max), then per box up to 10 (area, aspect) attempts until the box fits strictly
    /// inside the frame, its position, and its fill.
    pub(crate) fn draw_from(
        &self,
        [c, t, h, w]: [i64; 4],
        src: &mut impl ErasingSource,
    ) -> ErasingDraw {
        if !self.cfg.enable || src.unit() > self.cfg.prob {
            return ErasingDraw::default();
        }
        let (lo, hi) = self.count;
        let count = if lo == hi {
            lo
        } else {
            src.int_inclusive(lo.into(), hi.into()) as u32
        };
        let area = (h * w) as f64;
        let mut boxes = Vec::new();
        for _ in 0..count {
            for _attempt in 0..10 {
                let target = src.uniform(self.area.0, self.area.1) * area / count as f64;
                let aspect = src.uniform(self.log_aspect.0, self.log_aspect.1).exp();
                // Python's round() rounds halves to even.
                let bh = (target * aspect).sqrt().round_ties_even() as i64;
                let bw = (target / aspect).sqrt().round_ties_even() as i64;
                if bw < w && bh < h {
                    let top = src.int_inclusive(0, h - bh);
                    let left = src.int_inclusive(0, w - bw);
                    let fill = src.fill(self.cfg.mode, [c, t, bh, bw]);
                    boxes.push(ErasedBox {
                        top,
                        left,
                        height: bh,
                        width: bw,
                        fill,
                    });
                    break;
                }
            }
        }
        ErasingDraw {
            applied: true,
            count,
            boxes,
        }
    }

    /// The clip with the drawn boxes erased; later boxes overwrite earlier ones where they
    /// overlap, as in the reference.
    ///
    /// # Shapes
    /// `(C, T, H, W)` -> `(C, T, H, W)`, any float kind and device.
    ///
    /// # Panics
    /// If a box does not fit the clip or its fill has the wrong length (a draw made for a clip
    /// of another shape).
    pub fn apply(&self, clip: &Tensor, draw: &ErasingDraw) -> Tensor {
        let mut out = clip.copy();
        erase_in_place(&mut out, draw);
        out
    }

    /// A draw for `clip` applied to it in place: the per-sample step of the clip pipeline, which
    /// owns the freshly normalised clip and so needs no copy.
    ///
    /// # Shapes
    /// `(C, T, H, W)` -> `(C, T, H, W)`.
    pub fn erase(&self, mut clip: Tensor, rng: &mut impl Rng) -> Tensor {
        let s = clip.size();
        let draw = self.draw(s[0], s[1], s[2], s[3], rng);
        erase_in_place(&mut clip, &draw);
        clip
    }

    /// [`apply`](Self::apply) on every clip of a batch with the draws of
    /// [`draw_batch`](Self::draw_batch).
    ///
    /// # Shapes
    /// `(B, C, T, H, W)` -> `(B, C, T, H, W)`.
    ///
    /// # Panics
    /// If `draws` does not have one entry per clip, or as [`apply`](Self::apply).
    pub fn apply_batch(&self, batch: &Tensor, draws: &[ErasingDraw]) -> Tensor {
        let b = batch.size()[0];
        assert_eq!(b as usize, draws.len(), "one erasing draw per clip");
        let out = batch.copy();
        for (i, draw) in draws.iter().enumerate() {
            // A view into `out`: erasing it writes into the batch.
            let mut clip = out.i(i as i64);
            erase_in_place(&mut clip, draw);
        }
        out
    }
}

fn erase_in_place(clip: &mut Tensor, draw: &ErasingDraw) {
    let size = clip.size();
    let (c, t) = (size[0], size[1]);
    for b in &draw.boxes {
        let mut region = clip.i((.., .., b.top..b.top + b.height, b.left..b.left + b.width));
        match &b.fill {
            Fill::Zero => {
                let _ = region.fill_(0.0);
            }
            Fill::Channel(v) => {
                // (C,) -> (C, 1, 1, 1), broadcast over frames and the box.
                let src = Tensor::from_slice(v).view([c, 1, 1, 1]);
                region.copy_(&src.to_kind(clip.kind()).to_device(clip.device()));
            }
            Fill::Pixel(v) => {
                // (C·T·h·w,) -> (C, T, h, w).
                let src = Tensor::from_slice(v).view([c, t, b.height, b.width]);
                region.copy_(&src.to_kind(clip.kind()).to_device(clip.device()));
            }
        }
    }
}

#[cfg(test)]
#[path = "random_erasing_tests.rs"]
pub(crate) mod tests;
