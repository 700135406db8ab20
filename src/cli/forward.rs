//! `tada forward`: one forward pass of a configured model on a tensor from a file.

use std::path::PathBuf;

use anyhow::Result;
use tada::output_path::check_output_file;

use super::config_args::ConfigArgs;

#[derive(clap::Args)]
pub struct Forward {
    #[command(flatten)]
    config: ConfigArgs,
    /// Weights: a safetensors file (tada's, or one written by `tada import`).
    #[arg(long)]
    weights: PathBuf,
    /// A safetensors file holding `__input__`.
    #[arg(long)]
    input: PathBuf,
    /// Where to write `__output__` and `__out_logits__`.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

impl Forward {
    pub fn run(self) -> Result<()> {
        let (weights, output) = (&self.weights, &self.output);
        check_output_file(output, &[&self.config.config, weights, &self.input])?;
        let cfg = self.config.load()?.config;
        let report = tada::models::inference::forward_file(&cfg, weights, &self.input, output)?;
        if !report.unexpected.is_empty() {
            tracing::warn!(
                "{} tensor(s) in {} are not in the model: {}",
                report.unexpected.len(),
                weights.display(),
                report.unexpected.join(", ")
            );
        }
        println!(
            "loaded {} tensors; wrote {}",
            report.loaded,
            output.display()
        );
        Ok(())
    }
}
