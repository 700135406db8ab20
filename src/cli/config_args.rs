//! `--config FILE` and `--set KEY=VALUE`, flattened into every command that reads a config: the
//! one place that loads it (as every command reads it, over the MoSI recipe for `mosi-preview`,
//! or as `bench data` chooses) and names the file when it cannot.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Arg;
use tada::config::recipes;
use tada::config::{ConfigError, LoadedConfig};

/// Where `--help` lists `--set`: after the command's own files and folders (which clap numbers
/// in the order they are declared) and before its tuning flags, which take [`AFTER_SET`] and up.
const SET_ORDER: usize = 100;
/// The display order of the first flag that `--help` lists after `--set`.
pub const AFTER_SET: usize = SET_ORDER + 1;

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The YAML config (PySlowFast's --cfg); its _BASE files and the defaults fill in the rest.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Override a key after the file: --set TRAIN.BATCH_SIZE=8 (repeatable; PySlowFast's
    /// trailing KEY VALUE pairs).
    #[arg(long = "set", value_name = "KEY=VALUE", display_order = SET_ORDER)]
    pub set: Vec<String>,
}

type Loader = fn(&Path, &[String]) -> Result<LoadedConfig, ConfigError>;

impl ConfigArgs {
    /// The file with its bases, over the built-in defaults (and the MoSI recipe for a MoSI
    /// config).
    pub fn load(&self) -> Result<LoadedConfig> {
        self.load_with(tada::config::load)
    }

    /// The file over the reference's MoSI run recipe.
    pub fn load_mosi(&self) -> Result<LoadedConfig> {
        self.load_with(|path, set| recipes::MOSI.load(path, set))
    }

    /// As `tada bench data` reads it: plainly for supervised training on videos, else over the
    /// MoSI recipe.
    pub fn load_bench_data(&self) -> Result<LoadedConfig> {
        self.load_with(recipes::load_bench_data)
    }

    fn load_with(&self, load: Loader) -> Result<LoadedConfig> {
        load(&self.config, &self.set)
            .with_context(|| format!("cannot load config {}", self.config.display()))
    }
}

/// For `#[command(mut_args(…))]`: a command's own help for `--config` and `--set`. It changes
/// them in place, since `mut_arg` would move `--config` to the end of the usage line.
pub fn help(config: &'static str, set: Option<&'static str>) -> impl FnMut(Arg) -> Arg {
    move |arg| match (arg.get_id().as_str(), set) {
        ("config", _) => arg.help(config),
        ("set", Some(set)) => arg.help(set),
        _ => arg,
    }
}
