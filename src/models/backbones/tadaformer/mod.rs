//! The VisionTransformer meta-architecture with TAdaFormer blocks (TAdaFormer B/16 and L/14,
//! docs/models.md#tadaformer): a CLIP ViT whose patch embedding is inflated to a (3, P, P) tubelet,
//! with a TAdaConvV2 branch added to every transformer layer.
//!
//! Every config value is checked here, once, into a [`TAdaFormerSpec`]; the blocks only build
//! from already-valid numbers.

mod block;

#[cfg(test)]
mod tests;

use tch::nn::{self, Module};
use tch::Tensor;

use crate::config::schema::{BackboneConfig, BnConfig, BranchName, Depth};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

pub use block::{drop_path, linear, TAdaBlock, TAdaFormerBlock};

const KEY_INPUT_RES: &str = "VIDEO.BACKBONE.INPUT_RES";
const KEY_PATCH: &str = "VIDEO.BACKBONE.PATCH_SIZE";
const KEY_TUBLET_SIZE: &str = "VIDEO.BACKBONE.TUBLET_SIZE";
const KEY_TUBLET_STRIDE: &str = "VIDEO.BACKBONE.TUBLET_STRIDE";
const KEY_WIDTH: &str = "VIDEO.BACKBONE.NUM_FEATURES";
const KEY_DEPTH: &str = "VIDEO.BACKBONE.DEPTH";
const KEY_HEADS: &str = "VIDEO.BACKBONE.NUM_HEADS";
const KEY_DROP_PATH: &str = "VIDEO.BACKBONE.DROP_PATH";
const KEY_ATTN_DROPOUT: &str = "VIDEO.BACKBONE.ATTN_DROPOUT";
const KEY_REDUCTION: &str = "VIDEO.BACKBONE.REDUCTION";
const KEY_REQUIRE_PROJ: &str = "VIDEO.BACKBONE.REQUIRE_PROJ";
const KEY_BRANCH: &str = "VIDEO.BACKBONE.BRANCH.NAME";
const KEY_RF_R: &str = "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R";
const KEY_RF_K: &str = "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K";
const KEY_IN_CHANNELS: &str = "VIDEO.BACKBONE.NUM_INPUT_CHANNELS";
const NEEDED_BY: &str = "the VisionTransformer (TAdaFormer) backbone";

/// Attention head width of the routing functions. The reference's TAdaFormer never passes
/// BRANCH.HEAD_DIM to its TAdaConv2dV2, so the op's default of 64 always applies.
pub const ROUTING_HEAD_DIM: i64 = 64;

/// torch `nn.LayerNorm`'s default eps, which every TAdaFormer LayerNorm (`ln_pre`, `ln_1`,
/// `ln_2`, `ln_post`) keeps; only the routing functions' own LayerNorms use 1e-6.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// The VisionTransformer config, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TAdaFormerSpec {
    pub in_channels: i64,
    /// INPUT_RES: the clip side the positional embedding is sized for.
    pub input_res: i64,
    pub patch_size: i64,
    /// Temporal kernel of the tubelet embedding (padded by `tubelet_size / 2`).
    pub tubelet_size: i64,
    pub tubelet_stride: i64,
    /// W (NUM_FEATURES).
    pub width: i64,
    pub depth: usize,
    pub num_heads: i64,
    /// DROP_PATH: stochastic-depth rate of the last layer (0 for the first, linear in between).
    pub drop_path: f64,
    pub attn_dropout: f64,
    /// d = W / REDUCTION: the width of the TAda branch.
    pub tada_width: i64,
    pub route_func_r: i64,
    pub route_func_k: [i64; 2],
    pub temp_enhance: bool,
    pub double_tada: bool,
    /// BN.FREEZE: `bn_a`/`bn_b` of every TAdaConv stay in evaluation mode while training.
    pub freeze_bn: bool,
}

impl TAdaFormerSpec {
    pub fn from_config(b: &BackboneConfig, bn: &BnConfig) -> Result<Self, ModelError> {
        match b.branch.name {
            Some(BranchName::TAdaFormerBlock) => {}
            None => return Err(ModelError::missing(KEY_BRANCH, NEEDED_BY)),
            Some(other) => {
                return Err(ModelError::invalid(
                    KEY_BRANCH,
                    format!(
                    "the VisionTransformer backbone builds TAdaFormerBlock layers, got {other:?}"
                ),
                ))
            }
        }
        if b.require_proj {
            // The projection's width is VIDEO.HEAD.OUTPUT_DIM, and no released config uses it.
            return Err(ModelError::Unsupported(format!(
                "the output projection `proj`: {KEY_REQUIRE_PROJ} = true"
            )));
        }
        let depth = match &b.depth {
            None => return Err(ModelError::missing(KEY_DEPTH, NEEDED_BY)),
            Some(Depth::PerStage(v)) => {
                return Err(ModelError::invalid(
                    KEY_DEPTH,
                    format!("the VisionTransformer takes one layer count, got the list {v:?}"),
                ))
            }
            Some(Depth::Layers(0)) => {
                return Err(ModelError::invalid(KEY_DEPTH, "must be at least 1"))
            }
            Some(Depth::Layers(d)) => *d,
        };
        let input_res = ModelError::positive(KEY_INPUT_RES, b.input_res, NEEDED_BY)?;
        let patch_size = ModelError::positive(KEY_PATCH, b.patch_size, NEEDED_BY)?;
        if patch_size > input_res {
            return Err(ModelError::invalid(
                KEY_PATCH,
                format!("{patch_size} is larger than {KEY_INPUT_RES} = {input_res}"),
            ));
        }
        let width = ModelError::positive(KEY_WIDTH, b.num_features, NEEDED_BY)?;
        let num_heads = ModelError::positive(KEY_HEADS, b.num_heads, NEEDED_BY)?;
        if width % num_heads != 0 {
            return Err(ModelError::invalid(
                KEY_HEADS,
                format!("{num_heads} heads do not divide {KEY_WIDTH} = {width}"),
            ));
        }
        let reduction = ModelError::positive(KEY_REDUCTION, b.reduction, NEEDED_BY)?;
        let tada_width = width / reduction;
        if tada_width == 0 {
            return Err(ModelError::invalid(
                KEY_REDUCTION,
                format!("{reduction} leaves no TAda width for {KEY_WIDTH} = {width}"),
            ));
        }
        let route_func_r = ModelError::positive(KEY_RF_R, b.branch.route_func_r, NEEDED_BY)?;
        let c_r = tada_width / route_func_r;
        if c_r == 0 || c_r % ROUTING_HEAD_DIM != 0 {
            return Err(ModelError::invalid(
                KEY_RF_R,
                format!(
                    "the routing width {KEY_WIDTH} / {KEY_REDUCTION} / {KEY_RF_R} = {width} / \
                     {reduction} / {route_func_r} = {c_r} must be a positive multiple of the \
                     routing head width {ROUTING_HEAD_DIM}"
                ),
            ));
        }
        let k = b
            .branch
            .route_func_k
            .as_ref()
            .ok_or_else(|| ModelError::missing(KEY_RF_K, NEEDED_BY))?;
        let route_func_k = match *k.as_slice() {
            [k_a, k_b] if [k_a, k_b].iter().all(|k| k % 2 == 1) => [k_a as i64, k_b as i64],
            _ => {
                return Err(ModelError::invalid(
                    KEY_RF_K,
                    format!("needs two odd temporal kernels, got {k:?}"),
                ))
            }
        };
        Ok(Self {
            in_channels: ModelError::positive(
                KEY_IN_CHANNELS,
                Some(b.num_input_channels),
                NEEDED_BY,
            )?,
            input_res,
            patch_size,
            tubelet_size: ModelError::positive(KEY_TUBLET_SIZE, b.tublet_size, NEEDED_BY)?,
            tubelet_stride: ModelError::positive(KEY_TUBLET_STRIDE, b.tublet_stride, NEEDED_BY)?,
            width,
            depth,
            num_heads,
            drop_path: ModelError::rate(KEY_DROP_PATH, b.drop_path)?,
            attn_dropout: ModelError::rate(KEY_ATTN_DROPOUT, b.attn_dropout)?,
            tada_width,
            route_func_r,
            route_func_k,
            temp_enhance: b.temp_enhance,
            double_tada: b.double_tada,
            freeze_bn: bn.freeze,
        })
    }

    /// Patches per side of the configured input: INPUT_RES / PATCH_SIZE (floor).
    pub fn grid(&self) -> i64 {
        self.input_res / self.patch_size
    }

    /// Stochastic-depth rate of layer `i`: `torch.linspace(0, DROP_PATH, DEPTH)[i]`.
    pub fn drop_path_rate(&self, i: usize) -> f64 {
        if self.depth <= 1 {
            0.0
        } else {
            self.drop_path * i as f64 / (self.depth - 1) as f64
        }
    }
}

/// The VisionTransformer backbone (module `backbone`): tubelet embedding `conv1`, class token
/// and spatial positional embedding, `ln_pre`, the TAdaFormer layers `layers.i`, and `ln_post`
/// over the frame-averaged class tokens.
///
/// Init as the reference before CLIP weights are loaded: `conv1` PyTorch default (U(±1/√fan_in),
/// no bias), `class_embedding` and `positional_embedding` W^−½·N(0, 1), LayerNorms 1/0, the
/// blocks as [`TAdaFormerBlock`] says.
///
/// Variables (relative to the path): `class_embedding` (W), `positional_embedding`
/// ((R/P)² + 1, W), `conv1.weight` (W, C, t, P, P), `ln_pre.*`, `layers.{i}.*`, `ln_post.*`.
#[derive(Debug)]
pub struct TAdaFormer {
    conv1: nn::Conv3D,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: nn::LayerNorm,
    layers: Vec<TAdaFormerBlock>,
    ln_post: nn::LayerNorm,
    spec: TAdaFormerSpec,
    /// Module paths of conv1, ln_pre, layers.i and ln_post, for [`Taps`].
    tap_conv1: String,
    tap_ln_pre: String,
    tap_layers: Vec<String>,
    tap_ln_post: String,
}

/// An `nn.LayerNorm(width)` with torch's defaults (eps 1e-5, weight 1, bias 0).
pub(crate) fn layer_norm(path: nn::Path, width: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: LAYER_NORM_EPS,
        ..Default::default()
    };
    nn::layer_norm(path, vec![width], config)
}

impl TAdaFormer {
    pub fn new(path: &nn::Path, b: &BackboneConfig, bn: &BnConfig) -> Result<Self, ModelError> {
        let spec = TAdaFormerSpec::from_config(b, bn)?;
        Self::from_spec(path, &spec)
    }

    pub fn from_spec(path: &nn::Path, spec: &TAdaFormerSpec) -> Result<Self, ModelError> {
        let (w, p, t) = (spec.width, spec.patch_size, spec.tubelet_size);
        let fan_in = (spec.in_channels * t * p * p) as f64;
        let bound = fan_in.powf(-0.5);
        let conv_config = nn::ConvConfigND::<[i64; 3]> {
            stride: [spec.tubelet_stride, p, p],
            padding: [t / 2, 0, 0],
            dilation: [1, 1, 1],
            groups: 1,
            bias: false,
            ws_init: nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
            bs_init: nn::Init::Const(0.0),
            padding_mode: nn::PaddingMode::Zeros,
        };
        let conv1_path = path / "conv1";
        let tap_conv1 = module_path(&conv1_path);
        let conv1 = nn::conv(conv1_path, spec.in_channels, w, [t, p, p], conv_config);
        let scale = nn::Init::Randn {
            mean: 0.0,
            stdev: (w as f64).powf(-0.5),
        };
        let class_embedding = path.var("class_embedding", &[w], scale);
        let tokens = spec.grid() * spec.grid() + 1;
        let positional_embedding = path.var("positional_embedding", &[tokens, w], scale);
        let ln_pre_path = path / "ln_pre";
        let tap_ln_pre = module_path(&ln_pre_path);
        let ln_pre = layer_norm(ln_pre_path, w);
        let layers_path = path / "layers";
        let mut layers = Vec::with_capacity(spec.depth);
        let mut tap_layers = Vec::with_capacity(spec.depth);
        for i in 0..spec.depth {
            let layer_path = &layers_path / i;
            tap_layers.push(module_path(&layer_path));
            layers.push(TAdaFormerBlock::new(
                &layer_path,
                spec,
                spec.drop_path_rate(i),
            )?);
        }
        let ln_post_path = path / "ln_post";
        let tap_ln_post = module_path(&ln_post_path);
        let ln_post = layer_norm(ln_post_path, w);
        Ok(Self {
            conv1,
            class_embedding,
            positional_embedding,
            ln_pre,
            layers,
            ln_post,
            spec: spec.clone(),
            tap_conv1,
            tap_ln_pre,
            tap_layers,
            tap_ln_post,
        })
    }

    pub fn spec(&self) -> &TAdaFormerSpec {
        &self.spec
    }

    /// The transformer width W (NUM_FEATURES), the width of the output features.
    pub fn out_features(&self) -> i64 {
        self.spec.width
    }

    /// Channels the tubelet embedding expects (NUM_INPUT_CHANNELS).
    pub fn in_channels(&self) -> i64 {
        self.spec.in_channels
    }

    /// Whether an `h`×`w` clip gives the patch grid the positional embedding was sized for;
    /// the error is the expected input, naming the keys to change.
    pub fn check_side(&self, h: i64, w: i64) -> Result<(), String> {
        let (p, grid) = (self.spec.patch_size, self.spec.grid());
        if h / p == grid && w / p == grid {
            return Ok(());
        }
        Err(format!(
            "H = W = {} for the {grid}×{grid} patch grid of {KEY_INPUT_RES} = {} / {KEY_PATCH} = \
             {p} (the crop is DATA.TRAIN_CROP_SIZE / DATA.TEST_CROP_SIZE)",
            grid * p,
            self.spec.input_res
        ))
    }

    /// # Shapes
    /// (B, C, T, R, R) -> (B, W): class tokens averaged over the T' = ⌊(T + 2·(t/2) − t)/s⌋ + 1
    /// frames of the tubelet embedding, after `ln_post`. R must give INPUT_RES / PATCH_SIZE
    /// patches per side.
    ///
    /// # Panics
    /// When the clip's patch grid does not fit the positional embedding, like any tch layer
    /// given a wrong shape.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording `conv1`, `ln_pre`, every layer (and inside it the TAda
    /// branches, their TAdaConv and routing outputs) and `ln_post` under their module paths.
    /// Layouts are the reference's: `ln_pre` (B·T', L, W), layers (L, B·T', W).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let x = self.conv1.forward(xs);
        taps.record(&self.tap_conv1, &x);
        let size = x.size();
        let (b, c, t, h, w) = (size[0], size[1], size[2], size[3], size[4]);
        let grid = self.spec.grid();
        assert!(
            h == grid && w == grid,
            "{NEEDED_BY}: the input gives a {h}×{w} patch grid, but {KEY_INPUT_RES} / {KEY_PATCH} \
             = {grid} sizes the positional embedding for {grid}×{grid}"
        );
        // (B, W, T', h, w) -> (B, T', h, w, W) -> (B·T', h·w, W): frame index fastest in B·T'.
        let patches = x.permute([0, 2, 3, 4, 1]).reshape([b * t, h * w, c]);
        // (W) -> (B·T', 1, W): the same class token in front of every frame.
        let cls = self
            .class_embedding
            .view([1, 1, c])
            .expand([b * t, 1, c], false);
        let x = Tensor::cat(&[cls, patches], 1) + &self.positional_embedding;
        let x = self.ln_pre.forward(&x);
        taps.record(&self.tap_ln_pre, &x);
        // (B·T', L, W) -> (L, B·T', W): the layers are sequence-first.
        let mut x = x.permute([1, 0, 2]);
        for (layer, name) in self.layers.iter().zip(&self.tap_layers) {
            x = layer.forward_taps(&x, t, train, taps);
            taps.record(name, &x);
        }
        // (L, B·T', W) -> class token (B·T', W) -> (B, T', W) -> mean over frames (B, W)
        let cls = x.select(0, 0).reshape([b, t, c]).mean_dim(1, false, None);
        let out = self.ln_post.forward(&cls);
        taps.record(&self.tap_ln_post, &out);
        out
    }
}
