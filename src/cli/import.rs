//! `tada import`: a PyTorch checkpoint converted to safetensors.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Import {
    /// The torch.save file.
    checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(short, long, value_name = "OUT.safetensors")]
    output: PathBuf,
    /// Import the EMA weights (model_ema_state) instead of model_state.
    #[arg(long)]
    ema: bool,
}

impl Import {
    pub fn run(self) -> Result<()> {
        let options = tada::checkpoint::ImportOptions { ema: self.ema };
        let summary =
            tada::checkpoint::import_to_safetensors(&self.checkpoint, &self.output, options)?;
        println!("{summary}");
        Ok(())
    }
}
