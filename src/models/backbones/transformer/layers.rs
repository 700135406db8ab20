//! The transformer layers (VIDEO.BACKBONE.BRANCH.NAME): `BaseTransformerLayer` (ViViT, joint
//! attention) and `TimesformerLayer` (divided space-time attention), both pre-norm with
//! stochastic depth on every residual.

use tch::nn::{self, Module};
use tch::Tensor;

use super::attention::{Attention, Divide, FeedForward};
use super::spec::{LayerKind, TransformerSpec};
use crate::models::backbones::tadaformer::drop_path;

/// The LayerNorm eps of every ViViT / TimeSformer LayerNorm.
pub const LAYER_NORM_EPS: f64 = 1e-6;

/// `nn.LayerNorm(width, eps=1e-6)`, weight 1 and bias 0.
pub fn layer_norm(path: nn::Path, width: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: LAYER_NORM_EPS,
        ..Default::default()
    };
    nn::layer_norm(path, vec![width], config)
}

/// Stochastic depth per sample (the reference's DropPath mode "BLC"): one Bernoulli(1 − p) draw
/// per sample keeps or drops its whole residual, kept ones scaled by 1/(1 − p).
///
/// # Shapes
/// (B, L, D) -> (B, L, D)
fn drop_path_blc(x: &Tensor, p: f64, train: bool) -> Tensor {
    // (B, L, D) -> (L, B, D): the sequence-first per-clip drop of TAdaFormer with clips of one
    // frame is the same draw and the same mask.
    drop_path(&x.transpose(0, 1), p, 1, train).transpose(0, 1)
}

/// Attention with its pre-norm: `norm` + `attn` (or `norm_temporal` + `attn_temporal`).
#[derive(Debug)]
struct NormedAttention {
    norm: nn::LayerNorm,
    attn: Attention,
}

impl NormedAttention {
    fn new(path: &nn::Path, norm: &str, attn: &str, spec: &TransformerSpec) -> Self {
        Self {
            norm: layer_norm(path / norm, spec.width),
            attn: Attention::new(
                &(path / attn),
                spec.width,
                spec.num_heads,
                spec.attn_dropout,
                spec.ff_dropout,
            ),
        }
    }
}

/// One layer, joint or divided:
///
/// ```text
/// x = x + dp(attn_temporal(norm_temporal(x)))     (TimesformerLayer only: attention over time)
/// x = x + dp(attn(norm(x)))                       joint, or over space (TimesformerLayer)
/// x = x + dp(ffn(norm_ffn(x)))
/// ```
///
/// Variables (relative to the path): `norm_temporal.*`, `attn_temporal.*` (TimesformerLayer),
/// `norm.*`, `attn.*`, `norm_ffn.*`, `ffn.net.{0,3}.*`.
#[derive(Debug)]
pub struct TransformerLayer {
    temporal: Option<NormedAttention>,
    attn: NormedAttention,
    norm_ffn: nn::LayerNorm,
    ffn: FeedForward,
    drop_path: f64,
}

impl TransformerLayer {
    /// `drop_path` is this layer's stochastic-depth rate.
    pub fn new(path: &nn::Path, spec: &TransformerSpec, drop_path: f64) -> Self {
        let temporal = (spec.layer == LayerKind::Divided)
            .then(|| NormedAttention::new(path, "norm_temporal", "attn_temporal", spec));
        Self {
            temporal,
            attn: NormedAttention::new(path, "norm", "attn", spec),
            norm_ffn: layer_norm(path / "norm_ffn", spec.width),
            ffn: FeedForward::new(&(path / "ffn"), spec.width, spec.mlp_mult, spec.ff_dropout),
            drop_path,
        }
    }

    /// `patches` is the number of patch tokens per frame, which divided attention needs to
    /// split the sequence; joint attention ignores it.
    ///
    /// # Shapes
    /// (B, 1 + L', D) -> (B, 1 + L', D), class token first
    pub fn forward_t(&self, x: &Tensor, patches: i64, train: bool) -> Tensor {
        let dp = |r: Tensor| drop_path_blc(&r, self.drop_path, train);
        let x = match &self.temporal {
            Some(t) => {
                let (frames, patches) = frames_and_patches(x, patches);
                let time = t.attn.forward_divided(
                    &t.norm.forward(x),
                    frames,
                    patches,
                    Divide::Time,
                    train,
                );
                let x = x + dp(time);
                let normed = self.attn.norm.forward(&x);
                let space =
                    self.attn
                        .attn
                        .forward_divided(&normed, frames, patches, Divide::Space, train);
                &x + dp(space)
            }
            None => {
                let normed = self.attn.norm.forward(x);
                x + dp(self.attn.attn.forward_joint(&normed, train))
            }
        };
        let ffn = self.ffn.forward_t(&self.norm_ffn.forward(&x), train);
        &x + dp(ffn)
    }
}

/// Frames and patches per frame of a (B, 1 + F·N, D) token sequence of N patches per frame.
///
/// # Panics
/// When the tokens are not whole frames of `patches` (the backbone checks the input first).
fn frames_and_patches(x: &Tensor, patches: i64) -> (i64, i64) {
    let l = x.size()[1] - 1;
    assert!(
        patches > 0 && l % patches == 0,
        "TimesformerLayer: {l} patch tokens are not frames of {patches}"
    );
    (l / patches, patches)
}
