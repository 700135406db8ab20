//! OPTIMIZER section: optimiser and learning-rate schedule.

use serde::{Deserialize, Serialize};

/// OPTIMIZER.OPTIM_METHOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimMethod {
    Sgd,
    Adam,
    Adamw,
    Lars,
}

/// OPTIMIZER.LR_POLICY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrPolicy {
    Cosine,
    CosineV2,
    StepsWithRelativeLrs,
}

/// OPTIMIZER section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct OptimizerConfig {
    pub optim_method: OptimMethod,
    pub base_lr: f64,
    pub adjust_lr: bool,
    pub lr_policy: LrPolicy,
    pub max_epoch: u32,
    pub warmup_epochs: f64,
    pub warmup_start_lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub bias_double: bool,
    pub new_params: Vec<String>,
    pub new_params_mult: f64,
    pub new_params_wd_mult: f64,
    pub layer_wise_lr_decay: f64,
    pub head_lrmult: Option<f64>,
    pub cosine_after_warmup: bool,
    pub cosine_end_lr: f64,
    pub steps: Option<Vec<f64>>,
    pub lrs: Option<Vec<f64>>,
    /// Clip the global gradient norm to this value; 0 disables clipping (tada addition).
    pub clip_grad_norm: f64,
}

impl OptimizerConfig {
    /// BASE_LR after ADJUST_LR's linear scaling rule, which applies to sgd and lars only:
    /// BASE_LR · clips_per_step / 256 ([`super::Config::clips_per_step`]).
    ///
    /// The reference multiplies by NUM_GPUS · TRAIN.BATCH_SIZE, i.e. it treats BATCH_SIZE as a
    /// per-GPU batch, while its loader splits BATCH_SIZE across the GPUs. tada's
    /// TRAIN.BATCH_SIZE is the whole batch of one step, which is what the rule (SimCLR's) is
    /// about.
    pub fn adjusted_base_lr(&self, clips_per_step: usize) -> f64 {
        if !self.adjust_lr || !matches!(self.optim_method, OptimMethod::Sgd | OptimMethod::Lars) {
            return self.base_lr;
        }
        self.base_lr * clips_per_step as f64 / 256.0
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            optim_method: OptimMethod::Adam,
            base_lr: 0.002,
            adjust_lr: false,
            lr_policy: LrPolicy::Cosine,
            max_epoch: 300,
            warmup_epochs: 10.0,
            warmup_start_lr: 0.0002,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 1e-3,
            bias_double: false,
            new_params: Vec::new(),
            new_params_mult: 10.0,
            new_params_wd_mult: 1.0,
            layer_wise_lr_decay: 1.0,
            head_lrmult: None,
            cosine_after_warmup: false,
            cosine_end_lr: 1e-6,
            steps: None,
            lrs: None,
            clip_grad_norm: 0.0,
        }
    }
}
