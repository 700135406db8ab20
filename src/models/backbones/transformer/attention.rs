//! The reference's transformer `Attention` (packed `to_qkv`, `proj`) with its two forwards:
//! joint attention over every token (ViViT) and divided attention over time or space with a
//! class token that attends to everything (TimeSformer).

use tch::nn::{self, Module};
use tch::Tensor;

use crate::models::backbones::tadaformer::linear;

/// Which tokens attend to each other in divided attention; tokens are ordered (frame, patch),
/// patch fastest, after one class token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divide {
    /// Each patch position over the frames.
    Time,
    /// Each frame over its patches.
    Space,
}

fn dropout(xs: &Tensor, p: f64, train: bool) -> Tensor {
    if train && p > 0.0 {
        xs.dropout(p, train)
    } else {
        xs.shallow_clone()
    }
}

/// Multi-head self-attention. Init: both Linear layers trunc-normal(0.02) / 0, as the reference's
/// transformer initialiser.
///
/// Variables (relative to the path): `to_qkv.{weight,bias}` (3D, D), `proj.{weight,bias}` (D, D).
#[derive(Debug)]
pub struct Attention {
    to_qkv: nn::Linear,
    proj: nn::Linear,
    num_heads: i64,
    attn_dropout: f64,
    ff_dropout: f64,
}

impl Attention {
    pub fn new(
        path: &nn::Path,
        width: i64,
        num_heads: i64,
        attn_dropout: f64,
        ff_dropout: f64,
    ) -> Self {
        Self {
            to_qkv: linear(path / "to_qkv", width, 3 * width, false),
            proj: linear(path / "proj", width, width, false),
            num_heads,
            attn_dropout,
            ff_dropout,
        }
    }

    /// `proj` and its dropout over the merged heads.
    fn project(&self, xs: &Tensor, train: bool) -> Tensor {
        dropout(&self.proj.forward(xs), self.ff_dropout, train)
    }

    /// softmax(q·kᵀ/√d_h)·v per head over all L tokens.
    ///
    /// # Shapes
    /// (B, L, D) -> (B, L, D)
    pub fn forward_joint(&self, x: &Tensor, train: bool) -> Tensor {
        let size = x.size();
        let (b, l, d) = (size[0], size[1], size[2]);
        let h = self.num_heads;
        // (B, L, 3D) -> (B, L, 3, H, d_h) -> (3, B, H, L, d_h)
        let qkv = self
            .to_qkv
            .forward(x)
            .reshape([b, l, 3, h, d / h])
            .permute([2, 0, 3, 1, 4]);
        let p = if train { self.attn_dropout } else { 0.0 };
        let out = Tensor::scaled_dot_product_attention(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None::<Tensor>,
            p,
            false,
            None,
            false,
        );
        // (B, H, L, d_h) -> (B, L, H, d_h) -> (B, L, D)
        let out = out.transpose(1, 2).reshape([b, l, d]);
        self.project(&out, train)
    }

    /// softmax(q·kᵀ)·v with q already scaled, and attention dropout.
    ///
    /// # Shapes
    /// q (G, S, d_h), k and v (G, S', d_h) -> (G, S, d_h)
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, train: bool) -> Tensor {
        let attn = q.matmul(&k.transpose(1, 2)).softmax(-1, None);
        dropout(&attn, self.attn_dropout, train).matmul(v)
    }

    /// Divided attention on a class token and `frames` × `patches` tokens: the class token
    /// attends to every token; each patch token attends to the class token and to the tokens of
    /// its own group ([`Divide`]).
    ///
    /// # Shapes
    /// (B, 1 + frames·patches, D) -> (B, 1 + frames·patches, D)
    pub fn forward_divided(
        &self,
        x: &Tensor,
        frames: i64,
        patches: i64,
        divide: Divide,
        train: bool,
    ) -> Tensor {
        let size = x.size();
        let (b, l, d) = (size[0], size[1], size[2]);
        let (h, dh) = (self.num_heads, d / self.num_heads);
        let bh = b * h;
        let qkv = self.to_qkv.forward(x).chunk(3, -1);
        // (B, L, D) -> (B, L, H, d_h) -> (B, H, L, d_h) -> (B·H, L, d_h)
        let heads = |t: &Tensor| {
            t.reshape([b, l, h, dh])
                .permute([0, 2, 1, 3])
                .reshape([bh, l, dh])
        };
        let q = heads(&qkv[0]) * (dh as f64).powf(-0.5);
        let (k, v) = (heads(&qkv[1]), heads(&qkv[2]));
        let cls_out = self.attend(&q.narrow(1, 0, 1), &k, &v, train);
        let (groups, group_len) = match divide {
            Divide::Time => (patches, frames),
            Divide::Space => (frames, patches),
        };
        let group = |t: &Tensor| {
            // (B·H, F·N, d_h) -> (B·H, F, N, d_h)
            let t = t.narrow(1, 1, l - 1).reshape([bh, frames, patches, dh]);
            let t = match divide {
                // -> (B·H, N, F, d_h): one group per patch position
                Divide::Time => t.permute([0, 2, 1, 3]),
                Divide::Space => t,
            };
            // -> (B·H·groups, group_len, d_h)
            t.reshape([bh * groups, group_len, dh])
        };
        // (B·H, 1, d_h) -> (B·H, groups, 1, d_h) -> (B·H·groups, 1, d_h): the class token's key
        // and value in front of every group.
        let cls_each = |t: &Tensor| {
            t.narrow(1, 0, 1)
                .unsqueeze(1)
                .expand([bh, groups, 1, dh], false)
                .reshape([bh * groups, 1, dh])
        };
        let k_ = Tensor::cat(&[cls_each(&k), group(&k)], 1);
        let v_ = Tensor::cat(&[cls_each(&v), group(&v)], 1);
        let out = self.attend(&group(&q), &k_, &v_, train);
        // (B·H·groups, group_len, d_h) -> (B·H, groups, group_len, d_h)
        let out = out.reshape([bh, groups, group_len, dh]);
        let out = match divide {
            // -> (B·H, F, N, d_h)
            Divide::Time => out.permute([0, 2, 1, 3]),
            Divide::Space => out,
        };
        // (B·H, F, N, d_h) -> (B·H, F·N, d_h), the class token back in front: (B·H, L, d_h)
        let out = Tensor::cat(&[cls_out, out.reshape([bh, l - 1, dh])], 1);
        // (B·H, L, d_h) -> (B, H, L, d_h) -> (B, L, H, d_h) -> (B, L, D)
        let out = out
            .reshape([b, h, l, dh])
            .permute([0, 2, 1, 3])
            .reshape([b, l, d]);
        self.project(&out, train)
    }
}

/// The transformer MLP `ffn.net`: Linear (`net.0`) → GELU → dropout → Linear (`net.3`) → dropout.
///
/// Variables (relative to the path): `net.0.{weight,bias}` (mD, D), `net.3.{weight,bias}` (D, mD).
#[derive(Debug)]
pub struct FeedForward {
    fc1: nn::Linear,
    fc2: nn::Linear,
    dropout: f64,
}

impl FeedForward {
    pub fn new(path: &nn::Path, width: i64, mult: i64, dropout: f64) -> Self {
        let net = path / "net";
        Self {
            fc1: linear(&net / "0", width, mult * width, false),
            fc2: linear(&net / "3", mult * width, width, false),
            dropout,
        }
    }

    /// # Shapes
    /// (…, D) -> (…, D)
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let hidden = dropout(&self.fc1.forward(x).gelu("none"), self.dropout, train);
        dropout(&self.fc2.forward(&hidden), self.dropout, train)
    }
}
