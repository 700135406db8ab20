//! `PatchEmbedStem` / `TubeletEmbeddingStem` (module `stem`): a Conv3d whose kernel equals its
//! stride cuts the clip into t×P×P tubelets (t = 1 for patches) and embeds each as one token.

use tch::nn::{self, Module};
use tch::Tensor;

use super::spec::TransformerSpec;

/// Variables (relative to the path): `conv1.{weight,bias}` ((D, C, t, P, P), (D)), PyTorch's
/// default init U(±1/√fan_in) for both.
#[derive(Debug)]
pub struct TokenStem {
    conv1: nn::Conv3D,
    patch_size: i64,
}

impl TokenStem {
    pub fn new(path: &nn::Path, spec: &TransformerSpec) -> Self {
        let (p, t) = (spec.patch_size, spec.tubelet_size);
        let bound = ((spec.in_channels * t * p * p) as f64).powf(-0.5);
        let init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let config = nn::ConvConfigND::<[i64; 3]> {
            stride: [t, p, p],
            padding: [0, 0, 0],
            dilation: [1, 1, 1],
            groups: 1,
            bias: true,
            ws_init: init,
            bs_init: init,
            padding_mode: nn::PaddingMode::Zeros,
        };
        Self {
            conv1: nn::conv(
                path / "conv1",
                spec.in_channels,
                spec.width,
                [t, p, p],
                config,
            ),
            patch_size: p,
        }
    }

    /// Tokens ordered (tubelet, row, column), column fastest; also returns the patch grid
    /// (T', h, w).
    ///
    /// # Panics
    /// When H or W is not a multiple of the patch size, as the reference's assertion.
    ///
    /// # Shapes
    /// (B, C, T, H, W) -> (B, T'·h·w, D)
    pub fn forward(&self, xs: &Tensor) -> (Tensor, [i64; 3]) {
        let size = xs.size();
        let (h, w, p) = (size[3], size[4], self.patch_size);
        assert!(
            h % p == 0 && w % p == 0,
            "the clip's {h}×{w} frames are not a whole number of {p}×{p} patches"
        );
        let x = self.conv1.forward(xs);
        let s = x.size();
        // (B, D, T', h, w) -> (B, D, T'·h·w) -> (B, T'·h·w, D)
        let tokens = x.reshape([s[0], s[1], -1]).permute([0, 2, 1]);
        (tokens, [s[2], s[3], s[4]])
    }
}
