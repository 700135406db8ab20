//! The parts of a run that come from its config sections: the loop's settings, the optimiser's
//! groups, BASE_LR after ADJUST_LR, and the optimiser with its schedule.

use std::collections::HashSet;
use std::path::Path;

use tch::nn::VarStore;

use crate::config::{Config, LoadedConfig};
use crate::optim::{
    build_groups, clip_threshold, trainable_parameters, GroupRules, LrSchedule, Optimizer,
};
use crate::tasks::Task;
use crate::train::{LoopSettings, TrainError};

/// The loop runs one pass of the data per epoch.
pub(super) fn check_folds(cfg: &Config) -> Result<(), TrainError> {
    if cfg.train.num_folds != 1 {
        return Err(TrainError::config(
            "TRAIN.NUM_FOLDS",
            format!(
                "is {}; tada's loop runs one pass per epoch, set 1",
                cfg.train.num_folds
            ),
        ));
    }
    Ok(())
}

/// A distributed run: TRAIN.BATCH_SIZE is the global batch, shared out evenly; BN.SYNC turns
/// SyncBatchNorm on. Says the global numbers once.
pub(super) fn check_world(cfg: &Config) -> Result<(), TrainError> {
    let world = crate::dist::world_size();
    crate::dist::sync_bn::enable(cfg.bn.sync && world > 1);
    if world == 1 {
        return Ok(());
    }
    let batch = cfg.train.batch_size;
    if batch % world != 0 || batch < world {
        return Err(TrainError::config(
            "TRAIN.BATCH_SIZE",
            format!(
                "is {batch}, which {world} ranks cannot share evenly: TRAIN.BATCH_SIZE is the \
                 global batch of a step and every rank takes BATCH_SIZE / {world}; use a \
                 multiple of {world}"
            ),
        ));
    }
    // Each rank cuts its share of clips from whole videos (docs/data.md#clips-per-decode).
    let k = cfg.data.clips_per_decode.max(1);
    if (batch / world) % k != 0 {
        return Err(TrainError::config(
            "DATA.CLIPS_PER_DECODE",
            format!(
                "is {k}, but each of the {world} ranks takes TRAIN.BATCH_SIZE / {world} = {} \
                 clips, which is not a multiple of it",
                batch / world
            ),
        ));
    }
    tracing::info!(
        "data parallel: {world} ranks x {} = global batch {batch} ({} clips per step), base LR \
         {} for the global batch{}",
        batch / world,
        cfg.clips_per_step(),
        cfg.base_lr(),
        if cfg.bn.sync { ", SyncBatchNorm" } else { "" }
    );
    Ok(())
}

/// Refuses a config that asks for training behaviour tada does not build: training without it
/// would not be the run the config describes.
pub(super) fn check_built(cfg: &Config) -> Result<(), TrainError> {
    // The reference scales each pretext loss term by its weight; tada's pretext losses are
    // unweighted, so any other weight would train something else.
    let weights = &cfg.pretrain.loss_weights;
    if cfg.pretrain.enable && weights.iter().any(|&w| w != 1.0) {
        return Err(TrainError::config(
            "PRETRAIN.LOSS_WEIGHTS",
            format!(
                "is {weights:?}: tada does not weight the pretext loss yet; set [1.0] (--set \
                 PRETRAIN.LOSS_WEIGHTS=[1.0])"
            ),
        ));
    }
    if cfg.pretrain.enable {
        // The pretext's generator makes its own views; the reference skips these there (and
        // crashes on mixup, which wants class labels).
        let a = &cfg.augmentation;
        let supervised_only = [
            (a.autoaugment.enable, "AUGMENTATION.AUTOAUGMENT.ENABLE"),
            (
                a.random_erasing.enable,
                "AUGMENTATION.RANDOM_ERASING.ENABLE",
            ),
            (a.mixup.enable, "AUGMENTATION.MIXUP.ENABLE"),
            (a.cutmix.enable, "AUGMENTATION.CUTMIX.ENABLE"),
            (a.label_smoothing != 0.0, "AUGMENTATION.LABEL_SMOOTHING"),
        ];
        if let Some((_, key)) = supervised_only.iter().find(|(on, _)| *on) {
            let off = if *key == "AUGMENTATION.LABEL_SMOOTHING" {
                "0"
            } else {
                "false"
            };
            return Err(TrainError::config(
                key,
                format!(
                    "is on, but it augments supervised training only and this config \
                     pretrains (PRETRAIN.ENABLE), whose generator makes its own views: set it \
                     off (--set {key}={off})"
                ),
            ));
        }
    }
    Ok(())
}

/// The loop's settings from TRAIN, OPTIMIZER and the top-level keys; the config it records has
/// the run folder `root` as its OUTPUT_DIR (`--output` or the config's).
pub fn loop_settings(loaded: &LoadedConfig, root: &Path) -> Result<LoopSettings, TrainError> {
    let mut recorded = loaded.clone();
    recorded.config.output_dir = root.to_string_lossy().into_owned();
    let c = &loaded.config;
    Ok(LoopSettings {
        max_epoch: u64::from(c.optimizer.max_epoch),
        checkpoint_period: u64::from(c.train.checkpoint_period.max(1)),
        log_period: u64::from(c.log_period.max(1)),
        batch_size: c.train.batch_size,
        micro_batch_size: c.train.micro_batch_size,
        precision: c.train.precision,
        clip_grad_norm: clip_threshold(&c.optimizer),
        seed: c.random_seed,
        auto_resume: c.train.auto_resume,
        ema_decay: c.model.ema.enable.then_some(c.model.ema.decay),
        config_yaml: recorded.to_yaml(),
    })
}

/// The rules that split the model's parameters into groups.
pub fn group_rules(cfg: &Config) -> GroupRules<'_> {
    GroupRules {
        optimizer: &cfg.optimizer,
        bn: &cfg.bn,
        only_linear: cfg.train.only_linear,
        lr_reduce: cfg.train.lr_reduce && cfg.train.fine_tune,
        depth: cfg.video.backbone.depth.as_ref(),
    }
}

/// The optimiser and LR schedule of a run: the task's own groups (ParamCrop's net) as the task
/// declares them, the model's groups from the rest of `vs`'s trainable variables by the
/// config's rules.
pub fn optimisation(
    cfg: &Config,
    vs: &VarStore,
    task: &dyn Task,
) -> Result<(Optimizer, LrSchedule), TrainError> {
    let base = cfg.base_lr();
    let params = trainable_parameters(vs);
    let task_groups = task.param_groups(base)?;
    let claimed: HashSet<&str> = task_groups
        .iter()
        .flat_map(|g| g.params.iter().map(|(n, _)| n.as_str()))
        .collect();
    let model_params: Vec<_> = params
        .iter()
        .filter(|(n, _)| !claimed.contains(n.as_str()))
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let mut groups = build_groups(&model_params, &group_rules(cfg))?;
    groups.extend(task_groups);
    let optimizer = Optimizer::new(&cfg.optimizer, groups, &params, base)?;
    let schedule = LrSchedule::new(&cfg.optimizer, base);
    Ok((optimizer, schedule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_pretext_losses_are_refused_naming_the_key() {
        let mut cfg = Config::default();
        cfg.pretrain.enable = true;
        assert!(check_built(&cfg).is_ok());
        cfg.pretrain.loss_weights = vec![0.5];
        let e = check_built(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("PRETRAIN.LOSS_WEIGHTS") && e.contains("[0.5]") && e.contains("[1.0]"),
            "{e}"
        );
        // Fine-tuning has no pretext loss to weight.
        cfg.pretrain.enable = false;
        assert!(check_built(&cfg).is_ok());
    }

    #[test]
    fn supervised_augmentations_in_pretraining_are_refused_naming_the_key() {
        let mut cfg = Config::default();
        cfg.augmentation.mixup.enable = true;
        assert!(check_built(&cfg).is_ok(), "fine-tuning mixes");
        cfg.pretrain.enable = true;
        let e = check_built(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("AUGMENTATION.MIXUP.ENABLE")
                && e.contains("--set AUGMENTATION.MIXUP.ENABLE=false"),
            "{e}"
        );
        cfg.augmentation.mixup.enable = false;
        cfg.augmentation.label_smoothing = 0.1;
        let e = check_built(&cfg).unwrap_err().to_string();
        assert!(e.contains("AUGMENTATION.LABEL_SMOOTHING=0"), "{e}");
    }
}
