//! `TAdaFormerBlock` (module `layers.i`): a CLIP transformer layer with one or two TAda branches
//! (`tada`, `tada2`) on the patch tokens.

use tch::nn::{self, Module};
use tch::Tensor;

use super::{layer_norm, TAdaFormerSpec, KEY_RF_R, ROUTING_HEAD_DIM};
use crate::models::ops::{quick_gelu, CalDim, TAdaConv2dV2, TAdaConv2dV2Config};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

/// The reference's transformer init for Linear layers: trunc-normal(0.02) weight (cut at ±2,
/// i.e. ±100σ, so a plain normal), zero bias.
fn trunc_normal_02() -> nn::Init {
    nn::Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    }
}

/// nn.Linear as the block initialises it: trunc-normal(0.02) weight, zero bias, or all zero
/// (also the ViViT / TimeSformer layers' init, `backbones::transformer`).
pub fn linear(path: nn::Path, d_in: i64, d_out: i64, zero: bool) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: if zero {
            nn::Init::Const(0.0)
        } else {
            trunc_normal_02()
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(path, d_in, d_out, config)
}

/// Conv3d with bias over time only: kernel (k, 1, 1), padding (k / 2, 0, 0); initialised like
/// [`linear`].
fn temporal_conv(path: nn::Path, c_in: i64, c_out: i64, k: i64, zero: bool) -> nn::Conv3D {
    let init = if zero {
        nn::Init::Const(0.0)
    } else {
        trunc_normal_02()
    };
    let config = nn::ConvConfigND::<[i64; 3]> {
        stride: [1, 1, 1],
        padding: [k / 2, 0, 0],
        dilation: [1, 1, 1],
        groups: 1,
        bias: true,
        ws_init: init,
        bs_init: nn::Init::Const(0.0),
        padding_mode: nn::PaddingMode::Zeros,
    };
    nn::conv(path, c_in, c_out, [k, 1, 1], config)
}

/// The two projections around the TAdaConv: on tokens (`TAdaBlock`) or, with TEMP_ENHANCE, on
/// clips with a 3-frame `tada_pre_proj` (`TAdaBlockTempEnhanced`).
#[derive(Debug)]
enum Projections {
    Tokens {
        pre: nn::Linear,
        post: nn::Linear,
    },
    // Boxed: a Conv3D carries its whole config, 7× the size of a Linear.
    Clip {
        pre: Box<nn::Conv3D>,
        post: Box<nn::Conv3D>,
    },
}

/// A TAda branch (`tada`, `tada2`): `tada_pre_proj` (W → d) → `tadaconv` (depthwise 3×3
/// TAdaConv2dV2, cal cout, calibrated bias, internal routing function and temporal aggregation)
/// → QuickGELU → `tada_proj` (d → W, zero-initialised, so the branch starts as exactly 0 and a
/// CLIP-initialised model starts as CLIP).
///
/// Variables (relative to the path): `tada_pre_proj.{weight,bias}` ((d, W) or (d, W, 3, 1, 1)),
/// `tadaconv.*`, `tada_proj.{weight,bias}` ((W, d) or (W, d, 1, 1, 1)).
#[derive(Debug)]
pub struct TAdaBlock {
    proj: Projections,
    tadaconv: TAdaConv2dV2,
    freeze_bn: bool,
    tap_tadaconv: String,
    tap_rf: [String; 2],
}

impl TAdaBlock {
    pub fn new(path: &nn::Path, spec: &TAdaFormerSpec) -> Result<Self, ModelError> {
        let (w, d) = (spec.width, spec.tada_width);
        let proj = if spec.temp_enhance {
            Projections::Clip {
                pre: Box::new(temporal_conv(path / "tada_pre_proj", w, d, 3, false)),
                post: Box::new(temporal_conv(path / "tada_proj", d, w, 1, true)),
            }
        } else {
            Projections::Tokens {
                pre: linear(path / "tada_pre_proj", w, d, false),
                post: linear(path / "tada_proj", d, w, true),
            }
        };
        let cfg = TAdaConv2dV2Config {
            groups: d,
            cal_dim: CalDim::Cout,
            // The block moves tokens to clips itself, so the op needs no frame count.
            num_frames: None,
            rf_r: spec.route_func_r,
            rf_k: spec.route_func_k,
            head_dim: ROUTING_HEAD_DIM,
            ..TAdaConv2dV2Config::new(d, d, 3)
        };
        let conv_path = path / "tadaconv";
        let tadaconv = TAdaConv2dV2::new(&conv_path, &cfg)
            .map_err(|e| ModelError::invalid(KEY_RF_R, e.to_string()))?;
        let rf = module_path(&(&conv_path / "rf_func"));
        Ok(Self {
            proj,
            tadaconv,
            freeze_bn: spec.freeze_bn,
            tap_tadaconv: module_path(&conv_path),
            tap_rf: [format!("{rf}.0"), format!("{rf}.1")],
        })
    }

    /// The TAdaConv with its routing function run here, so that the calibrations can be
    /// recorded (`rf_func.0` weight, `rf_func.1` bias, as the reference's hook lists them).
    ///
    /// # Shapes
    /// (B, d, T, h, w) -> (B, d, T, h, w)
    fn tadaconv(&self, clip: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let rf = self
            .tadaconv
            .rf_func
            .as_ref()
            .expect("the TAdaFormer TAdaConv is built with its routing function");
        let cal = rf.forward_t(clip, train);
        taps.record(&self.tap_rf[0], &cal.weight);
        if let Some(bias) = &cal.bias {
            taps.record(&self.tap_rf[1], bias);
        }
        // BN.FREEZE keeps bn_a/bn_b on their running statistics, as the reference's train().
        self.tadaconv
            .forward_t(clip, Some(&cal), train && !self.freeze_bn)
    }

    /// The branch on the patch tokens of B clips of `frames` frames each. Records `tadaconv` (in
    /// the token layout, or the clip layout with TEMP_ENHANCE, as the reference's hook sees it).
    ///
    /// # Shapes
    /// (h·w, B·T, W) -> (h·w, B·T, W), a square h×w grid, frame index fastest in B·T
    pub fn forward_taps(
        &self,
        tokens: &Tensor,
        frames: i64,
        train: bool,
        taps: &mut Taps,
    ) -> Tensor {
        let size = tokens.size();
        let (l, n) = (size[0], size[1]);
        let side = (l as f64).sqrt().round() as i64;
        assert!(
            side * side == l && n % frames == 0,
            "TAdaFormer: {l} patch tokens are not a square grid, or {n} frames are not clips of {frames}"
        );
        let to_clip = |x: &Tensor| {
            let c = x.size()[2];
            // (h·w, B·T, C) -> (h, w, B, T, C) -> (B, C, T, h, w)
            x.reshape([side, side, n / frames, frames, c])
                .permute([2, 4, 3, 0, 1])
        };
        let to_tokens = |x: &Tensor| {
            let c = x.size()[1];
            // (B, C, T, h, w) -> (h, w, B, T, C) -> (h·w, B·T, C)
            x.permute([3, 4, 0, 2, 1]).reshape([l, n, c])
        };
        match &self.proj {
            Projections::Tokens { pre, post } => {
                let y = to_tokens(&self.tadaconv(&to_clip(&pre.forward(tokens)), train, taps));
                taps.record(&self.tap_tadaconv, &y);
                post.forward(&quick_gelu(&y))
            }
            Projections::Clip { pre, post } => {
                let y = self.tadaconv(&pre.forward(&to_clip(tokens)), train, taps);
                taps.record(&self.tap_tadaconv, &y);
                to_tokens(&post.forward(&quick_gelu(&y)))
            }
        }
    }
}

/// torch `nn.MultiheadAttention(W, heads)` used as self-attention on sequence-first input, with
/// its packed in-projection.
///
/// Init: `in_proj_weight` Xavier-uniform, `in_proj_bias` 0 (PyTorch's own), `out_proj`
/// trunc-normal(0.02) / 0 (the block's initialiser reaches it as a Linear).
///
/// Variables (relative to the path): `in_proj_weight` (3W, W), `in_proj_bias` (3W),
/// `out_proj.{weight,bias}`.
#[derive(Debug)]
pub struct MultiheadAttention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    num_heads: i64,
    dropout: f64,
}

impl MultiheadAttention {
    pub fn new(path: &nn::Path, width: i64, num_heads: i64, dropout: f64) -> Self {
        // Xavier-uniform over (3W, W): bound √(6 / (fan_in + fan_out)).
        let bound = (6.0 / (4 * width) as f64).sqrt();
        Self {
            in_proj_weight: path.var(
                "in_proj_weight",
                &[3 * width, width],
                nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            ),
            in_proj_bias: path.var("in_proj_bias", &[3 * width], nn::Init::Const(0.0)),
            out_proj: linear(path / "out_proj", width, width, false),
            num_heads,
            dropout,
        }
    }

    /// q = k = v = x, no mask; softmax(q·kᵀ/√head_dim)·v per head, through the same
    /// `scaled_dot_product_attention` call and tensor layout as torch's
    /// `F.multi_head_attention_forward` with `need_weights=False`.
    ///
    /// # Shapes
    /// (L, N, W) -> (L, N, W)
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let size = x.size();
        let (l, n, w) = (size[0], size[1], size[2]);
        let (h, hd) = (self.num_heads, w / self.num_heads);
        // (L, N, 3W) -> (L, N, 3, W) -> (3, L, N, W), made contiguous as torch does.
        let qkv = x
            .linear(&self.in_proj_weight, Some(&self.in_proj_bias))
            .view([l, n, 3, w])
            .permute([2, 0, 1, 3])
            .contiguous();
        // (L, N, W) -> (L, N·H, hd) -> (N·H, L, hd) -> (N, H, L, hd)
        let heads = |i: i64| {
            qkv.get(i)
                .view([l, n * h, hd])
                .transpose(0, 1)
                .view([n, h, l, hd])
        };
        let p = if train { self.dropout } else { 0.0 };
        let out = Tensor::scaled_dot_product_attention(
            &heads(0),
            &heads(1),
            &heads(2),
            None::<Tensor>,
            p,
            false,
            None,
            false,
        );
        // (N, H, L, hd) -> (L, N, H, hd) -> (L·N, W)
        let out = out.permute([2, 0, 1, 3]).contiguous().view([l * n, w]);
        // (L·N, W) -> (L, N, W)
        self.out_proj.forward(&out).view([l, n, w])
    }
}

/// Stochastic depth per video (the reference's DropPath mode "L(BT)C"): one Bernoulli(1 − p)
/// draw per clip keeps or drops the residual of all its frames, kept ones scaled by 1/(1 − p).
/// Identity in evaluation mode or with p = 0. Draws from torch's global generator, like dropout.
///
/// # Shapes
/// (L, B·T, W) -> (L, B·T, W)
pub fn drop_path(x: &Tensor, p: f64, frames: i64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        return x.shallow_clone();
    }
    let size = x.size();
    let (l, n, w) = (size[0], size[1], size[2]);
    let b = n / frames;
    let keep = 1.0 - p;
    // floor(keep + U[0, 1)) is 1 with probability keep, else 0.
    let mask = (Tensor::rand([b], (x.kind(), x.device())) + keep).floor();
    // (L, B·T, W) -> (L, B, T, W), times the mask (1, B, 1, 1), back to (L, B·T, W)
    (x.reshape([l, b, frames, w]) / keep * mask.view([1, b, 1, 1])).reshape([l, n, w])
}

/// One TAdaFormer layer on (L, B·T', W) tokens, class token first in L:
///
/// ```text
/// x = x + dp(cat(0, tada(x[1:])))
/// x = x + dp(attn(ln_1(x)))
/// x = x + dp(cat(0, tada2(x[1:])))      (DOUBLE_TADA)
/// x = x + dp(mlp(ln_2(x)))              mlp = c_proj(QuickGELU(c_fc(x)))
/// ```
///
/// Init as the reference: Linear layers trunc-normal(0.02) / 0 (see [`TAdaBlock`] and
/// [`MultiheadAttention`] for the exceptions), LayerNorms 1 / 0.
///
/// Variables (relative to the path): `tada.*`, `tada2.*` (DOUBLE_TADA), `attn.*`,
/// `ln_1.*`, `mlp.c_fc.*` (4W, W), `mlp.c_proj.*` (W, 4W), `ln_2.*`.
#[derive(Debug)]
pub struct TAdaFormerBlock {
    tada: TAdaBlock,
    tada2: Option<TAdaBlock>,
    attn: MultiheadAttention,
    ln_1: nn::LayerNorm,
    c_fc: nn::Linear,
    c_proj: nn::Linear,
    ln_2: nn::LayerNorm,
    drop_path: f64,
    tap_tada: [String; 2],
}

impl TAdaFormerBlock {
    /// `drop_path` is this layer's stochastic-depth rate.
    pub fn new(path: &nn::Path, spec: &TAdaFormerSpec, drop_path: f64) -> Result<Self, ModelError> {
        let w = spec.width;
        let tada = TAdaBlock::new(&(path / "tada"), spec)?;
        let tada2 = if spec.double_tada {
            Some(TAdaBlock::new(&(path / "tada2"), spec)?)
        } else {
            None
        };
        let mlp = path / "mlp";
        Ok(Self {
            tada,
            tada2,
            attn: MultiheadAttention::new(&(path / "attn"), w, spec.num_heads, spec.attn_dropout),
            ln_1: layer_norm(path / "ln_1", w),
            c_fc: linear(&mlp / "c_fc", w, 4 * w, false),
            c_proj: linear(&mlp / "c_proj", 4 * w, w, false),
            ln_2: layer_norm(path / "ln_2", w),
            drop_path,
            tap_tada: [
                module_path(&(path / "tada")),
                module_path(&(path / "tada2")),
            ],
        })
    }

    /// The layer on the tokens of B clips of `frames` frames each, recording `tada` / `tada2`
    /// (patch tokens only, as the reference's hook sees them) and what they record.
    ///
    /// # Shapes
    /// (L, B·frames, W) -> (L, B·frames, W), L = 1 + h·w
    pub fn forward_taps(&self, x: &Tensor, frames: i64, train: bool, taps: &mut Taps) -> Tensor {
        let dp = |r: &Tensor| drop_path(r, self.drop_path, frames, train);
        let tada_residual = |x: &Tensor, branch: &TAdaBlock, tap: &str, taps: &mut Taps| {
            let l = x.size()[0];
            let y = branch.forward_taps(&x.narrow(0, 1, l - 1), frames, train, taps);
            taps.record(tap, &y);
            // The class token gets no TAda update: (1, N, W) zeros in front of the patches.
            dp(&Tensor::cat(&[x.narrow(0, 0, 1).zeros_like(), y], 0))
        };
        let x = x + tada_residual(x, &self.tada, &self.tap_tada[0], taps);
        let x = &x + dp(&self.attn.forward_t(&self.ln_1.forward(&x), train));
        let x = match &self.tada2 {
            Some(tada2) => &x + tada_residual(&x, tada2, &self.tap_tada[1], taps),
            None => x,
        };
        let hidden = quick_gelu(&self.c_fc.forward(&self.ln_2.forward(&x)));
        &x + dp(&self.c_proj.forward(&hidden))
    }
}
