//! `tada info`: the build and its devices, and with `--model` the size of a config's model.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::config_args::ConfigArgs;
use tada::info::thousands;
use tada::tasks::mosi::clips_per_item;

#[derive(clap::Args)]
pub struct Info {
    /// A config whose model to describe: parameters and output shape for its input.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Override a key of the --model config: --set TRAIN.BATCH_SIZE=8 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "model")]
    set: Vec<String>,
}

impl Info {
    pub fn run(self) -> Result<()> {
        print!("{}", tada::info::Info::collect());
        let Some(path) = self.model else {
            return Ok(());
        };
        let config = ConfigArgs {
            config: path,
            set: self.set,
        };
        let (cfg, note) = tada::models::summary::probe_config(&config.load()?);
        let path = &config.config;
        let clips = clips_per_item(&cfg)?;
        let s = tada::models::summary::summarize(&cfg, clips)
            .with_context(|| format!("cannot build the model of {}", path.display()))?;
        println!("model          {}", path.display());
        println!(
            "parameters     {} ({} in the backbone)",
            thousands(s.parameters as u64),
            thousands(s.backbone_parameters as u64)
        );
        match note {
            Some(note) => println!("input          {:?} ({note})", s.input_shape),
            None => println!("input          {:?}", s.input_shape),
        }
        println!("output         {}", s.output_description());
        if let Some((name, n)) = s.reference {
            println!(
                "reference      {name} backbone: {} parameters (docs/models.md#parameter-counts){}",
                thousands(n as u64),
                if n == s.backbone_parameters {
                    ", equal"
                } else {
                    ", differs (reduced config?)"
                }
            );
        }
        Ok(())
    }
}
