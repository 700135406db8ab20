//! The TAdaConv operator family (reference: `tadaconv/models/module_zoo/ops/`).
//!
//! - V1: [`RouteFuncMLP`] produces per-frame calibration factors, [`TAdaConv2d`] applies them to a
//!   shared 2-D kernel (TAda2D).
//! - V2: [`RouteFuncwTransformer`] (temporal self-attention routing, optional bias calibration) and
//!   [`TAdaConv2dV2`] (optional internal routing function and temporal aggregation; TAdaConvNeXtV2,
//!   TAdaFormer).
//! - Helpers: the channels-first/last [`LayerNorm`] and [`quick_gelu`] of the reference's `misc.py`.
//!
//! Every op is built from `(nn::Path, &Config)`; its variables are named exactly like the
//! reference's state_dict keys relative to the module, so official weights load by name.
//! Parameters that the reference marks `skip_init` (model-wide initialisers must leave them alone)
//! are listed by each op's `skip_init()` as full VarStore names.
//!
//! Hard-wired normalisation eps (not taken from `cfg.BN.EPS`, as in the reference):
//! `RouteFuncMLP.bn` 1e-5 (TAda2D never passes cfg.BN), `TAdaConv2dV2.bn_a`/`bn_b` 1e-5,
//! every tadaconv `LayerNorm` 1e-6.

mod norm;
mod route_func;
mod route_func_transformer;
mod tadaconv2d;
mod tadaconv2d_v2;
#[cfg(test)]
mod test_util;

pub use norm::{quick_gelu, DataFormat, LayerNorm, LayerNormConfig};
pub use route_func::{RouteFuncMLP, RouteFuncMLPConfig};
pub use route_func_transformer::{Calibration, RouteFuncwTransformer, RouteFuncwTransformerConfig};
pub use tadaconv2d::{conv2d_weight_to_tada, TAdaConv2d, TAdaConv2dConfig};
pub use tadaconv2d_v2::{TAdaConv2dV2, TAdaConv2dV2Config};

use std::fmt;
use std::str::FromStr;

use tch::nn;

/// Why an op could not be built or run on the given tensors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The configuration cannot give a working op (e.g. channels not divisible by groups).
    #[error("{op}: invalid configuration: {message}")]
    Config { op: &'static str, message: String },
    /// The op has no internal routing function, so the forward call needs calibration factors.
    #[error("{op}: built without an internal routing function, so a calibration must be passed")]
    MissingCalibration { op: &'static str },
    /// An input tensor does not have the shape the op needs.
    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },
}

/// Which dimension of the shared kernel a calibration factor scales (the reference's `cal_dim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CalDim {
    /// One factor per input channel (within a group): W_bt[o, i] = alpha[b, i, t] · W[o, i].
    #[default]
    Cin,
    /// One factor per output channel: W_bt[o, i] = alpha[b, o, t] · W[o, i].
    Cout,
}

impl FromStr for CalDim {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cin" => Ok(Self::Cin),
            "cout" => Ok(Self::Cout),
            other => Err(format!(
                "cal_dim must be \"cin\" or \"cout\", got {other:?}"
            )),
        }
    }
}

impl fmt::Display for CalDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cin => "cin",
            Self::Cout => "cout",
        })
    }
}

/// Returns an [`OpError::Config`] for `op` unless `ok`.
/// Hidden width of a routing function, C_r = floor(c_in / ratio); 0 for a non-positive ratio
/// (which the op constructors then reject).
fn reduced_width(c_in: i64, ratio: i64) -> i64 {
    if ratio > 0 {
        c_in / ratio
    } else {
        0
    }
}

fn ensure(ok: bool, op: &'static str, message: impl FnOnce() -> String) -> Result<(), OpError> {
    if ok {
        Ok(())
    } else {
        Err(OpError::Config {
            op,
            message: message(),
        })
    }
}

/// Checks that `xs` is a non-empty (B, channels, T, H, W) clip.
fn check_clip(op: &'static str, xs: &tch::Tensor, channels: i64) -> Result<(), OpError> {
    let size = xs.size();
    if size.len() != 5 || size[1] != channels || size.contains(&0) {
        return Err(OpError::Shape {
            op,
            message: format!("expected a non-empty input (B, {channels}, T, H, W), got {size:?}"),
        });
    }
    Ok(())
}

/// A routing-function kernel must be odd: an even one changes T and breaks the reshapes after it.
fn check_temporal_kernels(op: &'static str, kernels: [i64; 2]) -> Result<(), OpError> {
    ensure(kernels.iter().all(|k| *k > 0 && k % 2 == 1), op, || {
        format!("routing kernels must be odd and positive, got {kernels:?}")
    })
}

/// How the weights of a reference `Conv3d` are initialised when it is created.
#[derive(Debug, Clone, Copy)]
enum ConvInit {
    /// PyTorch's `Conv3d.reset_parameters`: weight and bias ~ U(±1/√fan_in).
    TorchDefault,
    /// The V2 modules' `_init_weights`: trunc-normal(0, 0.02) weight (cut at ±2, i.e. ±100σ, so a
    /// plain normal), zero bias.
    TruncNormal02,
    /// Zero weight and bias: calibration heads that must start at a known value.
    Zeros,
}

/// A reference `Conv3d` with kernel (k, 1, 1) and padding (k / 2, 0, 0): a 1-D conv over time
/// (k = 1 gives the 1×1×1 "pointwise" convs).
fn temporal_conv(
    path: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    bias: bool,
    init: ConvInit,
) -> nn::Conv3D {
    let bound = 1.0 / ((c_in * k) as f64).sqrt();
    let (ws_init, bs_init) = match init {
        ConvInit::TorchDefault => (
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        ),
        ConvInit::TruncNormal02 => (
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            nn::Init::Const(0.0),
        ),
        ConvInit::Zeros => (nn::Init::Const(0.0), nn::Init::Const(0.0)),
    };
    let config = nn::ConvConfigND::<[i64; 3]> {
        stride: [1, 1, 1],
        padding: [k / 2, 0, 0],
        dilation: [1, 1, 1],
        groups: 1,
        bias,
        ws_init,
        bs_init,
        padding_mode: nn::PaddingMode::Zeros,
    };
    nn::conv(path, c_in, c_out, [k, 1, 1], config)
}

/// The reference's `AdaptiveAvgPool3d((None, 1, 1))`: mean over H and W, T kept.
///
/// # Shapes
/// (B, C, T, H, W) -> (B, C, T, 1, 1)
pub fn avgpool_hw(xs: &tch::Tensor) -> tch::Tensor {
    let t = xs.size()[2];
    xs.adaptive_avg_pool3d([t, 1, 1])
}

/// `AvgPool3d((3, 1, 1), stride 1, padding (1, 0, 0))` with the default `count_include_pad`: a
/// zero-padded 3-frame mean, so the first and last frames are divided by 3 too.
///
/// # Shapes
/// (B, C, T, H, W) -> (B, C, T, H, W)
pub fn avgpool_t3(xs: &tch::Tensor) -> tch::Tensor {
    xs.avg_pool3d([3, 1, 1], [1, 1, 1], [1, 0, 0], false, true, None)
}
