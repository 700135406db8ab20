//! The Slowfast meta-architecture (Feichtenhofer et al., "SlowFast networks for video
//! recognition"): a slow pathway on every ALPHA-th frame and a fast pathway BETA times thinner
//! on every frame, both ResNets (`slow_conv1 … slow_conv5`, `fast_conv1 … fast_conv5`), with a
//! lateral fusion `slowfast_fusion{k}` after the stem and each of the first three stages.
//!
//! The reference's dataset hands the model the two clips; here the backbone takes the fast
//! clip and picks the slow frames itself with the same rule (see [`slow_frame_indices`]), so
//! every data pipeline feeds it unchanged.

mod fusion;

#[cfg(test)]
mod tests;

use tch::nn;
use tch::{Kind, Tensor};

use crate::config::schema::{BackboneConfig, BnConfig, KernelSizes, SlowFastMode};
use crate::models::backbones::resnet3d::{ConvInit, ResNetSpec, ResStage, Stem, NUM_LEVELS};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

pub use fusion::{FuseFastToSlow, FusionSpec};

const KEY_ALPHA: &str = "VIDEO.BACKBONE.SLOWFAST.ALPHA";
const KEY_BETA: &str = "VIDEO.BACKBONE.SLOWFAST.BETA";
const KEY_RATIO: &str = "VIDEO.BACKBONE.SLOWFAST.CONV_CHANNEL_RATIO";
const KEY_FUSION_KERNEL: &str = "VIDEO.BACKBONE.SLOWFAST.KERNEL_SIZE";
const KEY_FUSION_BIAS: &str = "VIDEO.BACKBONE.SLOWFAST.FUSION_CONV_BIAS";
const KEY_FUSION_BN: &str = "VIDEO.BACKBONE.SLOWFAST.FUSION_BN";
const KEY_FUSION_RELU: &str = "VIDEO.BACKBONE.SLOWFAST.FUSION_RELU";
const KEY_KERNEL: &str = "VIDEO.BACKBONE.KERNEL_SIZE";
const KEY_FILTERS: &str = "VIDEO.BACKBONE.NUM_FILTERS";
const KEY_TEMPORAL_BOTTLENECK: &str = "VIDEO.BACKBONE.TEMPORAL_CONV_BOTTLENECK";
const NEEDED_BY: &str = "the Slowfast backbone";

/// The frames of a `t`-frame clip the slow pathway sees, as the reference's dataset picks
/// them: `linspace(0, t, t / alpha + 1)` in float32, truncated, the last entry dropped.
///
/// # Shapes
/// -> (t / alpha) indices.
pub fn slow_frame_indices(t: i64, alpha: i64, device: tch::Device) -> Tensor {
    let steps = t / alpha + 1;
    // linspace(0, t, steps) -> (steps,) -> the first steps - 1
    Tensor::linspace(0.0, t as f64, steps, (Kind::Float, device))
        .to_kind(Kind::Int64)
        .narrow(0, 0, steps - 1)
}

/// The SLOWFAST section and the per-pathway lists, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowFastSpec {
    pub mode: SlowFastMode,
    pub alpha: i64,
    pub beta: i64,
    pub fusion: FusionSpec,
    /// The slow pathway's ResNet (NUM_FILTERS as given, fusion channels on its stage inputs
    /// when the fast pathway is built) and the fast one's (NUM_FILTERS / BETA).
    pub slow: ResNetSpec,
    pub fast: ResNetSpec,
}

fn flag(key: &str, v: Option<bool>) -> Result<bool, ModelError> {
    v.ok_or_else(|| ModelError::missing(key, NEEDED_BY))
}

impl SlowFastSpec {
    pub fn from_config(b: &BackboneConfig, bn: &BnConfig) -> Result<Self, ModelError> {
        let sf = &b.slowfast;
        let alpha = ModelError::positive(KEY_ALPHA, sf.alpha, NEEDED_BY)?;
        let beta = ModelError::positive(KEY_BETA, sf.beta, NEEDED_BY)?;
        let channel_ratio = ModelError::positive(KEY_RATIO, sf.conv_channel_ratio, NEEDED_BY)?;
        let kernel = ModelError::positive(KEY_FUSION_KERNEL, sf.kernel_size, NEEDED_BY)?;
        let kernels =
            match &b.kernel_size {
                Some(KernelSizes::PerPathway(v)) if v.len() == 2 => v,
                Some(_) => return Err(ModelError::invalid(
                    KEY_KERNEL,
                    "Slowfast takes two per-level lists of [t, h, w] triples, slow pathway first",
                )),
                None => return Err(ModelError::missing(KEY_KERNEL, NEEDED_BY)),
            };
        let temporal = b
            .temporal_conv_bottleneck
            .as_ref()
            .ok_or_else(|| ModelError::missing(KEY_TEMPORAL_BOTTLENECK, NEEDED_BY))?;
        let temporal: Vec<[bool; NUM_LEVELS]> = temporal
            .iter()
            .filter_map(|v| <[bool; NUM_LEVELS]>::try_from(v.as_slice()).ok())
            .collect();
        if temporal.len() != 2 || b.temporal_conv_bottleneck.as_ref().map(Vec::len) != Some(2) {
            return Err(ModelError::invalid(
                KEY_TEMPORAL_BOTTLENECK,
                format!("needs two lists (slow, fast) of {NUM_LEVELS} flags each"),
            ));
        }
        let fast_built = sf.mode != SlowFastMode::Slowonly;
        let pathway = |i: usize| -> Result<ResNetSpec, ModelError> {
            let mut pb = b.clone();
            pb.kernel_size = Some(KernelSizes::PerLevel(kernels[i].clone()));
            if i == 1 {
                let filters = b
                    .num_filters
                    .as_ref()
                    .ok_or_else(|| ModelError::missing(KEY_FILTERS, NEEDED_BY))?;
                if let Some(f) = filters.iter().find(|&&f| (f as i64) < beta) {
                    return Err(ModelError::invalid(
                        KEY_BETA,
                        format!("{beta} leaves the fast pathway no channels for a level of {f}"),
                    ));
                }
                pb.num_filters = Some(filters.iter().map(|f| f / beta as usize).collect());
            }
            let mut spec = ResNetSpec::from_config(&pb, bn)?;
            spec.temporal_bottleneck = temporal[i];
            // The reference initialises every SlowFast conv with its ResNet initialiser, which
            // also starts each branch's last BN weight at 0.
            spec.conv_init = ConvInit::KaimingFanOut;
            spec.zero_final_bn = true;
            if i == 0 && fast_built {
                spec.fusion_channels = Some((channel_ratio, beta));
            }
            Ok(spec)
        };
        let slow = pathway(0)?;
        let fast = pathway(1)?;
        let fusion = FusionSpec {
            alpha,
            channel_ratio,
            kernel,
            bias: flag(KEY_FUSION_BIAS, sf.fusion_conv_bias)?,
            bn: flag(KEY_FUSION_BN, sf.fusion_bn)?.then_some(slow.bn),
            relu: flag(KEY_FUSION_RELU, sf.fusion_relu)?,
        };
        Ok(Self {
            mode: sf.mode,
            alpha,
            beta,
            fusion,
            slow,
            fast,
        })
    }
}

/// One pathway: the stem `{slow,fast}_conv1` and four residual stages `…_conv2 … _conv5`.
#[derive(Debug)]
struct Pathway {
    stem: Stem,
    stages: Vec<ResStage>,
    /// Module paths of conv1..conv5, for [`Taps`].
    names: Vec<String>,
    out_features: i64,
}

impl Pathway {
    fn new(path: &nn::Path, prefix: &str, spec: &ResNetSpec) -> Result<Self, ModelError> {
        let stem = Stem::new(&(path / format!("{prefix}_conv1")), spec)?;
        let stages = (1..NUM_LEVELS)
            .map(|s| ResStage::new(&(path / format!("{prefix}_conv{}", s + 1)), spec, s))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            stem,
            stages,
            names: (1..=NUM_LEVELS)
                .map(|s| module_path(&(path / format!("{prefix}_conv{s}"))))
                .collect(),
            out_features: spec.num_filters[NUM_LEVELS - 1],
        })
    }

    /// Level `level` (0 = stem).
    ///
    /// # Shapes
    /// (N, C, T, H, W) -> (N, NUM_FILTERS[level], T', H', W').
    fn level(&self, level: usize, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let y = match level {
            0 => self.stem.forward_t(xs, train),
            s => self.stages[s - 1].forward_taps(xs, train, taps),
        };
        taps.record(&self.names[level], &y);
        y
    }
}

/// The SlowFast backbone (module `backbone`).
#[derive(Debug)]
pub struct SlowFast {
    slow: Option<Pathway>,
    fast: Option<Pathway>,
    /// After the stem and stages conv2..conv4; only when both pathways are built.
    fusions: Vec<FuseFastToSlow>,
    fusion_names: Vec<String>,
    alpha: i64,
    in_channels: i64,
    /// NUM_FILTERS[4] as written: the value NUM_OUT_FEATURES must have.
    slow_width: i64,
}

impl SlowFast {
    pub fn new(path: &nn::Path, b: &BackboneConfig, bn: &BnConfig) -> Result<Self, ModelError> {
        let spec = SlowFastSpec::from_config(b, bn)?;
        Self::from_spec(path, &spec)
    }

    pub fn from_spec(path: &nn::Path, spec: &SlowFastSpec) -> Result<Self, ModelError> {
        let slow = (spec.mode != SlowFastMode::Fastonly)
            .then(|| Pathway::new(path, "slow", &spec.slow))
            .transpose()?;
        let fast = (spec.mode != SlowFastMode::Slowonly)
            .then(|| Pathway::new(path, "fast", &spec.fast))
            .transpose()?;
        let both = spec.mode == SlowFastMode::Slowfast;
        let levels = if both { 0..NUM_LEVELS - 1 } else { 0..0 };
        let fusions = levels
            .clone()
            .map(|l| {
                let p = path / format!("slowfast_fusion{}", l + 1);
                FuseFastToSlow::new(&p, spec.fast.num_filters[l], &spec.fusion)
            })
            .collect();
        let fusion_names = levels
            .map(|l| module_path(&(path / format!("slowfast_fusion{}", l + 1))))
            .collect();
        Ok(Self {
            slow,
            fast,
            fusions,
            fusion_names,
            alpha: spec.alpha,
            in_channels: spec.slow.num_input_channels,
            slow_width: spec.slow.num_filters[NUM_LEVELS - 1],
        })
    }

    /// Channels the head receives: the built pathways' last widths together.
    pub fn out_features(&self) -> i64 {
        [&self.slow, &self.fast]
            .iter()
            .filter_map(|p| p.as_ref().map(|p| p.out_features))
            .sum()
    }

    /// VIDEO.BACKBONE.NUM_OUT_FEATURES as the reference reads it: the slow pathway's width,
    /// from which its head derives the fast one's (/ BETA).
    pub fn num_out_features(&self) -> i64 {
        self.slow_width
    }

    /// Channels of the input (VIDEO.BACKBONE.NUM_INPUT_CHANNELS).
    pub fn in_channels(&self) -> i64 {
        self.in_channels
    }

    /// Fewest input frames: the slow pathway needs one.
    pub fn min_frames(&self) -> i64 {
        self.alpha
    }

    /// # Shapes
    /// (N, C, T, H, W), T >= ALPHA -> the built pathways' outputs, slow first:
    /// (N, NUM_FILTERS[4], T/ALPHA, H/32, W/32) and (N, NUM_FILTERS[4]/BETA, T, H/32, W/32)
    /// (time as the DOWNSAMPLING_TEMPORAL flags leave it).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Vec<Tensor> {
        let t = xs.size()[2];
        let mut slow = self.slow.as_ref().map(|_| {
            // (N, C, T, H, W) -> (N, C, T / ALPHA, H, W)
            xs.index_select(2, &slow_frame_indices(t, self.alpha, xs.device()))
        });
        let mut fast = self.fast.as_ref().map(|_| xs.shallow_clone());
        for level in 0..NUM_LEVELS {
            if let (Some(p), Some(x)) = (&self.slow, &slow) {
                slow = Some(p.level(level, x, train, taps));
            }
            if let (Some(p), Some(x)) = (&self.fast, &fast) {
                fast = Some(p.level(level, x, train, taps));
            }
            if let (Some(fusion), Some(s), Some(f)) = (self.fusions.get(level), &slow, &fast) {
                let fused = fusion.forward_t(s, f, train);
                let name = &self.fusion_names[level];
                taps.record(&format!("{name}.0"), &fused);
                taps.record(&format!("{name}.1"), f);
                slow = Some(fused);
            }
        }
        slow.into_iter().chain(fast).collect()
    }
}
