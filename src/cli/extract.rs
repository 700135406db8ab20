//! `tada extract-features`: a model's features of a list of videos, written as BMN's
//! pre-extracted 5-second clip files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tada::runs::extract::{self, ExtractOptions};

use super::config_args::{ConfigArgs, AFTER_SET};

#[derive(clap::Args)]
pub struct ExtractFeatures {
    #[command(flatten)]
    config: ConfigArgs,
    /// The model's weights: a tada checkpoint or safetensors file, or the reference's
    /// .pyth/.pth (read without Python), holding every weight of the configured model.
    #[arg(long)]
    weights: PathBuf,
    /// The videos: a text file with one path a line (relative to the file's folder), or a
    /// folder whose video files are taken in name order. A video's name is its file stem.
    #[arg(long, value_name = "FILE|DIR")]
    videos: PathBuf,
    /// The output folder: <video>_<start_ms>_<end_ms>.npy per 5-second clip, 5s_clips.txt,
    /// epic_videos_len.txt and features.json.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    /// Rows (clips of the model's input) per forward pass; fewer use less memory.
    #[arg(long, default_value_t = 16, value_parser = super::flags::batch_size, display_order = AFTER_SET)]
    batch: i64,
    /// Frames at DATA.TARGET_FPS between two feature rows: the BMN config's
    /// DATA.CLIP_INTERVAL (default: this config's DATA.CLIP_INTERVAL, 8 unless it sets one).
    #[arg(long, display_order = AFTER_SET)]
    clip_interval: Option<usize>,
    /// Also write the classifier's raw logits per clip to cls/<clip>.npz (arrays verb_class
    /// and noun_class of a two-head model, class of a one-head model; views side by side).
    #[arg(long, display_order = AFTER_SET)]
    classifier: bool,
    /// Redo the videos the folder already lists as finished (by default they are skipped).
    #[arg(long, display_order = AFTER_SET)]
    overwrite: bool,
    /// Use the file's EMA weights (MODEL.EMA).
    #[arg(long, display_order = AFTER_SET)]
    ema: bool,
}

impl ExtractFeatures {
    pub fn run(self) -> Result<()> {
        let loaded = self.config.load()?;
        let videos = extract::video_list(&self.videos)?;
        if videos.is_empty() {
            anyhow::bail!("{} names no video", self.videos.display());
        }
        let opts = ExtractOptions {
            videos,
            config: self.config.config.clone(),
            weights: self.weights.clone(),
            ema: self.ema,
            output: self.output.clone(),
            batch: self.batch as usize,
            clip_interval: self
                .clip_interval
                .unwrap_or(loaded.config.data.clip_interval),
            classifier: self.classifier,
            overwrite: self.overwrite,
        };
        let s = extract::extract(&loaded, &opts)
            .with_context(|| format!("cannot extract features into {}", self.output.display()))?;
        println!(
            "{} videos: {} extracted ({} clips, {} rows of {} channels), {} already done, {} \
             unreadable; {:.1} s (decoding {:.1} s, cropping {:.1} s, model {:.1} s); features in {}",
            s.videos,
            s.extracted,
            s.clips,
            s.rows,
            s.channels,
            s.already_done,
            s.failed.len(),
            s.seconds,
            s.timing.decode,
            s.timing.crop,
            s.timing.model,
            self.output.display()
        );
        if !s.failed.is_empty() {
            anyhow::bail!(
                "{} of {} videos could not be read (named above): they have no features",
                s.failed.len(),
                s.videos
            );
        }
        Ok(())
    }
}
