//! LOCALIZATION section: BMN's losses and post-processing (src/localization). Defaults are the
//! reference's localisation run recipe (configs/pool/run/training/localization.yaml), the only
//! place those keys are defined.

use serde::{Deserialize, Serialize};

/// LOCALIZATION.POST_PROCESS: proposal scoring and soft-NMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct PostProcessConfig {
    pub soft_nms_alpha: f64,
    pub soft_nms_low_thres: f64,
    pub soft_nms_high_thres: f64,
    /// Seconds of video per kept proposal; unset in the recipe, set by bmn_epic.yaml.
    pub prop_num_ratio: Option<f64>,
    /// Proposals scoring at most this are dropped before soft-NMS.
    pub select_score: f64,
    /// How a proposal is scored; tada builds `cr` (clr^CLR_POWER · reg^REG_POWER).
    pub score_type: String,
    pub clr_power: f64,
    pub reg_power: f64,
    pub iou_power: f64,
    /// A detection's score is the proposal's times its action score to this power.
    pub action_score_power: f64,
}

impl Default for PostProcessConfig {
    fn default() -> Self {
        Self {
            soft_nms_alpha: 0.4,
            soft_nms_low_thres: 0.0,
            soft_nms_high_thres: 0.0,
            prop_num_ratio: None,
            select_score: 0.0001,
            score_type: "cr".into(),
            clr_power: 1.2,
            reg_power: 1.2,
            iou_power: 2.0,
            action_score_power: 1.0,
        }
    }
}

/// LOCALIZATION section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct LocalizationConfig {
    pub enable: bool,
    /// Loss terms joined by `+`; tada builds `Tem+PemReg+PemCls`.
    pub loss: String,
    /// One weight per term of LOSS, in order (extra entries are unused, as in the reference).
    pub loss_weights: Vec<f64>,
    pub pos_cls_thres: f64,
    pub pos_reg_thres: f64,
    pub neg_reg_thres: f64,
    pub post_process: PostProcessConfig,
    /// Folder (in the run folder) of the per-video proposal files `tada localize` writes,
    /// suffixed `_ep<epoch>_<TEST_SET>` as the reference's.
    pub props_dir: String,
    /// Stem of the detection JSON, suffixed as PROPS_DIR.
    pub result_file: String,
}

impl Default for LocalizationConfig {
    fn default() -> Self {
        Self {
            enable: false,
            loss: "Tem+PemReg+PemCls".into(),
            loss_weights: vec![1.0, 10.0, 1.0],
            pos_cls_thres: 0.9,
            pos_reg_thres: 0.7,
            neg_reg_thres: 0.3,
            post_process: PostProcessConfig::default(),
            props_dir: "prop_results".into(),
            result_file: "localization_detection_res".into(),
        }
    }
}
