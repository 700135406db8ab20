//! The ViViT factorised encoder (`FactorizedTransformer`, docs/models.md#vivit-and-timesformer):
//! a spatial transformer over the patches of each tubelet frame, then a temporal transformer
//! over the frames' class tokens.

#[cfg(test)]
mod tests;

use tch::nn::{self, Module};
use tch::Tensor;

use crate::config::Config;
use crate::models::backbones::transformer::{
    build_layers, embedding, layer_norm, TokenStem, TransformerLayer, TransformerSpec,
};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

/// The factorised encoder (module `backbone`):
///
/// ```text
/// per tubelet frame:  [cls_token, patches] + pos_embd -> layers.i -> norm -> class token
/// per clip:           [cls_token_out, frame tokens] + temp_embd -> layers_temporal.i -> norm_out
/// ```
///
/// and the output is the clip's class token. Stochastic depth ramps over the DEPTH +
/// DEPTH_TEMP layers together. Init as [`crate::models::backbones::transformer::Transformer`].
///
/// Variables (relative to the path): `stem.conv1.*`, `pos_embd` (1, 1 + (S/P)², D), `temp_embd`
/// (1, 1 + T/t, D), `cls_token` and `cls_token_out` (1, 1, D), `layers.{i}.*`, `norm.*`,
/// `layers_temporal.{i}.*`, `norm_out.*`.
#[derive(Debug)]
pub struct FactorizedTransformer {
    stem: TokenStem,
    pos_embd: Tensor,
    temp_embd: Tensor,
    cls_token: Tensor,
    cls_token_out: Tensor,
    layers: Vec<TransformerLayer>,
    norm: nn::LayerNorm,
    layers_temporal: Vec<TransformerLayer>,
    norm_out: nn::LayerNorm,
    spec: TransformerSpec,
    /// Module paths of stem, layers.i, norm, layers_temporal.i, norm_out, for [`Taps`].
    taps: [String; 3],
    tap_layers: Vec<String>,
    tap_layers_temporal: Vec<String>,
}

impl FactorizedTransformer {
    pub fn new(path: &nn::Path, cfg: &Config) -> Result<Self, ModelError> {
        let spec = TransformerSpec::from_config(cfg)?;
        Ok(Self::from_spec(path, &spec))
    }

    pub fn from_spec(path: &nn::Path, spec: &TransformerSpec) -> Self {
        let d = spec.width;
        let total = spec.depth + spec.depth_temp;
        let (layers, tap_layers) = build_layers(&(path / "layers"), spec, spec.depth, 0, total);
        let (layers_temporal, tap_layers_temporal) = build_layers(
            &(path / "layers_temporal"),
            spec,
            spec.depth_temp,
            spec.depth,
            total,
        );
        Self {
            stem: TokenStem::new(&(path / "stem"), spec),
            pos_embd: embedding(path, "pos_embd", &[1, spec.patches_per_frame() + 1, d]),
            temp_embd: embedding(path, "temp_embd", &[1, spec.token_frames() + 1, d]),
            cls_token: embedding(path, "cls_token", &[1, 1, d]),
            cls_token_out: embedding(path, "cls_token_out", &[1, 1, d]),
            layers,
            norm: layer_norm(path / "norm", d),
            layers_temporal,
            norm_out: layer_norm(path / "norm_out", d),
            spec: spec.clone(),
            taps: ["stem", "norm", "norm_out"].map(|n| module_path(&(path / n))),
            tap_layers,
            tap_layers_temporal,
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

    /// The spatial positional embedding for an h×h patch grid: the stored one, or in evaluation
    /// mode for another square grid the stored patch entries resized bilinearly (as the
    /// reference does to test at another crop size).
    ///
    /// # Shapes
    /// -> (1, 1 + h², D)
    fn pos_embd_for(&self, h: i64, w: i64, train: bool) -> Tensor {
        let grid = self.spec.grid();
        if h == grid && w == grid {
            return self.pos_embd.shallow_clone();
        }
        assert!(
            !train && h == w,
            "the clip gives a {h}×{w} patch grid, but DATA.TRAIN_CROP_SIZE / \
             VIDEO.BACKBONE.PATCH_SIZE = {grid} sizes the positional embedding for {grid}×{grid} \
             (another square grid is resized in evaluation mode only)"
        );
        let d = self.spec.width;
        let cls = self.pos_embd.narrow(1, 0, 1);
        // (1, g², D) -> (1, g, g, D) -> (1, D, g, g)
        let patches = self
            .pos_embd
            .narrow(1, 1, grid * grid)
            .reshape([1, grid, grid, d])
            .permute([0, 3, 1, 2]);
        // (1, D, h, h) -> (1, h, h, D) -> (1, h², D)
        let resized = patches
            .upsample_bilinear2d([h, h], false, None, None)
            .permute([0, 2, 3, 1])
            .reshape([1, h * h, d]);
        Tensor::cat(&[cls, resized], 1)
    }

    /// # Shapes
    /// (B, C, T, S, S) -> (B, D), with T = NUM_INPUT_FRAMES and S = TRAIN_CROP_SIZE (any square
    /// multiple of PATCH_SIZE in evaluation mode).
    ///
    /// # Panics
    /// On another clip size, like any tch layer given a wrong shape.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording `stem` (B, T'·n, D), `layers.i` (B·T', 1 + n, D), `norm`,
    /// `layers_temporal.i` (B, 1 + T', D) and `norm_out`.
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let (tokens, [t, h, w]) = self.stem.forward(xs);
        taps.record(&self.taps[0], &tokens);
        let s = &self.spec;
        assert!(
            t == s.token_frames(),
            "the clip gives {t} tubelet frames, but DATA.NUM_INPUT_FRAMES = {} and \
             VIDEO.BACKBONE.TUBELET_SIZE = {} size the temporal embedding for {}",
            s.num_frames,
            s.tubelet_size,
            s.token_frames()
        );
        let pos_embd = self.pos_embd_for(h, w, train);
        let (b, d, n) = (tokens.size()[0], s.width, h * w);
        // (B, T'·n, D) -> (B·T', n, D): the frames of every clip, frame index fastest
        let frames = tokens.reshape([b * t, n, d]);
        let cls = self.cls_token.expand([b * t, 1, d], false);
        let mut x = Tensor::cat(&[cls, frames], 1) + pos_embd;
        for (layer, name) in self.layers.iter().zip(&self.tap_layers) {
            x = layer.forward_t(&x, n, train);
            taps.record(name, &x);
        }
        let x = self.norm.forward(&x);
        taps.record(&self.taps[1], &x);
        // (B·T', 1 + n, D) -> class tokens (B·T', D) -> (B, T', D)
        let frame_tokens = x.select(1, 0).reshape([b, t, d]);
        let cls_out = self.cls_token_out.expand([b, 1, d], false);
        let mut x = Tensor::cat(&[cls_out, frame_tokens], 1) + &self.temp_embd;
        for (layer, name) in self.layers_temporal.iter().zip(&self.tap_layers_temporal) {
            x = layer.forward_t(&x, t, train);
            taps.record(name, &x);
        }
        let x = self.norm_out.forward(&x);
        taps.record(&self.taps[2], &x);
        // (B, 1 + T', D) -> class token (B, D)
        x.select(1, 0)
    }
}
