//! The ViViT / TimeSformer config, checked once into a [`TransformerSpec`]: the layers and
//! stems then build from already-valid numbers.

use crate::config::schema::{BackboneConfig, BranchName, Depth, MetaArch, StemName};
use crate::config::Config;
use crate::models::ModelError;

pub(crate) const KEY_CROP: &str = "DATA.TRAIN_CROP_SIZE";
pub(crate) const KEY_FRAMES: &str = "DATA.NUM_INPUT_FRAMES";
const KEY_CHANNELS: &str = "DATA.NUM_INPUT_CHANNELS";
pub(crate) const KEY_PATCH: &str = "VIDEO.BACKBONE.PATCH_SIZE";
const KEY_TUBELET: &str = "VIDEO.BACKBONE.TUBELET_SIZE";
const KEY_WIDTH: &str = "VIDEO.BACKBONE.NUM_FEATURES";
const KEY_DEPTH: &str = "VIDEO.BACKBONE.DEPTH";
const KEY_DEPTH_TEMP: &str = "VIDEO.BACKBONE.DEPTH_TEMP";
const KEY_HEADS: &str = "VIDEO.BACKBONE.NUM_HEADS";
const KEY_DROP_PATH: &str = "VIDEO.BACKBONE.DROP_PATH";
const KEY_ATTN_DROPOUT: &str = "VIDEO.BACKBONE.ATTN_DROPOUT";
const KEY_FF_DROPOUT: &str = "VIDEO.BACKBONE.FF_DROPOUT";
const KEY_MLP_MULT: &str = "VIDEO.BACKBONE.MLP_MULT";
const KEY_STEM: &str = "VIDEO.BACKBONE.STEM.NAME";
const KEY_BRANCH: &str = "VIDEO.BACKBONE.BRANCH.NAME";

/// The MLP width multiple of TimesformerLayer, which the reference fixes (it reads no MLP_MULT).
const TIMESFORMER_MLP_MULT: i64 = 4;

/// Which layer the transformers are made of (VIDEO.BACKBONE.BRANCH.NAME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Joint attention over all tokens (ViViT).
    Joint,
    /// Temporal then spatial attention, the class token attending to every token (TimeSformer).
    Divided,
}

/// The Transformer / FactorizedTransformer config, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerSpec {
    pub in_channels: i64,
    /// DATA.TRAIN_CROP_SIZE: the clip side the positional embedding is sized for.
    pub image_size: i64,
    pub patch_size: i64,
    /// Frames per token: TUBELET_SIZE with the TubeletEmbeddingStem, 1 with the PatchEmbedStem.
    pub tubelet_size: i64,
    /// DATA.NUM_INPUT_FRAMES.
    pub num_frames: i64,
    /// D (NUM_FEATURES).
    pub width: i64,
    pub depth: usize,
    /// DEPTH_TEMP: layers of the factorised encoder's temporal transformer (0 otherwise).
    pub depth_temp: usize,
    pub num_heads: i64,
    /// The MLP's hidden width is `mlp_mult · D`.
    pub mlp_mult: i64,
    pub layer: LayerKind,
    /// DROP_PATH: the stochastic-depth rate of the last layer (0 for the first, linear between).
    pub drop_path: f64,
    pub attn_dropout: f64,
    pub ff_dropout: f64,
}

/// BRANCH.NAME: joint layers anywhere, divided (TimeSformer) ones in the Transformer only.
fn layer_kind(
    b: &BackboneConfig,
    factorized: bool,
    needed_by: &str,
) -> Result<LayerKind, ModelError> {
    match b.branch.name {
        Some(BranchName::BaseTransformerLayer) => Ok(LayerKind::Joint),
        Some(BranchName::TimesformerLayer) if !factorized => Ok(LayerKind::Divided),
        None => Err(ModelError::missing(KEY_BRANCH, needed_by)),
        Some(other) => {
            let allowed = if factorized {
                "BaseTransformerLayer"
            } else {
                "BaseTransformerLayer or TimesformerLayer"
            };
            Err(ModelError::invalid(
                KEY_BRANCH,
                format!("{needed_by} builds {allowed} layers, got {other:?}"),
            ))
        }
    }
}

/// Frames per token, from STEM.NAME and TUBELET_SIZE.
fn tubelet_size(b: &BackboneConfig, needed_by: &str) -> Result<i64, ModelError> {
    match b.stem.name {
        Some(StemName::TubeletEmbeddingStem) => {
            ModelError::positive(KEY_TUBELET, b.tubelet_size, needed_by)
        }
        Some(StemName::PatchEmbedStem) => match b.tubelet_size {
            None | Some(1) => Ok(1),
            // The reference would size its positional embedding for tubelets the patch stem
            // does not make, and fail at the first forward.
            Some(t) => Err(ModelError::invalid(
                KEY_TUBELET,
                format!("is {t}, but the PatchEmbedStem embeds one frame per token"),
            )),
        },
        None => Err(ModelError::missing(KEY_STEM, needed_by)),
        Some(other) => Err(ModelError::invalid(
            KEY_STEM,
            format!("{needed_by} takes PatchEmbedStem or TubeletEmbeddingStem, got {other:?}"),
        )),
    }
}

fn layer_count(b: &BackboneConfig, needed_by: &str) -> Result<usize, ModelError> {
    match &b.depth {
        None => Err(ModelError::missing(KEY_DEPTH, needed_by)),
        Some(Depth::PerStage(v)) => Err(ModelError::invalid(
            KEY_DEPTH,
            format!("{needed_by} takes one layer count, got the list {v:?}"),
        )),
        Some(Depth::Layers(0)) => Err(ModelError::invalid(KEY_DEPTH, "must be at least 1")),
        Some(Depth::Layers(d)) => Ok(*d),
    }
}

/// The clip: (crop, patch, frames, frames per token), checked against each other.
fn clip_sizes(cfg: &Config, layer: LayerKind, needed_by: &str) -> Result<[i64; 4], ModelError> {
    let b = &cfg.video.backbone;
    let image_size = ModelError::positive(KEY_CROP, Some(cfg.data.train_crop_size), needed_by)?;
    let patch_size = ModelError::positive(KEY_PATCH, b.patch_size, needed_by)?;
    if image_size % patch_size != 0 {
        return Err(ModelError::invalid(
            KEY_PATCH,
            format!("{patch_size} does not divide {KEY_CROP} = {image_size}"),
        ));
    }
    let num_frames = ModelError::positive(KEY_FRAMES, Some(cfg.data.num_input_frames), needed_by)?;
    let tubelet_size = tubelet_size(b, needed_by)?;
    if num_frames % tubelet_size != 0 {
        return Err(ModelError::invalid(
            KEY_FRAMES,
            format!("{num_frames} is not a multiple of {KEY_TUBELET} = {tubelet_size}"),
        ));
    }
    if layer == LayerKind::Divided && tubelet_size != 1 {
        return Err(ModelError::invalid(
            KEY_STEM,
            "TimesformerLayer attends over single frames, so it needs the PatchEmbedStem",
        ));
    }
    Ok([image_size, patch_size, num_frames, tubelet_size])
}

impl TransformerSpec {
    /// Reads VIDEO.BACKBONE and the DATA keys the reference sizes these backbones by
    /// (TRAIN_CROP_SIZE, NUM_INPUT_FRAMES, NUM_INPUT_CHANNELS).
    pub fn from_config(cfg: &Config) -> Result<Self, ModelError> {
        let b = &cfg.video.backbone;
        let factorized = b.meta_arch == MetaArch::FactorizedTransformer;
        let needed_by = if factorized {
            "the FactorizedTransformer (ViViT factorised encoder) backbone"
        } else {
            "the Transformer (ViViT / TimeSformer) backbone"
        };
        let layer = layer_kind(b, factorized, needed_by)?;
        let [image_size, patch_size, num_frames, tubelet_size] = clip_sizes(cfg, layer, needed_by)?;
        let width = ModelError::positive(KEY_WIDTH, b.num_features, needed_by)?;
        let num_heads = ModelError::positive(KEY_HEADS, b.num_heads, needed_by)?;
        if width % num_heads != 0 {
            return Err(ModelError::invalid(
                KEY_HEADS,
                format!("{num_heads} heads do not divide {KEY_WIDTH} = {width}"),
            ));
        }
        let depth_temp = if factorized {
            ModelError::positive(KEY_DEPTH_TEMP, b.depth_temp, needed_by)? as usize
        } else {
            0
        };
        let mlp_mult = match layer {
            LayerKind::Joint => ModelError::positive(KEY_MLP_MULT, b.mlp_mult, needed_by)?,
            LayerKind::Divided => TIMESFORMER_MLP_MULT,
        };
        let ff_dropout = b
            .ff_dropout
            .ok_or_else(|| ModelError::missing(KEY_FF_DROPOUT, needed_by))?;
        Ok(Self {
            in_channels: ModelError::positive(
                KEY_CHANNELS,
                Some(cfg.data.num_input_channels),
                needed_by,
            )?,
            image_size,
            patch_size,
            tubelet_size,
            num_frames,
            width,
            depth: layer_count(b, needed_by)?,
            depth_temp,
            num_heads,
            mlp_mult,
            layer,
            drop_path: ModelError::rate(KEY_DROP_PATH, b.drop_path)?,
            attn_dropout: ModelError::rate(KEY_ATTN_DROPOUT, b.attn_dropout)?,
            ff_dropout: ModelError::rate(KEY_FF_DROPOUT, ff_dropout)?,
        })
    }

    /// Patches per side of the configured crop.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }

    /// Patch tokens per frame (or tubelet) of the configured crop.
    pub fn patches_per_frame(&self) -> i64 {
        self.grid() * self.grid()
    }

    /// Token frames (tubelets) of the configured clip.
    pub fn token_frames(&self) -> i64 {
        self.num_frames / self.tubelet_size
    }

    /// Stochastic-depth rate of layer `i` of `n`: `torch.linspace(0, DROP_PATH, n)[i]`.
    pub fn drop_path_rate(&self, i: usize, n: usize) -> f64 {
        if n <= 1 {
            0.0
        } else {
            self.drop_path * i as f64 / (n - 1) as f64
        }
    }
}
