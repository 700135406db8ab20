//! `tada mosi-preview`: MoSI's pseudo-motion clips of synthetic images, written as pictures.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tada::output_path::check_output_dir;
use tada::tasks::mosi::preview::{mosi_preview, PreviewOptions};

use super::config_args::{self, ConfigArgs, AFTER_SET};

#[derive(clap::Args)]
#[command(mut_args(config_args::help(
    "The YAML config; keys it leaves out default to the reference's MoSI run recipe",
    Some("Override a key: --set PRETRAIN.NUM_FRAMES=8 (repeatable)"),
)))]
pub struct MosiPreview {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output folder.
    // `--out`, the old spelling, stays as a hidden alias so that scripts using it still work.
    #[arg(short = 'o', long = "output", alias = "out", value_name = "DIR")]
    output: PathBuf,
    /// Number of source images.
    #[arg(long, default_value_t = 2, display_order = AFTER_SET)]
    images: usize,
    /// Seed of the images and of the random draws.
    #[arg(long, default_value_t = 0, display_order = AFTER_SET + 1)]
    seed: u64,
    /// Split whose behaviour to show: train (random start, jitter, flip, colour) or test.
    #[arg(long, value_enum, default_value_t = SplitArg::Train, display_order = AFTER_SET + 2)]
    split: SplitArg,
}

/// `--split`: the generator's [`tada_augment::mosi::Split`] as clap spells its values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SplitArg {
    Train,
    Val,
    Test,
}

impl From<SplitArg> for tada_augment::mosi::Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => Self::Train,
            SplitArg::Val => Self::Val,
            SplitArg::Test => Self::Test,
        }
    }
}

impl MosiPreview {
    pub fn run(self) -> Result<()> {
        let (config, out) = (&self.config.config, &self.output);
        check_output_dir(out, &["labels.json"], &[config])?;
        let loaded = self.config.load_mosi()?;
        let opts = PreviewOptions {
            images: self.images,
            seed: self.seed,
            split: self.split.into(),
            ..PreviewOptions::default()
        };
        let files = mosi_preview(&loaded.config, out, &opts)
            .with_context(|| format!("cannot make the MoSI preview of {}", config.display()))?;
        println!("wrote {} files to {}", files.len(), out.display());
        Ok(())
    }
}
