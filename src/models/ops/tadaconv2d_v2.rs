//! `TAdaConv2dV2`: the V2 temporally adaptive 2-D convolution, with an optional internal routing
//! function, bias calibration and internal temporal aggregation.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::tadaconv2d::CalibratedConv;
use super::{
    avgpool_t3, ensure, CalDim, Calibration, OpError, RouteFuncwTransformer,
    RouteFuncwTransformerConfig,
};

/// eps and momentum of `bn_a`/`bn_b`, hard-wired in the reference whatever `cfg.BN` says.
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

const OP: &str = "TAdaConv2dV2";

/// Parameters of a [`TAdaConv2dV2`] (the reference's constructor arguments). There is no stride:
/// the reference reshapes its output with the input's H and W, so only stride 1 with "same"
/// padding (2·p = d·(k − 1)) works; other geometries are rejected at construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TAdaConv2dV2Config {
    pub in_channels: i64,
    pub out_channels: i64,
    /// (k_h, k_w).
    pub kernel_size: [i64; 2],
    pub padding: [i64; 2],
    pub dilation: [i64; 2],
    pub groups: i64,
    /// Adds `bias` (1, 1, C_out), calibrated when a bias calibration is given; with the internal
    /// routing function it also turns on the routing function's bias head.
    pub bias: bool,
    pub cal_dim: CalDim,
    /// Frames per clip, needed only by the token layout ([`TAdaConv2dV2::forward_tokens_t`]).
    pub num_frames: Option<i64>,
    /// Reduction ratio of the internal routing function.
    pub rf_r: i64,
    /// Temporal kernels of the internal routing function.
    pub rf_k: [i64; 2],
    /// Attention head width of the internal routing function.
    pub head_dim: i64,
    /// Builds `rf_func`, used when no calibration is passed to the forward call.
    pub internal_rf_func: bool,
    /// Builds `bn_a`/`bn_b`: output = bn_a(y) + bn_b(avgpool_T(y)).
    pub internal_temp_aggr: bool,
}

impl TAdaConv2dV2Config {
    /// A k×k conv with "same" padding (k − 1) / 2 and the reference's defaults otherwise: groups 1,
    /// bias on, cal_dim cin, rf_r 4, rf_k [3, 3], head_dim 64, internal routing and aggregation.
    pub fn new(in_channels: i64, out_channels: i64, kernel_size: i64) -> Self {
        let p = (kernel_size - 1) / 2;
        Self {
            in_channels,
            out_channels,
            kernel_size: [kernel_size, kernel_size],
            padding: [p, p],
            dilation: [1, 1],
            groups: 1,
            bias: true,
            cal_dim: CalDim::Cin,
            num_frames: None,
            rf_r: 4,
            rf_k: [3, 3],
            head_dim: 64,
            internal_rf_func: true,
            internal_temp_aggr: true,
        }
    }

    fn conv(&self) -> Result<CalibratedConv, OpError> {
        let conv = CalibratedConv {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_size: self.kernel_size,
            stride: [1, 1],
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
            cal_dim: self.cal_dim,
        }
        .validated(OP)?;
        let same =
            (0..2).all(|i| 2 * self.padding[i] == self.dilation[i] * (self.kernel_size[i] - 1));
        ensure(same, OP, || {
            format!(
                "only 'same' padding works (2·padding = dilation·(kernel − 1)); got kernel {:?}, \
                 padding {:?}, dilation {:?}",
                self.kernel_size, self.padding, self.dilation
            )
        })?;
        if self.internal_rf_func {
            // The reference builds rf_func with c_in = out_channels but feeds it the op's input,
            // and its calibration has out_channels channels.
            ensure(self.in_channels == self.out_channels, OP, || {
                format!(
                    "the internal routing function needs in_channels == out_channels, got {} and {}",
                    self.in_channels, self.out_channels
                )
            })?;
            let c_a = match self.cal_dim {
                CalDim::Cin => self.in_channels / self.groups,
                CalDim::Cout => self.out_channels,
            };
            ensure(c_a == self.out_channels, OP, || {
                format!(
                    "with cal_dim cin and groups {} the kernel needs {c_a} calibration channels, \
                     but the internal routing function gives {}",
                    self.groups, self.out_channels
                )
            })?;
        }
        Ok(conv)
    }
}

/// The V2 temporally adaptive 2-D convolution (reference `TAdaConv2dV2`).
///
/// As [`TAdaConv2d`](super::TAdaConv2d), each frame (b, t) is convolved with its own calibrated
/// kernel; in addition the bias can be calibrated (`bias_bt[o] = b_alpha[b, o, t] · bias[o]`), the
/// calibration can come from the internal `rf_func` (a [`RouteFuncwTransformer`] built with
/// `zero_init_cal = false`, so its raw output is used, without "+1"), and the output can be
/// aggregated over time inside the op: y = bn_a(y) + bn_b(avgpool_(3,1,1)(y)).
///
/// Init as the reference: `weight` trunc-normal(0.02) (≡ normal at ±100σ cut), `bias` 0, every
/// `rf_func` conv trunc-normal(0.02) with zero bias, `bn_a` weight 1 / bias 0, `bn_b` weight 0 /
/// bias 0 (listed by [`skip_init`](Self::skip_init)). `bn_a`/`bn_b` use eps 1e-5 and momentum
/// 0.1 whatever `cfg.BN` says; the routing LayerNorms use eps 1e-6 (both hard-wired).
///
/// Variables (relative to the path): `weight` (1, 1, C_out, C_in/groups, k_h, k_w), `bias`
/// (1, 1, C_out), `rf_func.*`, `bn_a.*`, `bn_b.*`.
///
/// # Shapes
/// - [`forward_t`](Self::forward_t): (B, C_in, T, H, W) -> (B, C_out, T, H, W)
/// - [`forward_tokens_t`](Self::forward_tokens_t): tokens (h·w, B·T, C_in) with a square h×w grid
///   and the frame index fastest in B·T -> (h·w, B·T, C_out)
/// - calibration: weight (B, C_a, T, 1, 1) with C_a = C_in/groups (cin) or C_out (cout);
///   bias (B, C_out, T, 1, 1)
#[derive(Debug)]
pub struct TAdaConv2dV2 {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub rf_func: Option<RouteFuncwTransformer>,
    pub bn_a: Option<nn::BatchNorm>,
    pub bn_b: Option<nn::BatchNorm>,
    conv: CalibratedConv,
    num_frames: Option<i64>,
    skip_init: Vec<String>,
}

impl TAdaConv2dV2 {
    /// Creates the op's variables under `path`.
    pub fn new(path: &nn::Path, cfg: &TAdaConv2dV2Config) -> Result<Self, OpError> {
        let conv = cfg.conv()?;
        let [kh, kw] = cfg.kernel_size;
        let c_out = cfg.out_channels;
        let weight_init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let weight = path.var(
            "weight",
            &[1, 1, c_out, cfg.in_channels / cfg.groups, kh, kw],
            weight_init,
        );
        let bias = cfg
            .bias
            .then(|| path.var("bias", &[1, 1, c_out], nn::Init::Const(0.0)));
        let rf_func = if cfg.internal_rf_func {
            let rf_cfg = RouteFuncwTransformerConfig {
                with_bias_cal: cfg.bias,
                zero_init_cal: false,
                head_dim: cfg.head_dim,
                ..RouteFuncwTransformerConfig::new(c_out, cfg.rf_r, cfg.rf_k)
            };
            Some(RouteFuncwTransformer::new(&(path / "rf_func"), &rf_cfg)?)
        } else {
            None
        };
        let bn = |name: &str, scale: f64| {
            let bn_cfg = nn::BatchNormConfig {
                eps: BN_EPS,
                momentum: BN_MOMENTUM,
                ws_init: nn::Init::Const(scale),
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            };
            nn::batch_norm3d(path / name, c_out, bn_cfg)
        };
        let (bn_a, bn_b) = if cfg.internal_temp_aggr {
            (Some(bn("bn_a", 1.0)), Some(bn("bn_b", 0.0)))
        } else {
            (None, None)
        };
        let mut skip_init = rf_func
            .as_ref()
            .map(|rf| rf.skip_init().to_vec())
            .unwrap_or_default();
        if cfg.internal_temp_aggr {
            skip_init.push((path / "bn_b").path("weight"));
            skip_init.push((path / "bn_b").path("bias"));
        }
        Ok(Self {
            weight,
            bias,
            rf_func,
            bn_a,
            bn_b,
            conv,
            num_frames: cfg.num_frames,
            skip_init,
        })
    }

    /// Full VarStore names of the parameters that model-wide initialisers must leave alone:
    /// `<path>.bn_b.{weight,bias}` with the internal temporal aggregation.
    pub fn skip_init(&self) -> &[String] {
        &self.skip_init
    }

    /// The op on a (B, C_in, T, H, W) clip (the reference's `reshape_required=False`), or an error
    /// on a wrong shape. Without `alpha` the internal routing function computes it from `xs`. A
    /// bias calibration is ignored when the op has no bias, as in the reference. `train` switches
    /// `bn_a`/`bn_b` to batch statistics.
    pub fn f_forward_t(
        &self,
        xs: &Tensor,
        alpha: Option<&Calibration>,
        train: bool,
    ) -> Result<Tensor, OpError> {
        let internal;
        let cal = match (alpha, &self.rf_func) {
            (Some(cal), _) => cal,
            (None, Some(rf)) => {
                internal = rf.f_forward_t(xs, train)?;
                &internal
            }
            (None, None) => return Err(OpError::MissingCalibration { op: OP }),
        };
        self.conv.check(OP, xs, &cal.weight)?;
        let size = xs.size();
        let (b, t, c_out) = (size[0], size[2], self.conv.out_channels);
        let bias_bt = match (&self.bias, &cal.bias) {
            (Some(bias), Some(b_alpha)) => {
                let want = [b, c_out, t, 1, 1];
                if b_alpha.size() != want {
                    return Err(OpError::Shape {
                        op: OP,
                        message: format!(
                            "bias calibration must be {want:?}, got {:?}",
                            b_alpha.size()
                        ),
                    });
                }
                // (B, C_out, T, 1, 1) -> (B, T, C_out) -> (B·T·C_out), scaling (1, 1, C_out).
                let factor = b_alpha.permute([0, 2, 1, 3, 4]).reshape([b, t, c_out]);
                Some((factor * bias).reshape([-1]))
            }
            // (1, 1, C_out) -> (B, T, C_out) -> (B·T·C_out): the same bias for every frame.
            (Some(bias), None) => Some(bias.repeat([b, t, 1]).reshape([-1])),
            (None, _) => None,
        };
        let y = self
            .conv
            .forward(xs, &cal.weight, &self.weight, bias_bt.as_ref());
        // (B, T, C_out, H, W) -> (B, C_out, T, H, W)
        let y = y.permute([0, 2, 1, 3, 4]);
        Ok(match (&self.bn_a, &self.bn_b) {
            (Some(bn_a), Some(bn_b)) => {
                let bn = |bn, x: &Tensor| {
                    crate::dist::sync_bn::forward(bn, x, train, BN_EPS, BN_MOMENTUM)
                };
                bn(bn_a, &y) + bn(bn_b, &avgpool_t3(&y))
            }
            _ => y,
        })
    }

    /// As [`f_forward_t`](Self::f_forward_t).
    ///
    /// # Panics
    /// When a shape is wrong, or when no calibration is given to an op without `rf_func`.
    pub fn forward_t(&self, xs: &Tensor, alpha: Option<&Calibration>, train: bool) -> Tensor {
        self.f_forward_t(xs, alpha, train)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The op on transformer tokens (the reference's `reshape_required=True`, TAdaFormer), or an
    /// error on a wrong shape or a missing `num_frames`.
    ///
    /// # Shapes
    /// (h·w, B·T, C_in) -> (h·w, B·T, C_out), T = `num_frames`, h = w = √L
    pub fn f_forward_tokens_t(
        &self,
        tokens: &Tensor,
        alpha: Option<&Calibration>,
        train: bool,
    ) -> Result<Tensor, OpError> {
        let shape = |message: String| OpError::Shape { op: OP, message };
        let t = self
            .num_frames
            .filter(|t| *t > 0)
            .ok_or_else(|| shape("the token layout needs num_frames in the config".into()))?;
        let size = tokens.size();
        let [l, n, c] = size[..] else {
            return Err(shape(format!("expected tokens (L, B·T, C), got {size:?}")));
        };
        let side = (l as f64).sqrt().round() as i64;
        if side * side != l || n % t != 0 || n == 0 {
            return Err(shape(format!(
                "tokens {size:?}: L must be a square and B·T a multiple of num_frames {t}"
            )));
        }
        // (h·w, B·T, C) -> (h, w, B, T, C) -> (B, C, T, h, w)
        let feat = tokens
            .reshape([side, side, n / t, t, c])
            .permute([2, 4, 3, 0, 1]);
        let y = self.f_forward_t(&feat, alpha, train)?;
        let c_out = y.size()[1];
        // (B, C_out, T, h, w) -> (h, w, B, T, C_out) -> (h·w, B·T, C_out)
        Ok(y.permute([3, 4, 0, 2, 1]).reshape([l, n, c_out]))
    }

    /// As [`f_forward_tokens_t`](Self::f_forward_tokens_t).
    ///
    /// # Panics
    /// When a shape is wrong or `num_frames` is missing.
    pub fn forward_tokens_t(
        &self,
        tokens: &Tensor,
        alpha: Option<&Calibration>,
        train: bool,
    ) -> Tensor {
        self.f_forward_tokens_t(tokens, alpha, train)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl ModuleT for TAdaConv2dV2 {
    /// The op on a (B, C_in, T, H, W) clip with its internal routing function.
    ///
    /// # Panics
    /// When the shape is wrong or the op has no internal routing function.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        TAdaConv2dV2::forward_t(self, xs, None, train)
    }
}

#[cfg(test)]
#[path = "tadaconv2d_v2_tests.rs"]
mod tests;
