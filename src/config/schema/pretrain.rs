//! PRETRAIN section: the self-supervised generator (MoSI) and its labels.

use serde::{Deserialize, Serialize};

/// PRETRAIN.DATA_MODE: the axes along which pseudo-motion moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataMode {
    X,
    Y,
    Xy,
}

/// PRETRAIN.LABEL_MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelMode {
    Joint,
    Separate,
}

/// PRETRAIN.STANDARD_SIZE: a short side (crop of the same size), or `[lo, hi, crop]` with the
/// short side drawn from [lo, hi].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StandardSize {
    Fixed(usize),
    Range(Vec<usize>),
}

/// PRETRAIN.FLIP_MODE (tada key): how MoSI training clips are mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipMode {
    /// Mirror the image before the window moves: motion and label stay consistent (default).
    Image,
    /// Mirror the finished clip and keep its label, as the reference does.
    Reference,
    None,
}

/// PRETRAIN.PARAMCROP.GRL_SCHEDULE: how the gradient-reversal strength grows over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrlSchedule {
    /// `λ_max · (2 / (1 + exp(−γ p)) − 1)`, p = training progress in [0, 1] (the DANN ramp).
    Dann,
    Constant,
}

/// PRETRAIN.CONTRASTIVE.FRAMEWORK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContrastiveFramework {
    /// NT-Xent over the 2B views of a batch, one shared encoder.
    Simclr,
    /// InfoNCE of queries against their keys and a queue of past keys, keys from a momentum
    /// encoder (MoCo v2).
    Moco,
}

/// PRETRAIN.PARAMCROP section (tada keys; docs/paramcrop.md#settings). With ENABLE false the
/// contrastive views are random cubes drawn uniformly from the same bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ParamCropSection {
    pub enable: bool,
    /// Side of a view as a fraction of the short side: [min, max].
    pub spatial_scale: Vec<f64>,
    /// Length of a view as a fraction of the loaded frames: [min, max].
    pub temporal_scale: Vec<f64>,
    /// Aspect range, used when SQUARE is false.
    pub aspect: Vec<f64>,
    pub square: bool,
    /// Frames loaded per video, from which the views are cut.
    pub input_frames: usize,
    /// Side of the square source clip the views are cut from (short-side resize + crop).
    pub input_size: usize,
    pub noise_dim: usize,
    pub hidden_dim: usize,
    /// Learning rate of the parameter net (follows the run's LR schedule shape).
    pub lr: f64,
    /// The parameter net's own update rule: `adam` or `sgd` (never LARS, whose trust ratio means
    /// nothing on a 6k-parameter MLP).
    pub optim_method: super::OptimMethod,
    /// Largest gradient-reversal strength λ_max.
    pub grl_lambda: f64,
    pub grl_schedule: GrlSchedule,
    /// γ of the DANN ramp.
    pub grl_gamma: f64,
    /// Epochs of random cubes before the parameter net takes over.
    pub start_epoch: u64,
    /// MoCo: compute the key view outside `no_grad` so its crop gets gradients too.
    pub key_grad: bool,
    /// Every this many steps, TensorBoard gets the first clip's source frames with both views'
    /// boxes drawn (`paramcrop/views`); 0 = never.
    pub image_period: u64,
}

impl Default for ParamCropSection {
    fn default() -> Self {
        Self {
            enable: false,
            spatial_scale: vec![0.3, 1.0],
            temporal_scale: vec![0.5, 1.0],
            aspect: vec![0.75, 1.333],
            square: true,
            input_frames: 32,
            input_size: 128,
            noise_dim: 16,
            hidden_dim: 64,
            lr: 1e-3,
            optim_method: super::OptimMethod::Adam,
            grl_lambda: 1.0,
            grl_schedule: GrlSchedule::Dann,
            grl_gamma: 10.0,
            start_epoch: 0,
            key_grad: true,
            image_period: 500,
        }
    }
}

/// PRETRAIN.CONTRASTIVE section: the projection MLP of contrastive pretraining (keys of the group's
/// contrastive code, `MLP` in its `heads/contrastive_head.py`;
/// docs/paramcrop.md#contrastive-recipe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ContrastiveSection {
    /// Width of the two hidden layers.
    pub head_mid_dim: usize,
    /// Width of the embedding the loss compares.
    pub head_out_dim: usize,
    /// BatchNorm after each hidden Linear.
    pub head_bn: bool,
    /// BatchNorm after the output Linear too.
    pub final_bn: bool,
    pub framework: ContrastiveFramework,
    /// τ of the softmax over similarities.
    pub temperature: f64,
    /// MoCo: keys kept as negatives.
    pub queue_size: usize,
    /// MoCo: the key encoder follows the query encoder as `m·k + (1 − m)·q` after every step.
    pub momentum: f64,
    /// Mirror each view left-right with probability 0.5 (off for data whose label is a
    /// direction, like the synthetic videos).
    pub view_flip: bool,
}

impl Default for ContrastiveSection {
    fn default() -> Self {
        Self {
            head_mid_dim: 1024,
            head_out_dim: 128,
            head_bn: true,
            final_bn: false,
            framework: ContrastiveFramework::Simclr,
            temperature: 0.1,
            queue_size: 16384,
            momentum: 0.999,
            view_flip: true,
        }
    }
}

/// PRETRAIN section. Defaults are the reference's MoSI recipe (`mosi.yaml`) except ENABLE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct PretrainConfig {
    pub enable: bool,
    pub generator: String,
    pub loss: String,
    pub loss_weights: Vec<f64>,
    pub distance_jitter: Vec<f64>,
    pub scale_jitter: bool,
    pub num_frames: usize,
    pub data_mode: DataMode,
    pub decouple: bool,
    pub frame_size_standardize_enable: bool,
    pub standard_size: StandardSize,
    pub label_mode: LabelMode,
    pub zero_out: bool,
    pub static_mask: bool,
    pub aspect_ratio: Vec<f64>,
    pub mask_size_ratio: Vec<f64>,
    pub num_clips_per_video: usize,
    pub imagenet_data_size: Option<u32>,
    pub flip_mode: FlipMode,
    /// MoSI: every this many steps, TensorBoard gets the first image's clips as a labelled grid
    /// (`mosi/clips`); 0 = never.
    pub image_period: u64,
    pub paramcrop: ParamCropSection,
    pub contrastive: ContrastiveSection,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            enable: false,
            generator: "MoSIGenerator".into(),
            loss: "MoSIJoint".into(),
            loss_weights: vec![1.0],
            distance_jitter: vec![1.0, 1.0],
            scale_jitter: false,
            num_frames: 16,
            data_mode: DataMode::Xy,
            decouple: true,
            frame_size_standardize_enable: true,
            standard_size: StandardSize::Fixed(320),
            label_mode: LabelMode::Joint,
            zero_out: false,
            static_mask: true,
            aspect_ratio: vec![1.0, 1.0],
            mask_size_ratio: vec![0.3, 0.5],
            num_clips_per_video: 1,
            imagenet_data_size: None,
            flip_mode: FlipMode::Image,
            image_period: 500,
            paramcrop: ParamCropSection::default(),
            contrastive: ContrastiveSection::default(),
        }
    }
}
