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
    use tada::runs::localize::LocalizeMetrics;
    if let Some(LocalizeMetrics::Detections(m)) = &r.metrics {
        for (what, s) in [("action", &m.action), ("verb", &m.verb), ("noun", &m.noun)] {
            let per: Vec<String> = m
                .tiou_thresholds
                .iter()
                .zip(&s.map)
                .map(|(t, v)| format!("{t:.1}: {:.2}%", 100.0 * v))
                .collect();
            println!("{what} mAP {:.2}% ({})", 100.0 * s.average, per.join(", "));
        }
    }
    if let Some(m) = &r.metrics {
        let ar = |an| {
            m.ar_at(an)
                .map_or("n/a".into(), |a| format!("{:.2}%", 100.0 * a))
        };
        println!(
            "proposals (tIoU 0.5:0.95): AR@1 {}, AR@10 {}, AR@100 {}",
            ar(1.0),
            ar(10.0),
            ar(100.0)
        );
    }
    if let Some(f) = &r.metrics_file {
        println!("metrics in {}", f.display());
    }
    Ok(())
}
