//! Config loading for the optimiser tests.

use tch::nn::VarStore;

use super::{build_groups, trainable_parameters, LrSchedule, OptimError, Optimizer};
use crate::config::{load_str, Config};

/// `yaml` loaded as a config file. VIDEO.HEAD.NUM_CLASSES is set because validation requires it
/// and no optimiser test cares about it.
pub(super) fn config(yaml: &str) -> Config {
    let overrides = ["VIDEO.HEAD.NUM_CLASSES=2".to_string()];
    match load_str(yaml, "test.yaml", &overrides) {
        Ok(c) => c.config,
        Err(e) => panic!("test config does not load: {e}"),
    }
}

/// BASE_LR after ADJUST_LR for `c`'s batch, as a run computes it.
pub(super) fn base_lr_of(c: &Config) -> f64 {
    c.base_lr()
}

/// The schedule a run of `c` builds.
pub(super) fn schedule_of(c: &Config) -> LrSchedule {
    LrSchedule::new(&c.optimizer, base_lr_of(c))
}

/// The optimiser a run of `c` builds for the model in `vs` (a task with no groups of its own).
pub(super) fn optimizer_of(vs: &VarStore, c: &Config) -> Result<Optimizer, OptimError> {
    let params = trainable_parameters(vs);
    let groups = build_groups(&params, &crate::runs::group_rules(c))?;
    Optimizer::new(&c.optimizer, groups, &params, base_lr_of(c))
}
