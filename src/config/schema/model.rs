//! MODEL, VIDEO (BACKBONE, HEAD) and BN sections: what network is built.

use serde::{Deserialize, Serialize};

/// MODEL.EMA section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct EmaConfig {
    pub enable: bool,
    pub decay: f64,
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self {
            enable: false,
            decay: 0.99996,
        }
    }
}

/// MODEL section. NAME is a label except `MoSINet`, which selects the MoSI wrapper.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ModelConfig {
    pub name: String,
    pub ema: EmaConfig,
}

/// VIDEO.BACKBONE.META_ARCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaArch {
    ResNet3D,
    ConvNeXt,
    VisionTransformer,
    /// ViViT (joint space-time attention) or TimeSformer, by BRANCH.NAME.
    Transformer,
    /// The ViViT factorised encoder: a spatial transformer per frame, then a temporal one.
    FactorizedTransformer,
    /// SlowFast: a slow and a fast ResNet pathway with lateral fast-to-slow fusions.
    Slowfast,
    /// S3D-G: the Inception-v1 layout with separable (2+1)D convs and feature gating.
    Inception3D,
    /// BMN's feature backbone: BACKBONE_LAYER grouped 1-D convolutions over feature sequences
    /// (src/localization).
    SimpleLocalizationConv,
}

/// VIDEO.BACKBONE.STEM.NAME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StemName {
    Base2DStem,
    DownSampleStem,
    R2Plus1DStem,
    /// Patch embedding, one frame per token (TimeSformer).
    PatchEmbedStem,
    /// Tubelet embedding, TUBELET_SIZE frames per token (ViViT).
    TubeletEmbeddingStem,
    /// S3D-G's `Conv_1a`: a separable 7×7×7 conv with stride 2 (the reference looks it up
    /// among the branches).
    STConv3d,
}

/// VIDEO.BACKBONE.BRANCH.NAME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BranchName {
    R2D3DBranch,
    R2Plus1DBranch,
    TAda2DBlock,
    TAdaConvNeXtV2Block,
    TAdaFormerBlock,
    CSNBranch,
    /// Pre-norm transformer layer with joint attention (ViViT).
    BaseTransformerLayer,
    /// Divided space-time attention layer (TimeSformer).
    TimesformerLayer,
    /// SlowFast's residual branch: R2D3D-like, with an optional (3,1,1) first bottleneck conv.
    SlowfastBranch,
    /// S3D-G's separable conv: (1,k,k) then (k,1,1), each with BN and ReLU.
    STConv3d,
}

/// VIDEO.BACKBONE.DEPTH: one number (ResNet, transformer) or blocks per stage (ConvNeXt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Depth {
    Layers(usize),
    PerStage(Vec<usize>),
}

/// VIDEO.BACKBONE.STEM section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StemConfig {
    pub name: Option<StemName>,
    pub t_kernel_size: Option<usize>,
    pub t_stride: Option<usize>,
}

/// VIDEO.BACKBONE.BRANCH section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct BranchConfig {
    pub name: Option<BranchName>,
    pub route_func_r: Option<usize>,
    pub route_func_k: Option<Vec<usize>>,
    pub pool_k: Option<Vec<usize>>,
    pub head_dim: Option<usize>,
    /// S3D-G: self-gating (a sigmoid of a Linear of the pooled features) on every Inception
    /// branch.
    pub gating: bool,
}

/// VIDEO.BACKBONE.KERNEL_SIZE: one (t, h, w) triple per level, or (SlowFast) one such list per
/// pathway, slow first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of [t, h, w] triples, one per level, or (SlowFast) two such lists, slow \
                 pathway first"
)]
pub enum KernelSizes {
    PerLevel(Vec<Vec<usize>>),
    PerPathway(Vec<Vec<Vec<usize>>>),
}

/// VIDEO.BACKBONE.SLOWFAST.MODE: which pathways are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SlowFastMode {
    #[default]
    Slowfast,
    Slowonly,
    Fastonly,
}

/// VIDEO.BACKBONE.SLOWFAST section (the reference's base.yaml has none: every number is
/// required by the Slowfast backbone, which names a missing one).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct SlowFastConfig {
    pub mode: SlowFastMode,
    /// Frame-rate ratio: the slow pathway sees every ALPHA-th frame; also the fusion conv's
    /// temporal stride.
    pub alpha: Option<usize>,
    /// Channel ratio: the fast pathway is NUM_FILTERS / BETA wide.
    pub beta: Option<usize>,
    /// Fusion output channels per fast channel.
    pub conv_channel_ratio: Option<usize>,
    /// Temporal kernel of the fusion conv.
    pub kernel_size: Option<usize>,
    pub fusion_conv_bias: Option<bool>,
    pub fusion_bn: Option<bool>,
    pub fusion_relu: Option<bool>,
}

/// VIDEO.BACKBONE section. Keys that only some architectures read are optional; the backbone
/// that needs one reports it by name when it is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct BackboneConfig {
    pub meta_arch: MetaArch,
    pub depth: Option<Depth>,
    pub num_filters: Option<Vec<usize>>,
    pub num_input_channels: usize,
    pub num_out_features: Option<usize>,
    pub kernel_size: Option<KernelSizes>,
    pub downsampling: Option<Vec<bool>>,
    pub downsampling_temporal: Option<Vec<bool>>,
    pub expansion_ratio: Option<usize>,
    /// SlowFast: per pathway (slow, fast), per level, whether a bottleneck's first conv is
    /// (3,1,1) instead of 1×1×1.
    pub temporal_conv_bottleneck: Option<Vec<Vec<bool>>>,
    /// SlowFast pathway settings.
    pub slowfast: SlowFastConfig,
    /// tada's key: every channel width of Inception3D (S3D-G) divided by this; 1 is the
    /// reference's network. Small models for tests and smoke runs.
    pub width_divisor: usize,
    pub stem: StemConfig,
    pub branch: BranchConfig,
    pub initialization: Option<String>,
    pub drop_path: f64,
    pub large_scale_init_value: Option<f64>,
    pub freeze: bool,
    // Transformer (TAdaFormer) keys.
    pub input_res: Option<usize>,
    pub patch_size: Option<usize>,
    pub tublet_size: Option<usize>,
    pub tublet_stride: Option<usize>,
    pub num_features: Option<usize>,
    pub num_heads: Option<usize>,
    pub attn_dropout: f64,
    pub reduction: Option<usize>,
    pub require_proj: bool,
    pub temp_enhance: bool,
    pub double_tada: bool,
    // ViViT / TimeSformer keys.
    /// Frames per token of the TubeletEmbeddingStem (the reference's default 1 elsewhere).
    pub tubelet_size: Option<usize>,
    /// Layers of the factorised encoder's temporal transformer.
    pub depth_temp: Option<usize>,
    /// Dropout after the attention projection and in the MLP.
    pub ff_dropout: Option<f64>,
    /// Hidden width of the BaseTransformerLayer MLP, in multiples of NUM_FEATURES.
    pub mlp_mult: Option<usize>,
}

impl Default for BackboneConfig {
    fn default() -> Self {
        Self {
            meta_arch: MetaArch::ResNet3D,
            depth: None,
            num_filters: None,
            num_input_channels: 3,
            num_out_features: None,
            kernel_size: None,
            downsampling: None,
            downsampling_temporal: None,
            expansion_ratio: None,
            temporal_conv_bottleneck: None,
            slowfast: SlowFastConfig::default(),
            width_divisor: 1,
            stem: StemConfig::default(),
            branch: BranchConfig::default(),
            initialization: None,
            drop_path: 0.0,
            large_scale_init_value: None,
            freeze: false,
            input_res: None,
            patch_size: None,
            tublet_size: None,
            tublet_stride: None,
            num_features: None,
            num_heads: None,
            attn_dropout: 0.0,
            reduction: None,
            require_proj: false,
            temp_enhance: false,
            double_tada: false,
            tubelet_size: None,
            depth_temp: None,
            ff_dropout: None,
            mlp_mult: None,
        }
    }
}

/// VIDEO.HEAD.NAME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeadName {
    BaseHead,
    MoSIHeadJoint,
    MoSIHeadOnlyX,
    MoSIHeadOnlyY,
    TransformerHead,
    /// tada's name for the contrastive projection MLP (PRETRAIN.CONTRASTIVE).
    ContrastiveHead,
    /// Two BaseHeads on the same pooled features (EPIC-Kitchens verb and noun).
    BaseHeadx2,
    /// Two TransformerHeads on the same features (EPIC-Kitchens verb and noun).
    TransformerHeadx2,
    /// SlowFast's head: each pathway pooled, concatenated, then BaseHead's Linear `out`.
    SlowFastHead,
    /// The Boundary-Matching Network head (temporal action localisation, src/localization).
    #[serde(rename = "BaseBMN")]
    BaseBmn,
}

/// VIDEO.HEAD.ACTIVATION applied in eval mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Softmax,
    Sigmoid,
    Identity,
}

/// VIDEO.HEAD section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct HeadConfig {
    pub name: HeadName,
    pub activation: Activation,
    pub dropout_rate: f64,
    /// Required: the reference's base.yaml has no default either. None when the file gives a
    /// list, which is in `num_classes_per_head` instead.
    pub num_classes: Option<usize>,
    /// NUM_CLASSES written as a list (`[97, 300]`): one count per head of a two-head model.
    /// Taken out of the tree before deserialising and put back when shown
    /// (config/class_lists.rs), so that `num_classes` keeps its one-number type.
    #[serde(skip)]
    pub num_classes_per_head: Option<Vec<usize>>,
    pub output_dim: Option<usize>,
    pub pre_logits: bool,
    // BaseBMN keys.
    /// Sample points per proposal of the boundary-matching layer.
    pub num_sample: Option<usize>,
    /// Sub-samples averaged into each of the NUM_SAMPLE points.
    pub num_sample_perbin: Option<usize>,
    /// Share of a proposal's length sampled beyond each of its ends.
    pub boundary_ratio: Option<f64>,
    /// The offset-regression branch `x_2d_r` (not built: refused when true).
    pub use_bmn_regression: bool,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            name: HeadName::BaseHead,
            activation: Activation::Softmax,
            dropout_rate: 0.0,
            num_classes: None,
            num_classes_per_head: None,
            output_dim: None,
            pre_logits: false,
            num_sample: None,
            num_sample_perbin: None,
            boundary_ratio: None,
            use_bmn_regression: false,
        }
    }
}

/// VIDEO section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct VideoConfig {
    pub backbone: BackboneConfig,
    pub head: HeadConfig,
    // BMN (SimpleLocalizationConv + BaseBMN) widths and depth.
    /// Width of the 1-D features (backbone output, the head's temporal branches).
    pub dim1d: Option<usize>,
    /// Width of the 2-D proposal-evaluation convolutions.
    pub dim2d: Option<usize>,
    /// Channels of the boundary-matching layer's 3-D convolution output.
    pub dim3d: Option<usize>,
    /// Convolutions of SimpleLocalizationConv.
    pub backbone_layer: Option<usize>,
    /// Groups of SimpleLocalizationConv's convolutions.
    pub backbone_groups_num: Option<usize>,
}

/// BN section: normalisation layers of the backbones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct BnConfig {
    pub eps: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub wb_lock: bool,
    pub freeze: bool,
    /// SyncBatchNorm in a distributed run: batch statistics over every rank's samples.
    pub sync: bool,
}

impl Default for BnConfig {
    fn default() -> Self {
        Self {
            eps: 1e-5,
            momentum: 0.1,
            weight_decay: 0.0,
            wb_lock: false,
            freeze: false,
            sync: false,
        }
    }
}
