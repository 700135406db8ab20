//! `tada config show`: the merged configuration as YAML.

use anyhow::Result;

use super::config_args::{self, ConfigArgs};

#[derive(clap::Subcommand)]
pub enum Config {
    /// Print the merged configuration (bases, defaults and overrides applied) as YAML.
    Show(Show),
}

#[derive(clap::Args)]
#[command(mut_args(config_args::help(
    "The YAML config file",
    Some("Override a key: --set TRAIN.BATCH_SIZE=8 (repeatable)"),
)))]
pub struct Show {
    #[command(flatten)]
    config: ConfigArgs,
}

impl Config {
    pub fn run(self) -> Result<()> {
        match self {
            Config::Show(show) => print!("{}", show.config.load()?.to_yaml()),
        }
        Ok(())
    }
}
