//! Mixup and CutMix on training batches, and the soft-target cross-entropy they are trained
//! with, as the reference's `Mixup` (tadaconv/datasets/utils/mixup.py, from timm) and
//! `SoftTargetCrossEntropy` (tadaconv/models/utils/losses.py).
//!
//! Each clip is mixed with the clip at the mirrored batch position (`B − 1 − i`), one λ for the
//! whole batch (`batch` mode), per clip (`elem`) or per mirrored pair (`pair`). Mixup blends the
//! clips, `λ·x + (1 − λ)·x_flipped`; CutMix pastes a box of the other clip into every frame and
//! sets λ to the share of the frame left uncovered. The targets are smoothed one-hot labels mixed
//! with the same λ. Drawing ([`Mixup::draw`]) is separate from applying ([`Mixup::apply`]) so
//! that a draw is plain data.

use rand::Rng;
use rand_distr::{Beta, Distribution};
use tch::{IndexOp, Kind, Tensor};

/// AUGMENTATION.MIXUP.MODE: how many λ a batch gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixupMode {
    /// One λ (and one CutMix box) for the whole batch.
    Batch,
    /// One per pair `(i, B − 1 − i)`, both clips of a pair mixed with each other.
    Pair,
    /// One per clip.
    Elem,
}

/// AUGMENTATION.MIXUP, with the field names of tada's config schema.
#[derive(Debug, Clone, PartialEq)]
pub struct MixupConfig {
    pub enable: bool,
    pub alpha: f64,
    pub prob: f64,
    pub mode: MixupMode,
    pub switch_prob: f64,
}

/// AUGMENTATION.CUTMIX, with the field names of tada's config schema.
#[derive(Debug, Clone, PartialEq)]
pub struct CutmixConfig {
    pub enable: bool,
    pub alpha: f64,
    pub minmax: Option<Vec<f64>>,
}

/// Everything [`Mixup`] reads: the two sections, AUGMENTATION.LABEL_SMOOTHING and
/// VIDEO.HEAD.NUM_CLASSES.
#[derive(Debug, Clone, PartialEq)]
pub struct MixConfig {
    pub mixup: MixupConfig,
    pub cutmix: CutmixConfig,
    pub label_smoothing: f64,
    pub num_classes: i64,
}

impl MixConfig {
    /// Whether training mixes batches at all (the reference builds its `Mixup` when either
    /// section is enabled).
    pub fn is_enabled(&self) -> bool {
        self.mixup.enable || self.cutmix.enable
    }
}

/// Why mixup/CutMix settings or inputs cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixupError {
    #[error("neither AUGMENTATION.MIXUP.ENABLE nor AUGMENTATION.CUTMIX.ENABLE is set")]
    NotEnabled,
    #[error(
        "mixup/CutMix is enabled but no alpha is positive: set AUGMENTATION.MIXUP.ALPHA, \
         AUGMENTATION.CUTMIX.ALPHA or AUGMENTATION.CUTMIX.MINMAX"
    )]
    NoAlpha,
    #[error("{key} must be a finite number >= 0, got {value}")]
    Alpha { key: &'static str, value: f64 },
    #[error("{key} must be in [0, 1], got {value}")]
    Prob { key: &'static str, value: f64 },
    #[error("AUGMENTATION.CUTMIX.MINMAX must be [min, max] with 0 <= min < max <= 1, got {0:?}")]
    Minmax(Vec<f64>),
    #[error("VIDEO.HEAD.NUM_CLASSES must be at least 1 for mixup targets, got {0}")]
    NumClasses(i64),
    #[error("AUGMENTATION.MIXUP.MODE pair needs an even batch, got {0} clips")]
    OddBatch(usize),
    #[error(
        "AUGMENTATION.CUTMIX.MINMAX {minmax:?} leaves no box size to draw on a {h}x{w} frame \
         (the reference's numpy randint raises here too)"
    )]
    MinmaxTooSmall { minmax: [f64; 2], h: i64, w: i64 },
    #[error("mixup input: {0}")]
    Input(String),
}

/// A Beta(α, α) distribution with its α (the replayed draws check which one was asked for).
#[derive(Debug, Clone)]
pub(crate) struct SymmetricBeta {
    pub(crate) alpha: f64,
    dist: Beta<f64>,
}

impl SymmetricBeta {
    /// None for an inactive kind (α = 0).
    fn new(alpha: f64) -> Option<Self> {
        let dist = Beta::new(alpha, alpha).ok().filter(|_| alpha > 0.0)?;
        Some(Self { alpha, dist })
    }
}

/// Which of the two are active (α > 0): at least one, by construction.
#[derive(Debug, Clone)]
enum Alphas {
    Mixup(SymmetricBeta),
    Cutmix(SymmetricBeta),
    Both {
        mixup: SymmetricBeta,
        cutmix: SymmetricBeta,
    },
}

/// The reference's numpy draws, so that a recorded sequence can stand in for an [`Rng`].
pub(crate) trait MixSource {
    /// `U[0, 1)` (numpy `rand`).
    fn unit(&mut self) -> f64;
    fn beta(&mut self, dist: &SymmetricBeta) -> f64;
    /// Uniform integer in `lo..hi` (numpy `randint`, high exclusive).
    fn randint(&mut self, lo: i64, hi: i64) -> i64;
}

pub(crate) struct RngSource<'a, R: Rng>(pub &'a mut R);

impl<R: Rng> MixSource for RngSource<'_, R> {
    fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    fn beta(&mut self, dist: &SymmetricBeta) -> f64 {
        dist.dist.sample(self.0)
    }

    fn randint(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.random_range(lo..hi)
    }
}

/// A CutMix box: rows `y0..y1` and columns `x0..x1` of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutBox {
    pub y0: i64,
    pub y1: i64,
    pub x0: i64,
    pub x1: i64,
}

impl CutBox {
    pub fn area(&self) -> i64 {
        (self.y1 - self.y0) * (self.x1 - self.x0)
    }

    fn fits(&self, h: i64, w: i64) -> bool {
        0 <= self.y0
            && self.y0 <= self.y1
            && self.y1 <= h
            && 0 <= self.x0
            && self.x0 <= self.x1
            && self.x1 <= w
    }
}

/// The draw for the whole batch (batch mode), one clip (elem) or one pair (pair).
#[derive(Debug, Clone, PartialEq)]
pub struct MixItem {
    /// λ as drawn from Beta(α, α); 1 when the PROB draw failed (not mixed). In elem and pair
    /// modes it is rounded to f32, as the reference keeps it in a float32 array.
    pub drawn_lam: f64,
    /// Whether CutMix rather than mixup was chosen (in elem/pair modes drawn for every item,
    /// mixed or not, as the reference does).
    pub cutmix: bool,
    /// The pasted box, for a mixed CutMix item.
    pub cut: Option<CutBox>,
    /// The weight of the item's own label: `drawn_lam`, or for CutMix `1 − box area / (H·W)`
    /// (the reference's `correct_lam`, always on); f32-rounded in elem and pair modes.
    pub lam: f64,
}

/// The random choices for one batch: one item (batch mode), `B` (elem) or `B / 2` (pair).
#[derive(Debug, Clone, PartialEq)]
pub struct MixDraw {
    pub mode: MixupMode,
    pub items: Vec<MixItem>,
}

/// Validated mixup/CutMix settings.
#[derive(Debug, Clone)]
pub struct Mixup {
    cfg: MixConfig,
    alphas: Alphas,
    minmax: Option<[f64; 2]>,
    reference_elem_axes: bool,
}

fn check_prob(key: &'static str, value: f64) -> Result<(), MixupError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(MixupError::Prob { key, value })
    }
}

impl Mixup {
    /// As the reference: MIXUP.ALPHA is used whenever mixing is on (MIXUP.ENABLE only decides,
    /// with CUTMIX.ENABLE, whether a batch is mixed at all); CUTMIX.ALPHA and MINMAX only when
    /// CUTMIX.ENABLE; a MINMAX forces the CutMix α to 1.
    pub fn new(cfg: MixConfig) -> Result<Self, MixupError> {
        if !cfg.is_enabled() {
            return Err(MixupError::NotEnabled);
        }
        for (key, value) in [
            ("AUGMENTATION.MIXUP.ALPHA", cfg.mixup.alpha),
            ("AUGMENTATION.CUTMIX.ALPHA", cfg.cutmix.alpha),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(MixupError::Alpha { key, value });
            }
        }
        check_prob("AUGMENTATION.MIXUP.PROB", cfg.mixup.prob)?;
        check_prob("AUGMENTATION.MIXUP.SWITCH_PROB", cfg.mixup.switch_prob)?;
        check_prob("AUGMENTATION.LABEL_SMOOTHING", cfg.label_smoothing)?;
        if cfg.num_classes < 1 {
            return Err(MixupError::NumClasses(cfg.num_classes));
        }
        let minmax = match (&cfg.cutmix.minmax, cfg.cutmix.enable) {
            (Some(m), true) => match m[..] {
                [lo, hi] if 0.0 <= lo && lo < hi && hi <= 1.0 => Some([lo, hi]),
                _ => return Err(MixupError::Minmax(m.clone())),
            },
            _ => None,
        };
        let cutmix_alpha = match (cfg.cutmix.enable, minmax) {
            (false, _) => 0.0,
            (true, Some(_)) => 1.0,
            (true, None) => cfg.cutmix.alpha,
        };
        let mixup = SymmetricBeta::new(cfg.mixup.alpha);
        let cutmix = SymmetricBeta::new(cutmix_alpha);
        let alphas = match (mixup, cutmix) {
            (Some(mixup), Some(cutmix)) => Alphas::Both { mixup, cutmix },
            (Some(m), None) => Alphas::Mixup(m),
            (None, Some(c)) => Alphas::Cutmix(c),
            (None, None) => return Err(MixupError::NoAlpha),
        };
        Ok(Self {
            cfg,
            alphas,
            minmax,
            reference_elem_axes: false,
        })
    }

    /// In elem and pair modes the reference pastes its CutMix box, drawn for the frame's
    /// (H, W), into `x[i][:, y0:y1, x0:x1]` of a (C, T, H, W) clip: the T and H axes
    /// (mixup.py:186 and 203-204). Off (the default), the box goes where it was drawn, on H
    /// and W; on, the reference's slicing is reproduced (for comparisons with it). Batch mode
    /// is unaffected.
    pub fn with_reference_elem_axes(mut self, on: bool) -> Self {
        self.reference_elem_axes = on;
        self
    }

    pub fn config(&self) -> &MixConfig {
        &self.cfg
    }

    /// The (mixup, CutMix) α in use, 0 for an inactive kind: CutMix's is 0 without
    /// CUTMIX.ENABLE and 1 with a MINMAX.
    pub fn alphas(&self) -> (f64, f64) {
        match &self.alphas {
            Alphas::Mixup(m) => (m.alpha, 0.0),
            Alphas::Cutmix(c) => (0.0, c.alpha),
            Alphas::Both { mixup, cutmix } => (mixup.alpha, cutmix.alpha),
        }
    }

    /// The λ(s), CutMix choices and boxes for a batch of `batch` clips of `h`×`w` frames.
    pub fn draw(
        &self,
        batch: usize,
        h: i64,
        w: i64,
        rng: &mut impl Rng,
    ) -> Result<MixDraw, MixupError> {
        self.draw_from(batch, h, w, &mut RngSource(rng))
    }

    /// The reference's draw order: see [`Self::params_per_batch`] and
    /// [`Self::params_per_elem`], then one box per mixed CutMix item, in item order.
    pub(crate) fn draw_from(
        &self,
        batch: usize,
        h: i64,
        w: i64,
        src: &mut impl MixSource,
    ) -> Result<MixDraw, MixupError> {
        if h < 1 || w < 1 {
            return Err(MixupError::Input(format!("empty {h}x{w} frames")));
        }
        if let Some(m) = self.minmax {
            let empty = |side: i64| (side as f64 * m[0]) as i64 >= (side as f64 * m[1]) as i64;
            if empty(h) || empty(w) {
                return Err(MixupError::MinmaxTooSmall { minmax: m, h, w });
            }
        }
        let mode = self.cfg.mixup.mode;
        let items = match mode {
            MixupMode::Batch => {
                let (drawn_lam, cutmix) = self.params_per_batch(src);
                let (cut, lam) = if drawn_lam != 1.0 && cutmix {
                    let (b, lam) = self.cut_box(h, w, CutPrecision::F64(drawn_lam), src);
                    (Some(b), lam)
                } else {
                    (None, drawn_lam)
                };
                vec![MixItem {
                    drawn_lam,
                    cutmix,
                    cut,
                    lam,
                }]
            }
            MixupMode::Elem | MixupMode::Pair => {
                if mode == MixupMode::Pair && batch % 2 == 1 {
                    return Err(MixupError::OddBatch(batch));
                }
                let n = if mode == MixupMode::Pair {
                    batch / 2
                } else {
                    batch
                };
                let (lams, cutmix) = self.params_per_elem(n, src);
                lams.into_iter()
                    .zip(cutmix)
                    .map(|(drawn, cutmix)| {
                        let (cut, lam) = if drawn != 1.0 && cutmix {
                            let (b, lam) = self.cut_box(h, w, CutPrecision::F32(drawn), src);
                            // Stored back into the float32 λ array.
                            (Some(b), lam as f32)
                        } else {
                            (None, drawn)
                        };
                        MixItem {
                            drawn_lam: drawn.into(),
                            cutmix,
                            cut,
                            lam: lam.into(),
                        }
                    })
                    .collect()
            }
        };
        Ok(MixDraw { mode, items })
    }

    /// One `U` against PROB; if it passes, one `U` against SWITCH_PROB when both kinds are
    /// active, then one Beta draw of the chosen kind.
    fn params_per_batch(&self, src: &mut impl MixSource) -> (f64, bool) {
        if src.unit() >= self.cfg.mixup.prob {
            return (1.0, false);
        }
        match &self.alphas {
            Alphas::Both { mixup, cutmix } => {
                if src.unit() < self.cfg.mixup.switch_prob {
                    (src.beta(cutmix), true)
                } else {
                    (src.beta(mixup), false)
                }
            }
            Alphas::Mixup(m) => (src.beta(m), false),
            Alphas::Cutmix(c) => (src.beta(c), true),
        }
    }

    /// numpy's vectorised order: `n` switch draws and `n` Beta draws of each kind when both are
    /// active (one kind otherwise), then `n` draws against PROB; λ rounded to f32.
    fn params_per_elem(&self, n: usize, src: &mut impl MixSource) -> (Vec<f32>, Vec<bool>) {
        let (cutmix, lam_mix) = match &self.alphas {
            Alphas::Both { mixup, cutmix } => {
                let switch: Vec<bool> = (0..n)
                    .map(|_| src.unit() < self.cfg.mixup.switch_prob)
                    .collect();
                let lc = betas(n, cutmix, src);
                let lm = betas(n, mixup, src);
                let lam = (0..n)
                    .map(|i| if switch[i] { lc[i] } else { lm[i] })
                    .collect();
                (switch, lam)
            }
            Alphas::Mixup(m) => (vec![false; n], betas(n, m, src)),
            Alphas::Cutmix(c) => (vec![true; n], betas(n, c, src)),
        };
        let lam = lam_mix
            .iter()
            .map(|&l| {
                if src.unit() < self.cfg.mixup.prob {
                    l as f32
                } else {
                    1.0
                }
            })
            .collect();
        (lam, cutmix)
    }

    /// A CutMix box and its corrected λ. With MINMAX: height and width drawn in
    /// `[⌊side·min⌋, ⌊side·max⌋)`, then the top-left corner. Otherwise a box of
    /// `⌊side·√(1 − λ)⌋` centred on a uniform point, each half `⌊cut / 2⌋` and clipped to the
    /// frame; the side arithmetic runs in f32 for elem/pair (numpy float32 λ) and f64 for batch.
    fn cut_box(
        &self,
        h: i64,
        w: i64,
        lam: CutPrecision,
        src: &mut impl MixSource,
    ) -> (CutBox, f64) {
        let b = if let Some([lo, hi]) = self.minmax {
            let cut_h = src.randint((h as f64 * lo) as i64, (h as f64 * hi) as i64);
            let cut_w = src.randint((w as f64 * lo) as i64, (w as f64 * hi) as i64);
            let y0 = src.randint(0, h - cut_h);
            let x0 = src.randint(0, w - cut_w);
            CutBox {
                y0,
                y1: y0 + cut_h,
                x0,
                x1: x0 + cut_w,
            }
        } else {
            let (cut_h, cut_w) = match lam {
                CutPrecision::F32(l) => {
                    let r = (1.0f32 - l).sqrt();
                    ((h as f32 * r) as i64, (w as f32 * r) as i64)
                }
                CutPrecision::F64(l) => {
                    let r = (1.0 - l).sqrt();
                    ((h as f64 * r) as i64, (w as f64 * r) as i64)
                }
            };
            let cy = src.randint(0, h);
            let cx = src.randint(0, w);
            CutBox {
                y0: (cy - cut_h / 2).clamp(0, h),
                y1: (cy + cut_h / 2).clamp(0, h),
                x0: (cx - cut_w / 2).clamp(0, w),
                x1: (cx + cut_w / 2).clamp(0, w),
            }
        };
        (b, 1.0 - b.area() as f64 / (h * w) as f64)
    }

    /// The mixed clips and their soft targets.
    ///
    /// # Shapes
    /// `x (B, C, T, H, W)` float, `labels (B)` int64 -> `((B, C, T, H, W), (B, NUM_CLASSES))`,
    /// the targets float32 on the labels' device.
    pub fn apply(
        &self,
        x: &Tensor,
        labels: &Tensor,
        draw: &MixDraw,
    ) -> Result<(Tensor, Tensor), MixupError> {
        let size = x.size();
        let [b, _c, t, h, w] = size[..] else {
            return Err(MixupError::Input(format!(
                "x must be (B, C, T, H, W), got {size:?}"
            )));
        };
        let k = self.cfg.num_classes;
        if b == 0
            || labels.size() != [b]
            || labels.min().int64_value(&[]) < 0
            || labels.max().int64_value(&[]) >= k
        {
            return Err(MixupError::Input(format!(
                "labels must be ({b}) in 0..{k}, got {labels:?}"
            )));
        }
        let items = match draw.mode {
            MixupMode::Batch => 1,
            MixupMode::Elem => b,
            MixupMode::Pair if b % 2 == 0 => b / 2,
            MixupMode::Pair => return Err(MixupError::OddBatch(b as usize)),
        };
        if draw.items.len() as i64 != items {
            return Err(MixupError::Input(format!(
                "a {:?} draw with {} items for a batch of {b}",
                draw.mode,
                draw.items.len()
            )));
        }
        if let Some(c) = draw
            .items
            .iter()
            .filter_map(|i| i.cut)
            .find(|c| !c.fits(h, w))
        {
            return Err(MixupError::Input(format!("{c:?} outside {h}x{w} frames")));
        }
        let mixed = match draw.mode {
            MixupMode::Batch => mix_batch(x, &draw.items[0]),
            MixupMode::Elem | MixupMode::Pair => self.mix_items(x, draw, t, h),
        };
        let target = self.targets(labels, self.cfg.num_classes, draw);
        Ok((mixed, target))
    }

    /// The soft targets of a batch mixed by `draw`, for `num_classes` classes: what
    /// [`Self::apply`] returns beside the clips, and, for a model with a second head (EPIC's
    /// noun), that head's targets under the same mixing (the reference mixes every head's
    /// labels by the batch's one λ).
    ///
    /// # Shapes
    /// `labels (B)` int64 -> `(B, num_classes)` float32 on the labels' device.
    pub fn targets(&self, labels: &Tensor, num_classes: i64, draw: &MixDraw) -> Tensor {
        let b = labels.size()[0];
        let y = smoothed_one_hot(labels, num_classes, self.cfg.label_smoothing);
        let y_flipped = y.flip([0]);
        match draw.mode {
            MixupMode::Batch => {
                let lam = draw.items[0].lam;
                &y * lam + &y_flipped * (1.0 - lam)
            }
            MixupMode::Elem | MixupMode::Pair => {
                let mut lams: Vec<f32> = draw.items.iter().map(|i| i.lam as f32).collect();
                if draw.mode == MixupMode::Pair {
                    // Clip B − 1 − i has pair i's λ.
                    lams.extend(draw.items.iter().rev().map(|i| i.lam as f32));
                }
                // (B,) -> (B, 1), broadcast over the classes; 1 − λ in f32 as the reference.
                let lam = Tensor::from_slice(&lams).view([b, 1]).to_device(y.device());
                &y * &lam + &y_flipped * (1.0 - &lam)
            }
        }
    }

    /// Elem and pair modes: clip `i` mixed with clip `B − 1 − i` of the unmixed batch (and, in
    /// pair mode, clip `B − 1 − i` with clip `i` by the same λ and box).
    fn mix_items(&self, x: &Tensor, draw: &MixDraw, t: i64, h: i64) -> Tensor {
        let b = x.size()[0];
        let out = x.copy();
        let pair = draw.mode == MixupMode::Pair;
        for (i, item) in draw.items.iter().enumerate() {
            let (i, j) = (i as i64, b - 1 - i as i64);
            if item.drawn_lam == 1.0 {
                continue;
            }
            let targets: &[(i64, i64)] = if pair { &[(i, j), (j, i)] } else { &[(i, j)] };
            for &(dst, src) in targets {
                let mut dst_clip = out.i(dst);
                let src_clip = x.i(src);
                match item.cut {
                    Some(c) => {
                        let region = |clip: &Tensor| {
                            if self.reference_elem_axes {
                                // The reference's x[i][:, y0:y1, x0:x1] on (C, T, H, W): rows
                                // index T and columns H, clipped as Python slices are.
                                clip.i((.., c.y0.min(t)..c.y1.min(t), c.x0.min(h)..c.x1.min(h)))
                            } else {
                                clip.i((.., .., c.y0..c.y1, c.x0..c.x1))
                            }
                        };
                        region(&dst_clip).copy_(&region(&src_clip));
                    }
                    None => {
                        // λ and 1 − λ in f32, as numpy computes them from the float32 array.
                        let l = item.drawn_lam as f32;
                        let blended = x.i(dst) * f64::from(l) + &src_clip * f64::from(1.0f32 - l);
                        dst_clip.copy_(&blended);
                    }
                }
            }
        }
        out
    }
}

fn betas(n: usize, dist: &SymmetricBeta, src: &mut impl MixSource) -> Vec<f64> {
    (0..n).map(|_| src.beta(dist)).collect()
}

#[derive(Debug, Clone, Copy)]
enum CutPrecision {
    F32(f32),
    F64(f64),
}

/// Batch mode: the whole batch blended with its flip, or the box pasted from it.
fn mix_batch(x: &Tensor, item: &MixItem) -> Tensor {
    if item.drawn_lam == 1.0 {
        return x.copy();
    }
    let flipped = x.flip([0]);
    match item.cut {
        Some(c) => {
            let out = x.copy();
            let region = |t: &Tensor| t.i((.., .., .., c.y0..c.y1, c.x0..c.x1));
            region(&out).copy_(&region(&flipped));
            out
        }
        None => x * item.drawn_lam + flipped * (1.0 - item.drawn_lam),
    }
}

/// One-hot targets with label smoothing `s`: `1 − s + s/K` at the label, `s/K` elsewhere.
///
/// # Shapes
/// `labels (B)` int64 -> `(B, K)` float32.
pub fn smoothed_one_hot(labels: &Tensor, num_classes: i64, smoothing: f64) -> Tensor {
    let off = smoothing / num_classes as f64;
    let on = 1.0 - smoothing + off;
    let n = labels.size()[0];
    // (B,) -> (B, 1): one index per row.
    let index = labels.to_kind(Kind::Int64).view([n, 1]);
    Tensor::full([n, num_classes], off, (Kind::Float, labels.device())).scatter_value(1, &index, on)
}

/// The reference's `SoftTargetCrossEntropy`: `mean_b Σ_k −target·log_softmax(logits)`.
///
/// # Shapes
/// `logits (B, K)`, `target (B, K)` -> scalar.
pub fn soft_target_cross_entropy(logits: &Tensor, target: &Tensor) -> Tensor {
    let per_clip =
        (-target * logits.log_softmax(-1, None::<Kind>)).sum_dim_intlist(-1, false, None::<Kind>);
    per_clip.mean(None::<Kind>)
}

#[cfg(test)]
#[path = "mixup_tests.rs"]
mod tests;
