//! `tada export`: the model weights of a training checkpoint, alone, under the reference's
//! state_dict names.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tada::checkpoint::latest_checkpoint;
use tada::output_path::check_output_file;

#[derive(clap::Args)]
pub struct Export {
    /// A checkpoint of `tada pretrain` / `tada finetune`, or a run folder (its newest
    /// checkpoint).
    checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(short, long, value_name = "OUT.safetensors")]
    output: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
}

/// The checkpoint a path names: the file itself, or the newest in a run folder's
/// `checkpoints/` (or in the folder itself).
fn checkpoint_of(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    latest_checkpoint(&path.join(tada::train::run_dir::CHECKPOINTS_DIR))
        .or_else(|| latest_checkpoint(path))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no checkpoint_epoch_*.safetensors in it or in its checkpoints/",
                path.display()
            )
        })
}

impl Export {
    pub fn run(self) -> Result<()> {
        let checkpoint = checkpoint_of(&self.checkpoint)?;
        let out = &self.output;
        if !self.force && std::fs::symlink_metadata(out).is_ok() {
            bail!(
                "refusing to overwrite {}: it exists (--force replaces it)",
                out.display()
            );
        }
        check_output_file(out, &[&checkpoint])?;
        let s = tada::checkpoint::export_weights(&checkpoint, out)?;
        let left_out: Vec<String> = s
            .left_out
            .iter()
            .map(|(group, n)| format!("{group} ({n})"))
            .collect();
        println!(
            "{}: {} tensors ({} parameters, {} BatchNorm num_batches_tracked added) from {}; left out: {}",
            out.display(),
            s.tensors,
            s.parameters,
            s.counters,
            checkpoint.display(),
            if left_out.is_empty() {
                "nothing".to_string()
            } else {
                left_out.join(", ")
            }
        );
        Ok(())
    }
}
