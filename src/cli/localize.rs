//! `tada localize`: sliding-window testing of a BMN model on TEST.TEST_SET
//! (docs/localization.md#testing), also what `tada test` runs for TASK_TYPE localization.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::config_args::ConfigArgs;

#[derive(clap::Args)]
pub struct Localize {
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long)]
    weights: PathBuf,
    /// Folder of the proposals, the detection JSON and the metrics (default: the run folder
    /// the weights belong to, beside the weights outside a run).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

impl Localize {
    pub fn run(self) -> Result<()> {
        let loaded = self.config.load()?;
        run(&loaded, &self.weights, self.output)
    }
}

/// Tests `weights` and prints what was written and measured.
pub fn run(
    loaded: &tada::config::LoadedConfig,
    weights: &Path,
    out: Option<PathBuf>,
) -> Result<()> {
    if tada::dist::world_size() > 1 || std::env::var_os("WORLD_SIZE").is_some_and(|w| w != "1") {
        bail!("`tada localize` runs in one process; start it without a launcher");
    }
    let out_dir = out.unwrap_or_else(|| super::test::run_folder(weights));
    let opts = tada::runs::localize::LocalizeOptions {
        out_dir,
        epoch_tag: tada::runs::localize::epoch_tag(weights),
    };
    let r = tada::runs::localize::localize(loaded, weights, &opts)
        .map_err(|e| e.with_origin(&loaded.sources))?;
    println!(
        "{} videos, {} windows: {} proposals, {} detections in {}",
        r.videos,
        r.windows,
        r.proposals,
        r.detections,
        r.detections_file.display()
    );
    for (what, m) in [("action", &r.action), ("verb", &r.verb), ("noun", &r.noun)] {
        if let Some(m) = m {
            let per: Vec<String> = m
                .thresholds
                .iter()
                .zip(&m.map)
                .map(|(t, v)| format!("{t:.1}: {:.2}%", 100.0 * v))
                .collect();
            println!("{what} mAP {:.2}% ({})", 100.0 * m.average, per.join(", "));
        }
    }
    Ok(())
}
