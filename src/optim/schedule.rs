//! The learning-rate schedule (docs/training.md#learning-rate-schedule): a function of the
//! fractional epoch, evaluated every iteration, with an optional linear warm-up.

use std::f64::consts::PI;

use crate::config::schema::{LrPolicy, OptimizerConfig};

/// The epoch (fractional) at iteration `iter` of the outer epoch starting at `cur_epoch`, where
/// one outer epoch is `iters_per_outer_epoch` iterations covering NUM_FOLDS dataset passes.
pub fn fractional_epoch(
    cur_epoch: u64,
    iter: usize,
    iters_per_outer_epoch: usize,
    num_folds: u32,
) -> f64 {
    // The reference's expression and evaluation order.
    cur_epoch as f64 + f64::from(num_folds) * iter as f64 / iters_per_outer_epoch.max(1) as f64
}

/// LR_POLICY with its parameters, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    policy: LrPolicy,
    base_lr: f64,
    max_epoch: f64,
    warmup_epochs: f64,
    warmup_start_lr: f64,
    cosine_after_warmup: bool,
    cosine_end_lr: f64,
    steps: Vec<f64>,
    lrs: Vec<f64>,
}

impl LrSchedule {
    /// The schedule of OPTIMIZER around `base_lr` (BASE_LR after ADJUST_LR,
    /// [`crate::config::Config::base_lr`]). The keys are validated with the config.
    pub fn new(o: &OptimizerConfig, base_lr: f64) -> Self {
        Self {
            policy: o.lr_policy,
            base_lr,
            max_epoch: f64::from(o.max_epoch),
            warmup_epochs: o.warmup_epochs,
            warmup_start_lr: o.warmup_start_lr,
            cosine_after_warmup: o.cosine_after_warmup,
            cosine_end_lr: o.cosine_end_lr,
            steps: o.steps.clone().unwrap_or_default(),
            lrs: o.lrs.clone().unwrap_or_default(),
        }
    }

    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    /// The learning rate at fractional epoch `e` (before a group's lr_mult).
    pub fn lr_at(&self, e: f64) -> f64 {
        if e < self.warmup_epochs {
            let end = self.policy_lr(self.warmup_epochs);
            let alpha = (end - self.warmup_start_lr) / self.warmup_epochs;
            return e * alpha + self.warmup_start_lr;
        }
        self.policy_lr(e)
    }

    fn policy_lr(&self, e: f64) -> f64 {
        match self.policy {
            LrPolicy::Cosine => self.base_lr * ((PI * e / self.max_epoch).cos() + 1.0) * 0.5,
            LrPolicy::CosineV2 => {
                let offset = if self.cosine_after_warmup {
                    self.warmup_epochs
                } else {
                    0.0
                };
                let end = self.cosine_end_lr;
                end + (self.base_lr - end)
                    * ((PI * (e - offset) / (self.max_epoch - offset)).cos() + 1.0)
                    * 0.5
            }
            LrPolicy::StepsWithRelativeLrs => {
                // Index of the last step boundary <= e; past MAX_EPOCH, the last one.
                let i = self
                    .steps
                    .iter()
                    .chain(std::iter::once(&self.max_epoch))
                    .position(|&s| e < s)
                    .unwrap_or(self.steps.len());
                // validate() guarantees steps[0] = 0, so for e >= 0 the index is >= 1.
                self.lrs[i.saturating_sub(1)] * self.base_lr
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_support::{base_lr_of, config as cfg, schedule_of};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-12)
    }

    #[test]
    fn cosine_with_warmup_at_key_points() {
        // The MoSI fine-tune recipe: adam, BASE_LR 0.002, 300 epochs, 10 warm-up from 2e-4.
        let s = schedule_of(&cfg("OPTIMIZER: {BASE_LR: 0.002, MAX_EPOCH: 300, \
             WARMUP_EPOCHS: 10, WARMUP_START_LR: 0.0002}"));
        // Warm-up ends at cosine(10) = 0.001·(1 + cos(π/30)).
        let end = 0.001 * (1.0 + (PI / 30.0).cos());
        assert!(close(s.lr_at(0.0), 0.0002));
        assert!(close(s.lr_at(5.0), 0.0002 + 5.0 * (end - 0.0002) / 10.0));
        assert!(close(s.lr_at(10.0), end));
        assert!(close(s.lr_at(150.0), 0.001)); // cos(π/2) = 0
        assert!(s.lr_at(300.0).abs() < 1e-18);
        // Monotone through the warm-up boundary.
        assert!(s.lr_at(9.999) < s.lr_at(10.0) && s.lr_at(10.0) > s.lr_at(10.001));
    }

    #[test]
    fn cosine_v2_after_warmup_starts_at_base_and_ends_at_end_lr() {
        let s = schedule_of(&cfg("OPTIMIZER: {LR_POLICY: cosine_v2, BASE_LR: 0.1, \
             MAX_EPOCH: 110, WARMUP_EPOCHS: 10, WARMUP_START_LR: 0.01, \
             COSINE_AFTER_WARMUP: true, COSINE_END_LR: 0.001}"));
        assert!(close(s.lr_at(0.0), 0.01));
        assert!(close(s.lr_at(5.0), 0.01 + 5.0 * (0.1 - 0.01) / 10.0));
        assert!(close(s.lr_at(10.0), 0.1));
        // Middle of the cosine part: (10 + 110) / 2 = 60.
        assert!(close(s.lr_at(60.0), 0.001 + 0.099 * 0.5));
        assert!(close(s.lr_at(110.0), 0.001));
        // Without COSINE_AFTER_WARMUP the cosine runs from epoch 0.
        let s = schedule_of(&cfg("OPTIMIZER: {LR_POLICY: cosine_v2, BASE_LR: 0.1, \
             MAX_EPOCH: 100, WARMUP_EPOCHS: 0, COSINE_END_LR: 0.0}"));
        assert!(close(s.lr_at(50.0), 0.05));
    }

    #[test]
    fn steps_with_relative_lrs() {
        let s = schedule_of(&cfg("OPTIMIZER: {LR_POLICY: steps_with_relative_lrs, \
             BASE_LR: 0.1, MAX_EPOCH: 100, WARMUP_EPOCHS: 0, STEPS: [0, 30, 60], \
             LRS: [1, 0.1, 0.01]}"));
        assert!(close(s.lr_at(0.0), 0.1));
        assert!(close(s.lr_at(29.99), 0.1));
        assert!(close(s.lr_at(30.0), 0.01));
        assert!(close(s.lr_at(75.0), 0.001));
        assert!(close(s.lr_at(100.0), 0.001));
        // Warm-up towards the first step's rate.
        let s = schedule_of(&cfg("OPTIMIZER: {LR_POLICY: steps_with_relative_lrs, \
             BASE_LR: 0.1, MAX_EPOCH: 100, WARMUP_EPOCHS: 2, WARMUP_START_LR: 0.0, \
             STEPS: [0, 30], LRS: [1, 0.1]}"));
        assert!(close(s.lr_at(1.0), 0.05));
    }

    #[test]
    fn invalid_schedules_are_refused_with_the_config() {
        let key = |yaml: &str| {
            let set = ["VIDEO.HEAD.NUM_CLASSES=2".to_string()];
            match crate::config::load_str(yaml, "t.yaml", &set) {
                Err(crate::config::ConfigError::Invalid { key, .. }) => Some(key),
                Err(e) => panic!("{e}"),
                Ok(_) => None,
            }
        };
        let p = "OPTIMIZER: {LR_POLICY: steps_with_relative_lrs, MAX_EPOCH: 20, \
                 WARMUP_EPOCHS: 0, ";
        let steps = Some("OPTIMIZER.STEPS".to_string());
        let lrs = Some("OPTIMIZER.LRS".to_string());
        assert_eq!(key(&format!("{p}LRS: [1]}}")), steps);
        assert_eq!(key(&format!("{p}STEPS: [0]}}")), lrs);
        assert_eq!(key(&format!("{p}STEPS: [5, 10], LRS: [1, 0.1]}}")), steps);
        assert_eq!(
            key(&format!("{p}STEPS: [0, 10, 5], LRS: [1, 0.1, 0.01]}}")),
            steps
        );
        assert_eq!(key(&format!("{p}STEPS: [0, 10], LRS: [1]}}")), lrs);
        assert_eq!(key(&format!("{p}STEPS: [0, 10], LRS: [1, 0.1]}}")), None);
        let v2 = "OPTIMIZER: {LR_POLICY: cosine_v2, ADJUST_LR: false, BASE_LR: 0.1, ";
        assert_eq!(
            key(&format!("{v2}COSINE_END_LR: 0.1}}")).as_deref(),
            Some("OPTIMIZER.COSINE_END_LR")
        );
        assert_eq!(
            key(&format!(
                "{v2}COSINE_END_LR: 0.0, MAX_EPOCH: 10, WARMUP_EPOCHS: 10, COSINE_AFTER_WARMUP: true}}"
            ))
            .as_deref(),
            Some("OPTIMIZER.WARMUP_EPOCHS")
        );
    }

    #[test]
    fn adjust_lr_scales_sgd_and_lars_only() {
        let base = "TRAIN: {BATCH_SIZE: 64}\nPRETRAIN: {ENABLE: true, NUM_CLIPS_PER_VIDEO: 2}\n";
        let lr = |rest: &str| base_lr_of(&cfg(&format!("{base}{rest}")));
        let on = "OPTIMIZER: {BASE_LR: 0.3, ADJUST_LR: true, OPTIM_METHOD:";
        assert!(close(lr(&format!("{on} sgd}}")), 0.3 * 64.0 * 2.0 / 256.0));
        assert!(close(lr(&format!("{on} lars}}")), 0.15));
        assert!(close(lr(&format!("{on} adam}}")), 0.3));
        assert!(close(
            lr("OPTIMIZER: {BASE_LR: 0.3, ADJUST_LR: false, OPTIM_METHOD: sgd}"),
            0.3
        ));
        // The adjusted rate is what the schedule runs from.
        let c = cfg(&format!("{base}{on} sgd, WARMUP_EPOCHS: 0}}"));
        let s = schedule_of(&c);
        assert!(close(s.lr_at(0.0), 0.15));
    }

    #[test]
    fn fractional_epoch_follows_folds() {
        assert_eq!(fractional_epoch(4, 0, 100, 1), 4.0);
        assert_eq!(fractional_epoch(4, 50, 100, 1), 4.5);
        // One outer epoch of 3 folds spans three epochs of schedule.
        assert_eq!(fractional_epoch(30, 50, 100, 3), 31.5);
    }
}
