//! `TAdaConvNeXtV2Block` (docs/models.md#the-tadaconvnextv2-block) and the stochastic depth its
//! residual uses.

use tch::nn::{self, Module};
use tch::Tensor;

use super::{op_error, LN_EPS};
use crate::models::ops::{
    avgpool_t3, quick_gelu, CalDim, LayerNorm, LayerNormConfig, RouteFuncwTransformer,
    RouteFuncwTransformerConfig, TAdaConv2dV2, TAdaConv2dV2Config,
};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

/// Depthwise kernel of `dwconv` (spatial; the temporal extent is 1).
const DW_KERNEL: i64 = 7;

/// Everything one block needs, already checked by [`super::ConvNeXtSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockSpec {
    pub dim: i64,
    /// Stochastic-depth rate of this block (0: the residual is never dropped).
    pub drop_path: f64,
    /// Initial γ; the block has no `gamma` when ≤ 0.
    pub layer_scale_init: f64,
    pub route_func_r: i64,
    pub route_func_k: [i64; 2],
    pub head_dim: i64,
}

/// Stochastic depth (the reference's `drop_path`, mode "BLC"): in training, each sample's
/// residual is kept with probability 1 − `rate` and then divided by that probability, so its
/// expectation is unchanged; identity in evaluation or at rate 0. The draw uses tch's global
/// generator (seeded with `tch::manual_seed`), like dropout.
///
/// # Shapes
/// (N, …) -> (N, …), one Bernoulli draw per sample.
pub fn drop_path(xs: &Tensor, rate: f64, train: bool) -> Tensor {
    if rate == 0.0 || !train {
        return xs.shallow_clone();
    }
    let keep = 1.0 - rate;
    // (N, 1, …, 1): broadcasts one draw over everything but the batch dimension.
    let mut shape = vec![1i64; xs.dim()];
    shape[0] = xs.size()[0];
    // floor(keep + U[0, 1)) is 1 with probability `keep`, else 0.
    let mask = (Tensor::rand(shape.as_slice(), (xs.kind(), xs.device())) + keep).floor();
    xs / keep * mask
}

/// Linear initialised as ConvNeXt's `_init_weights` does: trunc-normal(0.02) weight (≡ normal at
/// a ±100σ cut), zero bias.
fn linear(path: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(path, d_in, d_out, config)
}

/// One TAdaConvNeXtV2 block at width C (module `stages.i.j`):
///
/// ```text
/// y   = dwconv(x, alpha = dwconv_rf(x))            calibrated depthwise 7×7 per frame
/// y   = norm(y) + norm_avgpool(avgpool_t3(y))      both channels-last
/// out = x + drop_path(gamma · pwconv2(QuickGELU(pwconv1(y))))
/// ```
///
/// Variables (relative to the path), as the reference's state_dict: `gamma` (C), `dwconv.weight`
/// (1, 1, C, 1, 7, 7), `dwconv.bias` (1, 1, C), `dwconv_rf.*`, `norm.*`, `norm_avgpool.*`
/// (starting at weight 0 / bias 0, so the temporal branch starts switched off),
/// `pwconv1.{weight (4C, C), bias}`, `pwconv2.{weight (C, 4C), bias}`.
#[derive(Debug)]
pub struct TAdaConvNeXtV2Block {
    gamma: Option<Tensor>,
    dwconv: TAdaConv2dV2,
    dwconv_rf: RouteFuncwTransformer,
    norm: LayerNorm,
    norm_avgpool: LayerNorm,
    pwconv1: nn::Linear,
    pwconv2: nn::Linear,
    drop_path: f64,
    /// Tap names: the weight and bias calibrations (`dwconv_rf.0`, `.1`) and `dwconv`.
    taps: [String; 3],
}

impl TAdaConvNeXtV2Block {
    pub fn new(path: &nn::Path, spec: &BlockSpec) -> Result<Self, ModelError> {
        let c = spec.dim;
        let p = (DW_KERNEL - 1) / 2;
        let dw_cfg = TAdaConv2dV2Config {
            groups: c,
            cal_dim: CalDim::Cout,
            bias: true,
            padding: [p, p],
            internal_rf_func: false,
            internal_temp_aggr: false,
            ..TAdaConv2dV2Config::new(c, c, DW_KERNEL)
        };
        let dwconv = TAdaConv2dV2::new(&(path / "dwconv"), &dw_cfg).map_err(op_error)?;
        let rf_cfg = RouteFuncwTransformerConfig {
            with_bias_cal: true,
            zero_init_cal: true,
            head_dim: spec.head_dim,
            ..RouteFuncwTransformerConfig::new(c, spec.route_func_r, spec.route_func_k)
        };
        let rf_path = path / "dwconv_rf";
        let dwconv_rf = RouteFuncwTransformer::new(&rf_path, &rf_cfg).map_err(op_error)?;
        let ln_cfg = LayerNormConfig {
            eps: LN_EPS,
            ..LayerNormConfig::new(c)
        };
        let norm = LayerNorm::new(&(path / "norm"), &ln_cfg).map_err(op_error)?;
        let norm_avgpool = LayerNorm::new(&(path / "norm_avgpool"), &ln_cfg).map_err(op_error)?;
        // The temporal-aggregation branch starts at zero, so a block loaded from an image
        // ConvNeXt starts out as that image block.
        tch::no_grad(|| {
            let _ = norm_avgpool.weight.shallow_clone().zero_();
            let _ = norm_avgpool.bias.shallow_clone().zero_();
        });
        let gamma = (spec.layer_scale_init > 0.0)
            .then(|| path.var("gamma", &[c], nn::Init::Const(spec.layer_scale_init)));
        let name = |sub: &str| module_path(&(path / sub));
        Ok(Self {
            gamma,
            dwconv,
            dwconv_rf,
            norm,
            norm_avgpool,
            pwconv1: linear(path / "pwconv1", c, 4 * c),
            pwconv2: linear(path / "pwconv2", 4 * c, c),
            drop_path: spec.drop_path,
            taps: [
                format!("{}.0", name("dwconv_rf")),
                format!("{}.1", name("dwconv_rf")),
                name("dwconv"),
            ],
        })
    }

    /// # Shapes
    /// (N, C, T, H, W) -> (N, C, T, H, W)
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording the calibrations and the `dwconv` output.
    ///
    /// # Panics
    /// When `xs` is not (N, C, T, H, W) with this block's C.
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let cal = self.dwconv_rf.forward_t(xs, train);
        taps.record(&self.taps[0], &cal.weight);
        if let Some(b) = &cal.bias {
            taps.record(&self.taps[1], b);
        }
        let y = self.dwconv.forward_t(xs, Some(&cal), train);
        taps.record(&self.taps[2], &y);
        // (N, C, T, H, W) -> (N, T, H, W, C), for the channels-last norms and the Linears.
        let pooled = avgpool_t3(&y).permute([0, 2, 3, 4, 1]);
        let y = y.permute([0, 2, 3, 4, 1]);
        let y = self.norm.forward(&y) + self.norm_avgpool.forward(&pooled);
        let y = self.pwconv2.forward(&quick_gelu(&self.pwconv1.forward(&y)));
        let y = match &self.gamma {
            Some(g) => y * g,
            None => y,
        };
        // (N, T, H, W, C) -> (N, C, T, H, W)
        let y = y.permute([0, 4, 1, 2, 3]);
        xs + drop_path(&y, self.drop_path, train)
    }
}
