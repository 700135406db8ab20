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
    pub standard_size: usize,
    pub label_mode: LabelMode,
    pub zero_out: bool,
    pub static_mask: bool,
    pub aspect_ratio: Vec<f64>,
    pub mask_size_ratio: Vec<f64>,
    pub num_clips_per_video: usize,
    pub imagenet_data_size: Option<u32>,
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
            standard_size: 320,
            label_mode: LabelMode::Joint,
            zero_out: false,
            static_mask: true,
            aspect_ratio: vec![1.0, 1.0],
            mask_size_ratio: vec![0.3, 0.5],
            num_clips_per_video: 1,
            imagenet_data_size: None,
        }
    }
}
