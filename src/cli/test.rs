//! `tada test`: the multi-view test of trained weights, reported as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tada::output_path::check_output_file;

use super::config_args::ConfigArgs;

#[derive(clap::Args)]
pub struct Test {
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long)]
    weights: PathBuf,
    /// Where to write the JSON report (default: test_results.json beside the weights).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

impl Test {
    pub fn run(self) -> Result<()> {
        let weights = &self.weights;
        // Checked before the evaluation, which can take hours.
        let out = self
            .output
            .unwrap_or_else(|| weights.with_file_name("test_results.json"));
        check_output_file(&out, &[&self.config.config, weights])?;
        let loaded = self.config.load()?;
        let r =
            tada::runs::test::test(&loaded, weights).map_err(|e| e.with_origin(&loaded.sources))?;
        tada::atomic_write::write(&out, serde_json::to_string_pretty(&r)?.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
        let acc5 = r.acc5.map_or("n/a (fewer than 5 classes)".into(), |a| {
            format!("{:.2}%", 100.0 * a)
        });
        println!(
            "{} videos x {} views ({} fusion): acc@1 {:.2}%, acc@5 {acc5}; per-class accuracy in {}",
            r.videos,
            r.views_per_video,
            r.ensemble,
            100.0 * r.acc1,
            out.display()
        );
        Ok(())
    }
}
