//! The ResNet3D meta-architecture (TAda2D, R2D3D, R(2+1)D): a stem `conv1` and four residual
//! stages `conv2 … conv5` whose blocks `res_1 … res_n` hold a shortcut and a `conv_branch`.
//!
//! Every config value is checked here, once, into a [`ResNetSpec`]; the modules below only
//! build from already-valid numbers. Per-block numbers follow the reference's
//! `update_3d_conv_params` (docs/models.md#resnet3d).

mod block;
mod branches;
mod layers;
mod stems;
mod tada2d_branch;

#[cfg(test)]
mod tests;

use tch::nn;
use tch::Tensor;

use crate::config::schema::{BackboneConfig, BnConfig, BranchName, Depth, KernelSizes, StemName};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

pub use block::ResBlock;
pub use branches::ConvBranch;
pub use layers::{Bn, BnParams, ConvBn, ConvInit, ConvSpec};
pub use stems::Stem;
pub use tada2d_branch::{TAda2DBranch, TAda2DSpec};

const KEY_DEPTH: &str = "VIDEO.BACKBONE.DEPTH";
const KEY_FILTERS: &str = "VIDEO.BACKBONE.NUM_FILTERS";
const KEY_KERNEL: &str = "VIDEO.BACKBONE.KERNEL_SIZE";
const KEY_DOWN: &str = "VIDEO.BACKBONE.DOWNSAMPLING";
const KEY_DOWN_T: &str = "VIDEO.BACKBONE.DOWNSAMPLING_TEMPORAL";
const KEY_EXPANSION: &str = "VIDEO.BACKBONE.EXPANSION_RATIO";
const KEY_STEM: &str = "VIDEO.BACKBONE.STEM.NAME";
const KEY_BRANCH: &str = "VIDEO.BACKBONE.BRANCH.NAME";
const KEY_INIT: &str = "VIDEO.BACKBONE.INITIALIZATION";
const KEY_IN_CHANNELS: &str = "VIDEO.BACKBONE.NUM_INPUT_CHANNELS";
const NEEDED_BY: &str = "the ResNet3D backbone";

/// Stem + four stages: every per-stage list in the config has five entries.
pub const NUM_LEVELS: usize = 5;

/// Residual-branch layout, fixed by DEPTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformation {
    /// Two k×k×k convs (DEPTH ≤ 34).
    Simple,
    /// 1×1×1 reduce, k×k×k, 1×1×1 expand (DEPTH ≥ 50).
    Bottleneck,
}

/// Blocks per stage (conv2..conv5) and block type for a ResNet DEPTH.
pub fn blocks_per_stage(depth: usize) -> Option<([usize; 4], Transformation)> {
    use Transformation::{Bottleneck, Simple};
    Some(match depth {
        10 => ([1, 1, 1, 1], Simple),
        16 => ([2, 2, 2, 1], Simple),
        18 | 26 => ([2, 2, 2, 2], Simple),
        34 => ([3, 4, 6, 3], Simple),
        50 => ([3, 4, 6, 3], Bottleneck),
        101 => ([3, 4, 23, 3], Bottleneck),
        152 => ([3, 8, 36, 3], Bottleneck),
        _ => return None,
    })
}

/// The ResNet3D config, checked. Index 0 of the per-level arrays is the stem, 1..=4 the stages.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetSpec {
    pub blocks: [usize; 4],
    pub transformation: Transformation,
    pub num_filters: [i64; NUM_LEVELS],
    pub kernel_size: [[i64; 3]; NUM_LEVELS],
    pub downsampling: [bool; NUM_LEVELS],
    pub downsampling_temporal: [bool; NUM_LEVELS],
    /// Only read by bottleneck blocks.
    pub expansion_ratio: Option<i64>,
    pub num_input_channels: i64,
    pub stem: StemName,
    pub branch: BranchName,
    /// The TAda2DBlock keys; `Some` exactly when `branch` is TAda2DBlock.
    pub tada: Option<TAda2DSpec>,
    pub conv_init: ConvInit,
    pub bn: BnParams,
    /// SlowfastBranch: per level, whether a bottleneck's first conv `a` is (3,1,1) (the
    /// reference's TEMPORAL_CONV_BOTTLENECK); all false elsewhere.
    pub temporal_bottleneck: [bool; NUM_LEVELS],
    /// SlowFast's slow pathway: (CONV_CHANNEL_RATIO, BETA) of the fast-to-slow fusion whose
    /// channels the first block of every stage receives on top of the previous stage's
    /// (`dim_in · ratio / beta + dim_in`, the reference's ADD_FUSION_CHANNEL).
    pub fusion_channels: Option<(i64, i64)>,
    /// SlowfastBranch: the branch's last BN weight starts at 0 (the reference's
    /// `transform_final_bn` under its ResNet initialiser).
    pub zero_final_bn: bool,
}

/// The per-level list under `key`, which must have one entry for the stem and one per stage.
fn five<'a, T>(key: &str, v: Option<&'a Vec<T>>) -> Result<&'a [T; NUM_LEVELS], ModelError> {
    let v = v.ok_or_else(|| ModelError::missing(key, NEEDED_BY))?;
    <&[T; NUM_LEVELS]>::try_from(v.as_slice()).map_err(|_| {
        ModelError::invalid(
            key,
            format!(
                "needs {NUM_LEVELS} entries (stem, conv2..conv5), got {}",
                v.len()
            ),
        )
    })
}

fn to_i64(key: &str, v: usize) -> Result<i64, ModelError> {
    i64::try_from(v).map_err(|_| ModelError::invalid(key, format!("{v} is too large")))
}

impl ResNetSpec {
    pub fn from_config(b: &BackboneConfig, bn: &BnConfig) -> Result<Self, ModelError> {
        let depth = match &b.depth {
            None => return Err(ModelError::missing(KEY_DEPTH, NEEDED_BY)),
            Some(Depth::PerStage(v)) => {
                return Err(ModelError::invalid(
                    KEY_DEPTH,
                    format!("ResNet3D takes one layer count (10, 16, 18, 26, 34, 50, 101, 152), got the list {v:?}"),
                ))
            }
            Some(Depth::Layers(d)) => *d,
        };
        let (blocks, transformation) = blocks_per_stage(depth).ok_or_else(|| {
            ModelError::invalid(
                KEY_DEPTH,
                format!("{depth} is not a ResNet depth; use 10, 16, 18, 26, 34, 50, 101 or 152"),
            )
        })?;

        let filters = five(KEY_FILTERS, b.num_filters.as_ref())?;
        let mut num_filters = [0i64; NUM_LEVELS];
        for (dst, &f) in num_filters.iter_mut().zip(filters) {
            if f == 0 {
                return Err(ModelError::invalid(
                    KEY_FILTERS,
                    format!("every entry must be at least 1, got {filters:?}"),
                ));
            }
            *dst = to_i64(KEY_FILTERS, f)?;
        }

        let kernels =
            match &b.kernel_size {
                Some(KernelSizes::PerPathway(_)) => return Err(ModelError::invalid(
                    KEY_KERNEL,
                    "one list per pathway is for META_ARCH Slowfast; ResNet3D takes one [t, h, w] \
                     triple per level",
                )),
                Some(KernelSizes::PerLevel(v)) => Some(v),
                None => None,
            };
        let kernels = five(KEY_KERNEL, kernels)?;
        let mut kernel_size = [[0i64; 3]; NUM_LEVELS];
        for (level, (dst, k)) in kernel_size.iter_mut().zip(kernels).enumerate() {
            let triple = <[usize; 3]>::try_from(k.as_slice()).map_err(|_| {
                ModelError::invalid(
                    KEY_KERNEL,
                    format!("entry {level} must be a [t, h, w] triple, got {k:?}"),
                )
            })?;
            if triple.contains(&0) {
                return Err(ModelError::invalid(
                    KEY_KERNEL,
                    format!("entry {level} has a zero size: {k:?}"),
                ));
            }
            for (d, &s) in dst.iter_mut().zip(&triple) {
                *d = to_i64(KEY_KERNEL, s)?;
            }
        }

        let downsampling = *five(KEY_DOWN, b.downsampling.as_ref())?;
        let downsampling_temporal = *five(KEY_DOWN_T, b.downsampling_temporal.as_ref())?;

        let expansion_ratio = match (transformation, b.expansion_ratio) {
            (Transformation::Simple, r) => r.map(|r| to_i64(KEY_EXPANSION, r)).transpose()?,
            (Transformation::Bottleneck, None) => {
                return Err(ModelError::missing(
                    KEY_EXPANSION,
                    "bottleneck blocks (DEPTH >= 50)",
                ))
            }
            (Transformation::Bottleneck, Some(r)) => {
                let r = to_i64(KEY_EXPANSION, r)?;
                if let Some(f) = num_filters[1..].iter().find(|&&f| r == 0 || f / r == 0) {
                    return Err(ModelError::invalid(
                        KEY_EXPANSION,
                        format!("{r} leaves no bottleneck width for a stage of {f} filters"),
                    ));
                }
                Some(r)
            }
        };

        if b.num_input_channels == 0 {
            return Err(ModelError::invalid(KEY_IN_CHANNELS, "must be at least 1"));
        }
        let stem = b
            .stem
            .name
            .ok_or_else(|| ModelError::missing(KEY_STEM, NEEDED_BY))?;
        let branch = b
            .branch
            .name
            .ok_or_else(|| ModelError::missing(KEY_BRANCH, NEEDED_BY))?;
        let conv_init = match b.initialization.as_deref() {
            None | Some("") => ConvInit::PyTorchDefault,
            Some("kaiming") => ConvInit::KaimingFanOut,
            Some(other) => {
                return Err(ModelError::invalid(
                    KEY_INIT,
                    format!("`{other}` is not an initialisation; use `kaiming` or leave it empty"),
                ))
            }
        };
        let bn = crate::models::backbones::checked_bn(bn)?;
        let mut spec = Self {
            blocks,
            transformation,
            num_filters,
            kernel_size,
            downsampling,
            downsampling_temporal,
            expansion_ratio,
            num_input_channels: to_i64(KEY_IN_CHANNELS, b.num_input_channels)?,
            stem,
            branch,
            tada: None,
            conv_init,
            bn,
            temporal_bottleneck: [false; NUM_LEVELS],
            fusion_channels: None,
            zero_final_bn: false,
        };
        if branch == BranchName::TAda2DBlock {
            spec.tada = Some(TAda2DSpec::from_config(&b.branch, &spec)?);
        }
        Ok(spec)
    }

    /// Parameters of block `block` (from 0) of stage `stage` (1..=4), as the reference's
    /// `update_3d_conv_params` derives them: only the first block of a stage changes width or
    /// downsamples.
    pub fn block_params(&self, stage: usize, block: usize) -> BlockParams {
        let first = block == 0;
        let downsampling = first && self.downsampling[stage];
        let stride = match (downsampling, self.downsampling_temporal[stage]) {
            (true, true) => [2, 2, 2],
            (true, false) => [1, 2, 2],
            (false, _) => [1, 1, 1],
        };
        let num_filters = self.num_filters[stage];
        let dim_in = match (first, self.fusion_channels) {
            (false, _) => num_filters,
            (true, None) => self.num_filters[stage - 1],
            (true, Some((ratio, beta))) => {
                let d = self.num_filters[stage - 1];
                d * ratio / beta + d
            }
        };
        BlockParams {
            dim_in,
            temporal_a: self.temporal_bottleneck[stage],
            zero_final_bn: self.zero_final_bn,
            num_filters,
            downsampling,
            stride,
            kernel: self.kernel_size[stage],
            // Checked non-zero in from_config whenever a bottleneck reads it.
            bottleneck_width: self.expansion_ratio.map(|r| num_filters / r.max(1)),
            transformation: self.transformation,
            conv_init: self.conv_init,
            bn: self.bn,
        }
    }
}

/// Everything one residual block needs to build itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockParams {
    pub dim_in: i64,
    /// Whether a bottleneck's first conv `a` is (3,1,1) rather than 1×1×1 (SlowfastBranch).
    pub temporal_a: bool,
    /// Whether the branch's last BN weight starts at 0 (SlowfastBranch).
    pub zero_final_bn: bool,
    pub num_filters: i64,
    pub downsampling: bool,
    /// (t, h, w) stride of the block's strided conv and of its projection shortcut.
    pub stride: [i64; 3],
    pub kernel: [i64; 3],
    /// num_filters / EXPANSION_RATIO; `None` when EXPANSION_RATIO is unset (simple blocks).
    pub bottleneck_width: Option<i64>,
    pub transformation: Transformation,
    pub conv_init: ConvInit,
    pub bn: BnParams,
}

/// One stage `conv{s+1}`: blocks `res_1 … res_n` applied in order.
#[derive(Debug)]
pub(crate) struct ResStage {
    blocks: Vec<ResBlock>,
}

impl ResStage {
    pub(crate) fn new(
        path: &nn::Path,
        spec: &ResNetSpec,
        stage: usize,
    ) -> Result<Self, ModelError> {
        let blocks = (0..spec.blocks[stage - 1])
            .map(|j| {
                ResBlock::new(
                    &(path / format!("res_{}", j + 1)),
                    spec,
                    &spec.block_params(stage, j),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { blocks })
    }

    /// # Shapes
    /// (N, dim_in, T, H, W) -> (N, num_filters, T', H', W'), reduced by the first block's stride.
    pub(crate) fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        self.blocks
            .iter()
            .fold(xs.shallow_clone(), |x, b| b.forward_taps(&x, train, taps))
    }
}

/// The ResNet3D backbone (module `backbone`).
#[derive(Debug)]
pub struct ResNet3D {
    conv1: Stem,
    stages: Vec<ResStage>,
    /// Module paths of conv1..conv5, for [`Taps`].
    names: Vec<String>,
    out_features: i64,
    in_channels: i64,
}

impl ResNet3D {
    pub fn new(path: &nn::Path, b: &BackboneConfig, bn: &BnConfig) -> Result<Self, ModelError> {
        let spec = ResNetSpec::from_config(b, bn)?;
        Self::from_spec(path, &spec)
    }

    pub fn from_spec(path: &nn::Path, spec: &ResNetSpec) -> Result<Self, ModelError> {
        // Branches are checked before anything is allocated, so an unsupported one fails fast.
        ConvBranch::check_supported(spec.branch)?;
        let conv1 = Stem::new(&(path / "conv1"), spec)?;
        let stages = (1..NUM_LEVELS)
            .map(|s| ResStage::new(&(path / format!("conv{}", s + 1)), spec, s))
            .collect::<Result<_, _>>()?;
        let names = (1..=NUM_LEVELS)
            .map(|s| module_path(&(path / format!("conv{s}"))))
            .collect();
        Ok(Self {
            conv1,
            stages,
            names,
            out_features: spec.num_filters[NUM_LEVELS - 1],
            in_channels: spec.num_input_channels,
        })
    }

    /// Channels of the output (NUM_FILTERS[4]).
    pub fn out_features(&self) -> i64 {
        self.out_features
    }

    /// Channels the stem expects (NUM_INPUT_CHANNELS).
    pub fn in_channels(&self) -> i64 {
        self.in_channels
    }

    /// # Shapes
    /// (N, C_in, T, H, W) -> (N, NUM_FILTERS[4], T', H', W'), T', H', W' reduced by the strides.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording the stem and every stage output under its module path.
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let mut x = self.conv1.forward_t(xs, train);
        taps.record(&self.names[0], &x);
        for (stage, name) in self.stages.iter().zip(&self.names[1..]) {
            x = stage.forward_taps(&x, train, taps);
            taps.record(name, &x);
        }
        x
    }
}
