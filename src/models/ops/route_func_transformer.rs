//! `RouteFuncwTransformer`: the V2 routing function (temporal conv + self-attention over frames),
//! with an optional second head that calibrates the bias.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::{
    avgpool_hw, check_clip, check_temporal_kernels, ensure, quick_gelu, temporal_conv, ConvInit,
    DataFormat, LayerNorm, LayerNormConfig, OpError,
};

const OP: &str = "RouteFuncwTransformer";

/// Parameters of a [`RouteFuncwTransformer`]. The reference's `bn_eps`/`bn_mmt` arguments are
/// accepted there but unused (there is no BN), so they are absent here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteFuncwTransformerConfig {
    /// Channels of the input, and of the calibration factors it produces.
    pub c_in: i64,
    /// Reduction of the hidden width: C_r = c_in / ratio (integer division).
    pub ratio: i64,
    /// Temporal kernels of the convs `a` and `b` (odd).
    pub kernels: [i64; 2],
    /// Adds the head `b_bias` that produces a bias calibration.
    pub with_bias_cal: bool,
    /// Zero-initialises `b` (and `b_bias`) and adds 1 to their outputs, so the calibration starts
    /// at exactly 1 (TAdaConvNeXtV2). When false (TAdaFormer, and the op-internal routing
    /// function of `TAdaConv2dV2`) the raw head output is the calibration.
    pub zero_init_cal: bool,
    /// Channels per attention head; C_r must be a multiple of it.
    pub head_dim: i64,
}

impl RouteFuncwTransformerConfig {
    /// The reference's defaults: no bias calibration, `zero_init_cal`, head_dim 64.
    pub fn new(c_in: i64, ratio: i64, kernels: [i64; 2]) -> Self {
        Self {
            c_in,
            ratio,
            kernels,
            with_bias_cal: false,
            zero_init_cal: true,
            head_dim: 64,
        }
    }

    /// The hidden width C_r = floor(c_in / ratio).
    pub fn reduced(&self) -> i64 {
        super::reduced_width(self.c_in, self.ratio)
    }
}

/// Calibration factors for a V2 TAdaConv: the reference's `w_alpha` or list `[w_alpha, b_alpha]`.
///
/// # Shapes
/// - weight: (B, C_a, T, 1, 1), C_a = C_in/groups for cal_dim cin, C_out for cout
/// - bias: (B, C_out, T, 1, 1)
#[derive(Debug)]
pub struct Calibration {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

/// The V2 routing function (reference `RouteFuncwTransformer`).
///
/// x1 = a(avgpool_HW(x)); x2 = QuickGELU(norm(x1)); x3 = x2 + attention(norm_transformer(x2));
/// calibration = b(x3) (+ 1 with `zero_init_cal`), bias calibration = b_bias(x3) (+ 1).
///
/// The attention has one token per frame. Two quirks of the reference are kept because official
/// checkpoints depend on them: the qkv channels are split as (3, head_dim, n_heads) with the head
/// index fastest while the attention output is merged head-major, and the logits are scaled by
/// C_r^−½ (the full hidden width, not head_dim).
///
/// Init: every conv trunc-normal(0.02) with zero bias (what every enclosing V2 module applies),
/// except `b`/`b_bias`, which are zero with `zero_init_cal` and then listed by
/// [`skip_init`](Self::skip_init). Both LayerNorms are channels-first, eps 1e-6 (hard-wired).
///
/// Variables (relative to the path): `a.{weight,bias}`, `norm.{weight,bias}`,
/// `norm_transformer.{weight,bias}`, `qkv_proj.{weight,bias}`, `attn_out.{weight,bias}`,
/// `b.weight`, and with bias calibration `b_bias.weight`.
///
/// # Shapes
/// - input x: (B, c_in, T, H, W)
/// - output: [`Calibration`] with weight (and bias) (B, c_in, T, 1, 1)
#[derive(Debug)]
pub struct RouteFuncwTransformer {
    pub a: nn::Conv3D,
    pub norm: LayerNorm,
    pub norm_transformer: LayerNorm,
    pub qkv_proj: nn::Conv3D,
    pub attn_out: nn::Conv3D,
    pub b: nn::Conv3D,
    pub b_bias: Option<nn::Conv3D>,
    c_in: i64,
    head_dim: i64,
    zero_init_cal: bool,
    skip_init: Vec<String>,
}

impl RouteFuncwTransformer {
    /// Creates the routing function's variables under `path`.
    pub fn new(path: &nn::Path, cfg: &RouteFuncwTransformerConfig) -> Result<Self, OpError> {
        let c_r = cfg.reduced();
        ensure(cfg.c_in > 0 && cfg.ratio > 0 && c_r > 0, OP, || {
            format!(
                "c_in {} / ratio {} must give a hidden width of at least 1",
                cfg.c_in, cfg.ratio
            )
        })?;
        ensure(cfg.head_dim > 0 && c_r % cfg.head_dim == 0, OP, || {
            format!(
                "the hidden width {c_r} must be a multiple of head_dim {}",
                cfg.head_dim
            )
        })?;
        check_temporal_kernels(OP, cfg.kernels)?;
        let [k_a, k_b] = cfg.kernels;
        let ln = LayerNormConfig {
            data_format: DataFormat::ChannelsFirst,
            ..LayerNormConfig::new(c_r)
        };
        let head_init = if cfg.zero_init_cal {
            ConvInit::Zeros
        } else {
            ConvInit::TruncNormal02
        };
        let conv = |name: &str, c_in, c_out, k, bias, init| {
            temporal_conv(path / name, c_in, c_out, k, bias, init)
        };
        let mut skip_init = Vec::new();
        if cfg.zero_init_cal {
            skip_init.push((path / "b").path("weight"));
            if cfg.with_bias_cal {
                skip_init.push((path / "b_bias").path("weight"));
            }
        }
        Ok(Self {
            a: conv("a", cfg.c_in, c_r, k_a, true, ConvInit::TruncNormal02),
            norm: LayerNorm::new(&(path / "norm"), &ln)?,
            norm_transformer: LayerNorm::new(&(path / "norm_transformer"), &ln)?,
            qkv_proj: conv("qkv_proj", c_r, 3 * c_r, 1, true, ConvInit::TruncNormal02),
            attn_out: conv("attn_out", c_r, c_r, 1, true, ConvInit::TruncNormal02),
            b: conv("b", c_r, cfg.c_in, k_b, false, head_init),
            b_bias: cfg
                .with_bias_cal
                .then(|| conv("b_bias", c_r, cfg.c_in, k_b, false, head_init)),
            c_in: cfg.c_in,
            head_dim: cfg.head_dim,
            zero_init_cal: cfg.zero_init_cal,
            skip_init,
        })
    }

    /// Full VarStore names of the parameters that model-wide initialisers must leave alone:
    /// `<path>.b.weight` (and `<path>.b_bias.weight`) with `zero_init_cal`, otherwise none.
    pub fn skip_init(&self) -> &[String] {
        &self.skip_init
    }

    /// Checks that `xs` is a (B, c_in, T, H, W) clip.
    pub fn check_input(&self, xs: &Tensor) -> Result<(), OpError> {
        check_clip(OP, xs, self.c_in)
    }

    /// Output of the first conv `a` on the frame-pooled input (the reference's hook point
    /// `rf_func.a`). Inputs must have passed [`check_input`](Self::check_input).
    ///
    /// # Shapes
    /// (B, c_in, T, H, W) -> (B, C_r, T, 1, 1)
    pub fn reduce(&self, xs: &Tensor) -> Tensor {
        self.a.forward(&avgpool_hw(xs))
    }

    /// The calibration for `xs`, or an error when `xs` has the wrong shape. There is no
    /// train-time behaviour (no BN, no dropout); `train` keeps the common call shape.
    pub fn f_forward_t(&self, xs: &Tensor, _train: bool) -> Result<Calibration, OpError> {
        self.check_input(xs)?;
        let x = quick_gelu(&self.norm.forward(&self.reduce(xs)));
        let x = &x + self.attention(&self.norm_transformer.forward(&x));
        // With zero_init_cal the heads start at 0, so "+1" makes the calibration start at 1.
        let head = |conv: &nn::Conv3D| {
            let y = conv.forward(&x);
            if self.zero_init_cal {
                y + 1.0
            } else {
                y
            }
        };
        Ok(Calibration {
            weight: head(&self.b),
            bias: self.b_bias.as_ref().map(head),
        })
    }

    /// As [`f_forward_t`](Self::f_forward_t).
    ///
    /// # Panics
    /// When `xs` is not (B, c_in, T, H, W).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Calibration {
        self.f_forward_t(xs, train)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Multi-head self-attention over frames (one token per frame), as the reference lays it out.
    ///
    /// # Shapes
    /// (B, C_r, T, 1, 1) -> (B, C_r, T, 1, 1)
    fn attention(&self, z: &Tensor) -> Tensor {
        let size = z.size();
        let (b, c, t) = (size[0], size[1], size[2]);
        let heads = c / self.head_dim;
        // (B, 3·C_r, T, 1, 1) -> (B, 3, head_dim, heads, T): channel s·C_r + d·heads + h, i.e.
        // the head index is the fastest, as the reference's view does.
        let qkv = self
            .qkv_proj
            .forward(z)
            .view([b, 3, self.head_dim, heads, t]);
        // (B, 3, head_dim, heads, T) -> (3, B, heads, T, head_dim)
        let qkv = qkv.permute([1, 0, 3, 4, 2]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        // The reference scales by C_r^−½, not head_dim^−½; checkpoints were trained with it.
        let scale = (c as f64).powf(-0.5);
        let attn = (q.matmul(&k.transpose(-2, -1)) * scale).softmax(-1, None::<Kind>);
        // (B, heads, T, head_dim) -> (B, heads, head_dim, T) -> (B, C_r, T) -> (B, C_r, T, 1, 1):
        // merged head-major (channel h·head_dim + d), unlike the split above; kept for
        // checkpoints. With one head the reshape is a view, and the unit dims then get the
        // strides the reference's `[..., None, None]` gives them (1, 1): a direct 5-D reshape
        // gives other strides, which make the conv below take another kernel and round
        // differently (2.4e-7 off the reference in the tadaconvnextv2 fixture).
        let out = attn
            .matmul(&v)
            .transpose(-2, -1)
            .reshape([b, c, t])
            .unsqueeze(-1)
            .unsqueeze(-1);
        self.attn_out.forward(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ops::test_util::{assert_grads_reach_all, max_abs_diff, randn};
    use tch::Device;

    fn build(cfg: &RouteFuncwTransformerConfig) -> (nn::VarStore, RouteFuncwTransformer) {
        let vs = nn::VarStore::new(Device::Cpu);
        let rf = RouteFuncwTransformer::new(&(vs.root() / "rf"), cfg).expect("valid config");
        (vs, rf)
    }

    #[test]
    fn names_shapes_and_zero_init_start() {
        let cfg = RouteFuncwTransformerConfig {
            with_bias_cal: true,
            head_dim: 8,
            ..RouteFuncwTransformerConfig::new(32, 2, [3, 3])
        };
        let (vs, rf) = build(&cfg);
        let vars = vs.variables();
        assert_eq!(vars["rf.a.weight"].size(), [16, 32, 3, 1, 1]);
        assert_eq!(vars["rf.qkv_proj.weight"].size(), [48, 16, 1, 1, 1]);
        assert_eq!(vars["rf.attn_out.weight"].size(), [16, 16, 1, 1, 1]);
        assert_eq!(vars["rf.b_bias.weight"].size(), [32, 16, 3, 1, 1]);
        assert_eq!(vars["rf.norm_transformer.bias"].size(), [16]);
        assert_eq!(vars.len(), 12);
        assert_eq!(rf.skip_init(), ["rf.b.weight", "rf.b_bias.weight"]);
        let cal = rf.forward_t(&randn(&[2, 32, 5, 4, 6]), false);
        let ones = Tensor::ones([2, 32, 5, 1, 1], (Kind::Float, Device::Cpu));
        assert_eq!(max_abs_diff(&cal.weight, &ones), 0.0);
        assert_eq!(
            max_abs_diff(&cal.bias.expect("bias calibration"), &ones),
            0.0
        );
    }

    #[test]
    fn without_zero_init_the_raw_head_is_returned() {
        let cfg = RouteFuncwTransformerConfig {
            zero_init_cal: false,
            head_dim: 4,
            ..RouteFuncwTransformerConfig::new(8, 1, [3, 3])
        };
        let (_vs, rf) = build(&cfg);
        assert!(rf.skip_init().is_empty());
        let cal = rf.forward_t(&randn(&[2, 8, 5, 4, 6]), false);
        assert!(cal.bias.is_none());
        // Small trunc-normal(0.02) weights: far from 1, close to 0.
        assert!(cal.weight.abs().max().double_value(&[]) < 0.5);
    }

    #[test]
    fn attention_keeps_its_channel_layout_and_scale() {
        // Two heads of width 4 over C_r = 8, written out channel by channel: head h reads q/k/v
        // channel s·8 + d·2 + h, writes output channel h·4 + d, and scales by 8^-1/2.
        let cfg = RouteFuncwTransformerConfig {
            zero_init_cal: false,
            head_dim: 4,
            ..RouteFuncwTransformerConfig::new(8, 1, [1, 1])
        };
        let (_vs, rf) = build(&cfg);
        let t = 3;
        let z = randn(&[1, 8, t, 1, 1]);
        // (1, 24, T, 1, 1) -> (24, T)
        let qkv = rf.qkv_proj.forward(&z).view([24, t]);
        let mut heads = Vec::new();
        for h in 0..2i64 {
            let rows = |s: i64| {
                let idx: Vec<i64> = (0..4).map(|d| s * 8 + d * 2 + h).collect();
                qkv.index_select(0, &Tensor::from_slice(&idx))
            };
            let (q, k, v) = (rows(0), rows(1), rows(2));
            let attn = (q.transpose(0, 1).matmul(&k) * 8f64.powf(-0.5)).softmax(-1, None::<Kind>);
            // (T, T) @ (T, 4) -> (T, 4) -> (4, T)
            heads.push(attn.matmul(&v.transpose(0, 1)).transpose(0, 1));
        }
        // 2 × (4, T) -> (8, T) -> (1, 8, T, 1, 1)
        let o = Tensor::cat(&heads, 0).reshape([1, 8, t, 1, 1]);
        let expect = rf.attn_out.forward(&o);
        assert!(max_abs_diff(&rf.attention(&z), &expect) < 1e-6);
    }

    #[test]
    fn rejects_bad_config_and_input() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bad_heads = RouteFuncwTransformerConfig {
            head_dim: 6,
            ..RouteFuncwTransformerConfig::new(32, 2, [3, 3])
        };
        assert!(RouteFuncwTransformer::new(&vs.root(), &bad_heads).is_err());
        let (_vs, rf) = build(&RouteFuncwTransformerConfig {
            head_dim: 8,
            ..RouteFuncwTransformerConfig::new(16, 2, [3, 3])
        });
        assert!(rf.f_forward_t(&randn(&[2, 8, 5, 4, 6]), false).is_err());
    }

    #[test]
    fn gradients_reach_every_parameter() {
        tch::manual_seed(3);
        let cfg = RouteFuncwTransformerConfig {
            with_bias_cal: true,
            head_dim: 4,
            ..RouteFuncwTransformerConfig::new(16, 2, [3, 3])
        };
        let (vs, rf) = build(&cfg);
        let x = randn(&[2, 16, 5, 3, 3]);
        let target = randn(&[2, 16, 5, 1, 1]);
        assert_grads_reach_all(&vs, &["rf.b.weight", "rf.b_bias.weight"], || {
            let cal = rf.forward_t(&x, true);
            let bias = cal.bias.expect("bias calibration");
            (cal.weight * bias - &target).square().mean(None)
        });
    }
}
