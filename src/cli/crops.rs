//! `tada crops`: ParamCrop's two views over synthetic clips, and how much they overlap.

use std::path::{Path, PathBuf};

use anyhow::Result;
use tada::output_path::check_output_dir;

use super::config_args::{ConfigArgs, AFTER_SET};

#[derive(clap::Args)]
pub struct Crops {
    #[command(flatten)]
    config: ConfigArgs,
    /// A checkpoint holding trained ParamCrop weights (paramcrop.*); default: the initial net.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder.
    // `--out`, the old spelling, stays as a hidden alias so that scripts using it still work.
    #[arg(short = 'o', long = "output", alias = "out", value_name = "DIR")]
    output: PathBuf,
    /// Number of clips.
    #[arg(long, default_value_t = 4, display_order = AFTER_SET)]
    clips: usize,
    #[arg(long, default_value_t = 0, display_order = AFTER_SET + 1)]
    seed: u64,
}

impl Crops {
    pub fn run(self) -> Result<()> {
        let (weights, out) = (self.weights.as_deref(), &self.output);
        let inputs: Vec<&Path> = [Some(self.config.config.as_path()), weights]
            .into_iter()
            .flatten()
            .collect();
        check_output_dir(out, &["crops.json"], &inputs)?;
        let cfg = self.config.load()?.config;
        let stats =
            tada::tasks::contrastive::crops::crops(&cfg, weights, out, self.clips, self.seed)?;
        for (i, s) in stats.iter().enumerate() {
            println!(
                "clip {i}: IoU {:.3} (spatial {:.3}, temporal {:.3}), centre distance {:.3}",
                s.iou, s.spatial_iou, s.temporal_iou, s.centre_distance
            );
        }
        println!("wrote {}", out.join("crops.json").display());
        Ok(())
    }
}
