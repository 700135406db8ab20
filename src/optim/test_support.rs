//! Config loading for the optimiser tests.

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
