//! `tada data check`: every file the config's datasets list, opened in parallel.

use anyhow::Result;
use tada::config::schema::Dataset;
use tada::config::Config;
use tada::data::check::{check_entries, check_images};
use tada::data::dataset::{Entry, Split};
use tada::data::pipeline::{dataset_for, entries, PipelineError};

use super::config_args::{ConfigArgs, AFTER_SET};
use super::flags::workers;

#[derive(clap::Subcommand)]
pub enum Data {
    /// Open every file the config's datasets list, in parallel; one line per bad file, then
    /// `checked N, bad M`. Fails when the bad share exceeds DATA_LOADER.MAX_BAD_FRACTION.
    Check(Check),
}

#[derive(clap::Args)]
pub struct Check {
    #[command(flatten)]
    config: ConfigArgs,
    /// Threads (default: DATA_LOADER.NUM_WORKERS), 1 to 256.
    #[arg(long, value_parser = workers, display_order = AFTER_SET)]
    workers: Option<usize>,
}

impl Data {
    pub fn run(self) -> Result<()> {
        match self {
            Data::Check(check) => check.run(),
        }
    }
}

impl Check {
    fn run(self) -> Result<()> {
        let cfg = self.config.load()?.config;
        let (videos, images) = files(&cfg)?;
        let total = videos.len() + images.len();
        if total == 0 {
            anyhow::bail!(
                "nothing to check: set TRAIN.DATASET or TEST.DATASET to a dataset on disk"
            );
        }
        let workers = self.workers.unwrap_or(cfg.data_loader.num_workers).max(1);
        let progress = std::sync::Mutex::new(tada::train::progress::Progress::new(
            "checking",
            total as u64,
            (total as u64 / 20).max(1),
        ));
        let tick = |_| {
            if let Ok(mut p) = progress.lock() {
                p.inc(1, String::new);
            }
        };
        let video_report = check_entries(&videos, workers, &tick);
        let image_report = check_images(&images, workers, &tick);
        if let Ok(mut p) = progress.lock() {
            p.finish();
        }
        for (_, e) in &video_report.bad {
            println!("{e}");
        }
        for (_, e) in &image_report.bad {
            println!("{e}");
        }
        let checked = video_report.checked + image_report.checked;
        let bad = video_report.bad.len() + image_report.bad.len();
        println!("checked {checked}, bad {bad}");
        let fraction = bad as f64 / checked.max(1) as f64;
        let limit = cfg.data_loader.max_bad_fraction;
        if fraction > limit {
            anyhow::bail!(
                "{:.1}% of the files are bad, more than DATA_LOADER.MAX_BAD_FRACTION {:.1}%",
                100.0 * fraction,
                100.0 * limit
            );
        }
        Ok(())
    }
}

/// The entries of the datasets to check: videos, and images (of an image dataset).
fn files(cfg: &Config) -> Result<(Vec<Entry>, Vec<Entry>)> {
    let (mut videos, mut images) = (Vec::new(), Vec::new());
    // The test split only when TEST.DATASET names one (validation otherwise reuses TRAIN's).
    let splits = [Some(Split::Train), cfg.test.dataset.map(|_| Split::Test)];
    for split in splits.into_iter().flatten() {
        match entries(cfg, split) {
            // An image dataset's files are images, not one-frame videos.
            Ok(list) if dataset_for(cfg, split)? == Dataset::Imagenet => {
                images.extend(list.entries)
            }
            Ok(list) => videos.extend(list.entries),
            Err(PipelineError::NoDataset { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((videos, images))
}
