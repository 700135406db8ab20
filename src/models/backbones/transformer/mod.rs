//! The `Transformer` meta-architecture: ViViT (joint space-time attention, tubelet stem) and
//! TimeSformer (divided space-time attention, patch stem), chosen by VIDEO.BACKBONE.BRANCH.NAME;
//! docs/models.md#vivit-and-timesformer. Its pieces (spec, stems, layers) also make the
//! factorised encoder (`backbones::vivit_fe`).

mod attention;
mod layers;
mod spec;
mod stem;

#[cfg(test)]
pub(crate) mod tests;

use tch::nn::{self, Module};
use tch::Tensor;

use crate::config::Config;
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

pub use attention::{Attention, Divide, FeedForward};
pub use layers::{layer_norm, TransformerLayer, LAYER_NORM_EPS};
pub use spec::{LayerKind, TransformerSpec};
pub use stem::TokenStem;

use spec::{KEY_CROP, KEY_FRAMES, KEY_PATCH};

/// A learned embedding drawn as the reference's trunc_normal_(std 0.02), whose ±2 cut lies at
/// 100σ and never fires: a plain N(0, 0.02²).
pub(crate) fn embedding(path: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    path.var(
        name,
        dims,
        nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
    )
}

/// The layers `layers.i` (or `layers_temporal.i`) with their stochastic-depth rates, taken from
/// one linear ramp over `total` layers starting at index `first`.
pub(crate) fn build_layers(
    path: &nn::Path,
    spec: &TransformerSpec,
    count: usize,
    first: usize,
    total: usize,
) -> (Vec<TransformerLayer>, Vec<String>) {
    (0..count)
        .map(|i| {
            let p = path / i;
            let layer = TransformerLayer::new(&p, spec, spec.drop_path_rate(first + i, total));
            (layer, module_path(&p))
        })
        .unzip()
}

/// ViViT / TimeSformer (module `backbone`): `stem`, class token `cls_token` and positional
/// embedding `pos_embd` over all tokens, the layers `layers.i`, and `norm`; the output is the
/// normalised class token.
///
/// Init as the reference: embeddings trunc-normal(0.02), Linear layers trunc-normal(0.02) / 0,
/// LayerNorms 1 / 0, the stem PyTorch's default.
///
/// Variables (relative to the path): `stem.conv1.*`, `cls_token` (1, 1, D), `pos_embd`
/// (1, 1 + T'·(S/P)², D), `layers.{i}.*`, `norm.*`.
#[derive(Debug)]
pub struct Transformer {
    stem: TokenStem,
    cls_token: Tensor,
    pos_embd: Tensor,
    layers: Vec<TransformerLayer>,
    norm: nn::LayerNorm,
    spec: TransformerSpec,
    tap_stem: String,
    tap_layers: Vec<String>,
    tap_norm: String,
}

impl Transformer {
    pub fn new(path: &nn::Path, cfg: &Config) -> Result<Self, ModelError> {
        let spec = TransformerSpec::from_config(cfg)?;
        Ok(Self::from_spec(path, &spec))
    }

    pub fn from_spec(path: &nn::Path, spec: &TransformerSpec) -> Self {
        let d = spec.width;
        let stem_path = path / "stem";
        let tokens = spec.token_frames() * spec.patches_per_frame();
        let (layers, tap_layers) =
            build_layers(&(path / "layers"), spec, spec.depth, 0, spec.depth);
        Self {
            stem: TokenStem::new(&stem_path, spec),
            tap_stem: module_path(&stem_path),
            pos_embd: embedding(path, "pos_embd", &[1, tokens + 1, d]),
            cls_token: embedding(path, "cls_token", &[1, 1, d]),
            layers,
            tap_layers,
            tap_norm: module_path(&(path / "norm")),
            norm: layer_norm(path / "norm", d),
            spec: spec.clone(),
        }
    }

    pub fn spec(&self) -> &TransformerSpec {
        &self.spec
    }

    /// The width D of the output features.
    pub fn out_features(&self) -> i64 {
        self.spec.width
    }

    pub fn in_channels(&self) -> i64 {
        self.spec.in_channels
    }

    /// # Shapes
    /// (B, C, T, S, S) -> (B, D), with T = NUM_INPUT_FRAMES and S = TRAIN_CROP_SIZE (the
    /// positional embedding's size).
    ///
    /// # Panics
    /// On another clip size, like any tch layer given a wrong shape.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording `stem` (B, L, D), every layer (B, 1 + L, D) and `norm`.
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let (tokens, [t, h, w]) = self.stem.forward(xs);
        taps.record(&self.tap_stem, &tokens);
        let (s, grid) = (&self.spec, self.spec.grid());
        assert!(
            t == s.token_frames() && h == grid && w == grid,
            "the clip gives {t}×{h}×{w} tokens, but {KEY_FRAMES} = {}, {KEY_CROP} = {} and \
             {KEY_PATCH} = {} size the positional embedding for {}×{grid}×{grid}",
            s.num_frames,
            s.image_size,
            s.patch_size,
            s.token_frames()
        );
        let b = tokens.size()[0];
        // (1, 1, D) -> (B, 1, D) in front of the tokens: (B, 1 + L, D)
        let cls = self.cls_token.expand([b, 1, s.width], false);
        let mut x = Tensor::cat(&[cls, tokens], 1) + &self.pos_embd;
        for (layer, name) in self.layers.iter().zip(&self.tap_layers) {
            x = layer.forward_t(&x, h * w, train);
            taps.record(name, &x);
        }
        let x = self.norm.forward(&x);
        taps.record(&self.tap_norm, &x);
        // (B, 1 + L, D) -> class token (B, D)
        x.select(1, 0)
    }
}
