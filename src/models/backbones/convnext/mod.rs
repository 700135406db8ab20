//! The ConvNeXt meta-architecture (TAdaConvNeXtV2 Tiny / Small / Base,
//! docs/models.md#tadaconvnextv2): four `downsample_layers` (a patchifying stem, then LayerNorm +
//! 2×2 strided convs), four `stages` of [`TAdaConvNeXtV2Block`]s, global average pooling and a
//! final LayerNorm `norm`.
//!
//! Every config value is checked here, once, into a [`ConvNeXtSpec`]; the modules below only
//! build from already-valid numbers.

mod block;

#[cfg(test)]
pub(crate) mod tests;

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::config::schema::{BackboneConfig, BranchName, Depth};
use crate::models::ops::{DataFormat, LayerNorm, LayerNormConfig, OpError};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

pub use block::{drop_path, BlockSpec, TAdaConvNeXtV2Block};

const KEY_DEPTH: &str = "VIDEO.BACKBONE.DEPTH";
const KEY_FILTERS: &str = "VIDEO.BACKBONE.NUM_FILTERS";
const KEY_IN_CHANNELS: &str = "VIDEO.BACKBONE.NUM_INPUT_CHANNELS";
const KEY_DROP_PATH: &str = "VIDEO.BACKBONE.DROP_PATH";
const KEY_LAYER_SCALE: &str = "VIDEO.BACKBONE.LARGE_SCALE_INIT_VALUE";
const KEY_T_KERNEL: &str = "VIDEO.BACKBONE.STEM.T_KERNEL_SIZE";
const KEY_T_STRIDE: &str = "VIDEO.BACKBONE.STEM.T_STRIDE";
const KEY_BRANCH: &str = "VIDEO.BACKBONE.BRANCH.NAME";
const KEY_RF_R: &str = "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R";
const KEY_RF_K: &str = "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K";
const KEY_HEAD_DIM: &str = "VIDEO.BACKBONE.BRANCH.HEAD_DIM";
const NEEDED_BY: &str = "the ConvNeXt backbone";

/// Stages (and downsampling layers) of every ConvNeXt.
pub const NUM_STAGES: usize = 4;

/// The block's own default when BRANCH.HEAD_DIM is absent (the reference checks `hasattr`).
pub const DEFAULT_HEAD_DIM: usize = 48;

/// The block's own default layer-scale init, used when LARGE_SCALE_INIT_VALUE is absent (the
/// reference's base config has no value for it; every released backbone file sets 1e-6).
pub const DEFAULT_LAYER_SCALE: f64 = 1e-6;

/// Every tadaconv LayerNorm and the final `nn.LayerNorm` of ConvNeXt use eps 1e-6 (hard-wired in
/// the reference, independent of BN.EPS).
const LN_EPS: f64 = 1e-6;

/// The ConvNeXt config, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNeXtSpec {
    /// Blocks per stage (DEPTH).
    pub depths: [usize; NUM_STAGES],
    /// Stage widths (NUM_FILTERS).
    pub dims: [i64; NUM_STAGES],
    pub num_input_channels: i64,
    /// Temporal kernel and stride of the stem conv (spatially 4×4, stride 4).
    pub stem_t_kernel: i64,
    pub stem_t_stride: i64,
    /// Stochastic-depth rate of the last block; block rates grow linearly from 0.
    pub drop_path: f64,
    /// Initial layer-scale γ; no γ at all when ≤ 0, as in the reference.
    pub layer_scale_init: f64,
    pub route_func_r: i64,
    pub route_func_k: [i64; 2],
    pub head_dim: i64,
}

fn to_i64(key: &str, v: usize) -> Result<i64, ModelError> {
    i64::try_from(v).map_err(|_| ModelError::invalid(key, format!("{v} is too large")))
}

/// A required positive number under `key`.
fn positive(key: &str, v: Option<usize>) -> Result<i64, ModelError> {
    match v {
        None => Err(ModelError::missing(key, NEEDED_BY)),
        Some(0) => Err(ModelError::invalid(key, "must be at least 1")),
        Some(v) => to_i64(key, v),
    }
}

/// The four-entry list under `key`.
fn four<T: Copy>(key: &str, v: &[T]) -> Result<[T; NUM_STAGES], ModelError> {
    <[T; NUM_STAGES]>::try_from(v).map_err(|_| {
        ModelError::invalid(
            key,
            format!(
                "needs {NUM_STAGES} entries (one per stage), got {}",
                v.len()
            ),
        )
    })
}

impl ConvNeXtSpec {
    pub fn from_config(b: &BackboneConfig) -> Result<Self, ModelError> {
        let depths = match &b.depth {
            None => return Err(ModelError::missing(KEY_DEPTH, NEEDED_BY)),
            Some(Depth::Layers(d)) => {
                return Err(ModelError::invalid(
                    KEY_DEPTH,
                    format!(
                    "ConvNeXt takes blocks per stage, e.g. [3, 3, 9, 3], got the single number {d}"
                ),
                ))
            }
            Some(Depth::PerStage(v)) => four(KEY_DEPTH, v)?,
        };
        let filters = b
            .num_filters
            .as_ref()
            .ok_or_else(|| ModelError::missing(KEY_FILTERS, NEEDED_BY))?;
        let filters = four(KEY_FILTERS, filters)?;
        if filters.contains(&0) {
            return Err(ModelError::invalid(
                KEY_FILTERS,
                format!("every entry must be at least 1, got {filters:?}"),
            ));
        }
        let mut dims = [0i64; NUM_STAGES];
        for (d, &f) in dims.iter_mut().zip(&filters) {
            *d = to_i64(KEY_FILTERS, f)?;
        }
        if b.num_input_channels == 0 {
            return Err(ModelError::invalid(KEY_IN_CHANNELS, "must be at least 1"));
        }
        let stem_t_kernel = positive(KEY_T_KERNEL, b.stem.t_kernel_size)?;
        let stem_t_stride = positive(KEY_T_STRIDE, b.stem.t_stride)?;
        // DROP_PATH = 1 would give the last block keep-probability 0: a division by zero.
        if !(0.0..1.0).contains(&b.drop_path) {
            return Err(ModelError::invalid(
                KEY_DROP_PATH,
                format!("must be in [0, 1), got {}", b.drop_path),
            ));
        }
        let layer_scale_init = b.large_scale_init_value.unwrap_or(DEFAULT_LAYER_SCALE);
        if !layer_scale_init.is_finite() {
            return Err(ModelError::invalid(
                KEY_LAYER_SCALE,
                format!("must be a finite number, got {layer_scale_init}"),
            ));
        }
        match b.branch.name {
            None => return Err(ModelError::missing(KEY_BRANCH, NEEDED_BY)),
            Some(BranchName::TAdaConvNeXtV2Block) => {}
            Some(other) => {
                return Err(ModelError::invalid(
                    KEY_BRANCH,
                    format!("ConvNeXt stages are built from TAdaConvNeXtV2Block, not {other:?}"),
                ))
            }
        }
        let route_func_r = positive(KEY_RF_R, b.branch.route_func_r)?;
        let k = b
            .branch
            .route_func_k
            .as_ref()
            .ok_or_else(|| ModelError::missing(KEY_RF_K, NEEDED_BY))?;
        let k = <[usize; 2]>::try_from(k.as_slice())
            .map_err(|_| ModelError::invalid(KEY_RF_K, format!("needs 2 entries, got {k:?}")))?;
        // An even kernel changes the number of frames and breaks the routing function's reshapes.
        if k.iter().any(|k| k % 2 == 0) {
            return Err(ModelError::invalid(
                KEY_RF_K,
                format!("both kernels must be odd, got {k:?}"),
            ));
        }
        let route_func_k = [to_i64(KEY_RF_K, k[0])?, to_i64(KEY_RF_K, k[1])?];
        let head_dim = positive(
            KEY_HEAD_DIM,
            Some(b.branch.head_dim.unwrap_or(DEFAULT_HEAD_DIM)),
        )?;
        for &c in &dims {
            let c_r = c / route_func_r;
            if c_r == 0 || c_r % head_dim != 0 {
                return Err(ModelError::invalid(
                    KEY_HEAD_DIM,
                    format!(
                        "{head_dim} must divide the routing width NUM_FILTERS / ROUTE_FUNC_R of \
                         every stage; a stage of {c} filters gives {c} / {route_func_r} = {c_r}"
                    ),
                ));
            }
        }
        Ok(Self {
            depths,
            dims,
            num_input_channels: to_i64(KEY_IN_CHANNELS, b.num_input_channels)?,
            stem_t_kernel,
            stem_t_stride,
            drop_path: b.drop_path,
            layer_scale_init,
            route_func_r,
            route_func_k,
            head_dim,
        })
    }

    /// Stochastic-depth rate of every block, in order: linspace(0, DROP_PATH, total blocks),
    /// computed in float32 as the reference's `torch.linspace` does.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let total: usize = self.depths.iter().sum();
        if total == 0 {
            return Vec::new();
        }
        let rates = Tensor::linspace(
            0.0,
            self.drop_path,
            total as i64,
            (Kind::Float, Device::Cpu),
        );
        (0..total as i64)
            .map(|j| rates.double_value(&[j]))
            .collect()
    }

    /// Everything a block of stage `stage` (from 0) needs; `rate` is its drop-path rate (from
    /// [`Self::drop_path_rates`]).
    pub fn block_spec(&self, stage: usize, rate: f64) -> BlockSpec {
        BlockSpec {
            dim: self.dims[stage],
            drop_path: rate,
            layer_scale_init: self.layer_scale_init,
            route_func_r: self.route_func_r,
            route_func_k: self.route_func_k,
            head_dim: self.head_dim,
        }
    }
}

/// Conv3d with bias, initialised as ConvNeXt's `_init_weights` does: trunc-normal(0.02) weight
/// (cut at ±2, i.e. ±100σ, so a plain normal), zero bias.
fn conv3d(
    path: nn::Path,
    c_in: i64,
    c_out: i64,
    kernel: [i64; 3],
    stride: [i64; 3],
    padding: [i64; 3],
) -> nn::Conv3D {
    let config = nn::ConvConfigND::<[i64; 3]> {
        stride,
        padding,
        dilation: [1, 1, 1],
        groups: 1,
        bias: true,
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        bs_init: nn::Init::Const(0.0),
        padding_mode: nn::PaddingMode::Zeros,
    };
    nn::conv(path, c_in, c_out, kernel, config)
}

fn op_error(e: OpError) -> ModelError {
    ModelError::invalid("VIDEO.BACKBONE", e.to_string())
}

fn channels_first_ln(path: &nn::Path, channels: i64) -> Result<LayerNorm, ModelError> {
    let cfg = LayerNormConfig {
        eps: LN_EPS,
        data_format: DataFormat::ChannelsFirst,
        ..LayerNormConfig::new(channels)
    };
    LayerNorm::new(path, &cfg).map_err(op_error)
}

/// `downsample_layers.i`: the stem (`.0` conv, `.1` LayerNorm) or, for i > 0, `.0` LayerNorm
/// then `.1` a 1×2×2 conv of stride 1×2×2.
#[derive(Debug)]
struct Downsample {
    conv: nn::Conv3D,
    norm: LayerNorm,
    norm_first: bool,
}

impl Downsample {
    fn stem(path: &nn::Path, spec: &ConvNeXtSpec) -> Result<Self, ModelError> {
        let (kt, st) = (spec.stem_t_kernel, spec.stem_t_stride);
        let conv = conv3d(
            path / "0",
            spec.num_input_channels,
            spec.dims[0],
            [kt, 4, 4],
            [st, 4, 4],
            [(kt - 1) / 2, 0, 0],
        );
        Ok(Self {
            conv,
            norm: channels_first_ln(&(path / "1"), spec.dims[0])?,
            norm_first: false,
        })
    }

    fn between(path: &nn::Path, c_in: i64, c_out: i64) -> Result<Self, ModelError> {
        Ok(Self {
            norm: channels_first_ln(&(path / "0"), c_in)?,
            conv: conv3d(path / "1", c_in, c_out, [1, 2, 2], [1, 2, 2], [0, 0, 0]),
            norm_first: true,
        })
    }

    /// # Shapes
    /// stem: (N, C_in, T, H, W) -> (N, d0, T', H/4, W/4); otherwise (N, c_in, T, H, W) ->
    /// (N, c_out, T, H/2, W/2).
    fn forward(&self, xs: &Tensor) -> Tensor {
        if self.norm_first {
            self.conv.forward(&self.norm.forward(xs))
        } else {
            self.norm.forward(&self.conv.forward(xs))
        }
    }
}

/// The ConvNeXt backbone (module `backbone`).
#[derive(Debug)]
pub struct ConvNeXt {
    downsample_layers: Vec<Downsample>,
    stages: Vec<Vec<TAdaConvNeXtV2Block>>,
    norm: LayerNorm,
    /// Module paths of `downsample_layers.i`, `stages.i` and `norm`, for [`Taps`].
    down_names: Vec<String>,
    stage_names: Vec<String>,
    norm_name: String,
    out_features: i64,
    in_channels: i64,
}

impl ConvNeXt {
    pub fn new(path: &nn::Path, b: &BackboneConfig) -> Result<Self, ModelError> {
        Self::from_spec(path, &ConvNeXtSpec::from_config(b)?)
    }

    pub fn from_spec(path: &nn::Path, spec: &ConvNeXtSpec) -> Result<Self, ModelError> {
        let downs = path / "downsample_layers";
        let mut downsample_layers = vec![Downsample::stem(&(&downs / "0"), spec)?];
        for i in 1..NUM_STAGES {
            downsample_layers.push(Downsample::between(
                &(&downs / i),
                spec.dims[i - 1],
                spec.dims[i],
            )?);
        }
        let mut rates = spec.drop_path_rates().into_iter();
        let mut stages = Vec::with_capacity(NUM_STAGES);
        for (i, &depth) in spec.depths.iter().enumerate() {
            let stage_path = path / "stages" / i;
            let blocks = (0..depth)
                .map(|j| {
                    let rate = rates.next().unwrap_or(0.0);
                    TAdaConvNeXtV2Block::new(&(&stage_path / j), &spec.block_spec(i, rate))
                })
                .collect::<Result<Vec<_>, _>>()?;
            stages.push(blocks);
        }
        let d3 = spec.dims[NUM_STAGES - 1];
        let norm_cfg = LayerNormConfig {
            eps: LN_EPS,
            ..LayerNormConfig::new(d3)
        };
        let norm_path = path / "norm";
        let norm = LayerNorm::new(&norm_path, &norm_cfg).map_err(op_error)?;
        Ok(Self {
            downsample_layers,
            stages,
            norm,
            down_names: (0..NUM_STAGES)
                .map(|i| module_path(&(&downs / i)))
                .collect(),
            stage_names: (0..NUM_STAGES)
                .map(|i| module_path(&(path / "stages" / i)))
                .collect(),
            norm_name: module_path(&norm_path),
            out_features: d3,
            in_channels: spec.num_input_channels,
        })
    }

    /// Width of the output features (NUM_FILTERS[3]).
    pub fn out_features(&self) -> i64 {
        self.out_features
    }

    /// Channels the stem expects (NUM_INPUT_CHANNELS).
    pub fn in_channels(&self) -> i64 {
        self.in_channels
    }

    /// # Shapes
    /// (N, C_in, T, H, W) -> (N, NUM_FILTERS[3]): pooled and normalised features.
    ///
    /// # Panics
    /// Like the reference, on clips too small for its layers: H and W below 32 (every
    /// downsampling layer needs a 2×2 patch) or fewer than 3 frames after the stem (the blocks'
    /// 3-frame temporal pooling; with the released stem, T ≥ 5).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording every downsampling layer, every stage, `norm`, and inside
    /// each block its calibration (`dwconv_rf.0`, `dwconv_rf.1`) and `dwconv` output.
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let mut x = xs.shallow_clone();
        for i in 0..NUM_STAGES {
            x = self.downsample_layers[i].forward(&x);
            taps.record(&self.down_names[i], &x);
            for block in &self.stages[i] {
                x = block.forward_taps(&x, train, taps);
            }
            taps.record(&self.stage_names[i], &x);
        }
        // (N, C, T, H, W) -> (N, C): global average pooling.
        let pooled = x.mean_dim([-3i64, -2, -1].as_slice(), false, None::<Kind>);
        let out = self.norm.forward(&pooled);
        taps.record(&self.norm_name, &out);
        out
    }
}
