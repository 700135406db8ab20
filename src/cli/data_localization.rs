//! `tada data` for TASK_TYPE localization: `check` reads every window of the training and
//! validation splits (each feature clip file it overlaps, and the classifier results the test
//! reads); `tiny-tal` writes the embedded EPIC-format localisation set with a config for it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use tada::config::Config;
use tada::localization::features::{FeatureSet, TalSplit};

/// Reads every window of both splits on `workers` threads; one line per bad window, then
/// `checked N windows, bad M`. Fails when the bad share exceeds DATA_LOADER.MAX_BAD_FRACTION.
pub fn check(cfg: &Config, workers: usize) -> Result<()> {
    let mut bad: Vec<String> = Vec::new();
    let mut checked = 0usize;
    for (split, training) in [(TalSplit::Train, true), (TalSplit::Validation, false)] {
        let set = FeatureSet::from_config(cfg, split, training)?;
        let n = set.index.windows.len();
        let next = AtomicUsize::new(0);
        let progress = std::sync::Mutex::new(tada::train::progress::Progress::new(
            "checking",
            n as u64,
            (n as u64 / 20).max(1),
        ));
        let found: Vec<Vec<(usize, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers.clamp(1, n.max(1)))
                .map(|_| {
                    s.spawn(|| {
                        let mut errors = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= n {
                                return errors;
                            }
                            if let Err(e) = set.window(i) {
                                errors.push((i, e.to_string()));
                            }
                            if let Ok(mut p) = progress.lock() {
                                p.inc(1, String::new);
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        if let Ok(mut p) = progress.lock() {
            p.finish();
        }
        let mut errors: Vec<(usize, String)> = found.into_iter().flatten().collect();
        errors.sort();
        for (i, e) in errors {
            let w = &set.index.windows[i];
            let video = &set.index.videos[w.video].name;
            bad.push(format!(
                "{} window {video} {:.2}-{:.2} s: {e}",
                split.annotation_file(),
                w.start,
                w.end
            ));
        }
        checked += n;
    }
    for line in &bad {
        println!("{line}");
    }
    println!("checked {checked} windows, bad {}", bad.len());
    super::data::within_bad_limit(cfg, bad.len(), checked, "windows")
}

#[derive(clap::Args)]
pub struct TinyTalArgs {
    /// Folder to write (created; a tiny-tal already there is replaced): annotations/,
    /// features/, classifier/ and bmn_tiny_tal.yaml, a BMN config that trains on it.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    out: PathBuf,
    /// Seed of the generated features and segments.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Feature channels (DATA.NUM_INPUT_CHANNELS; bmn_epic reads 6912).
    #[arg(long, default_value_t = 16)]
    channels: usize,
    #[arg(long, default_value_t = 12)]
    train_videos: usize,
    #[arg(long, default_value_t = 4)]
    val_videos: usize,
}

impl TinyTalArgs {
    pub fn run(self) -> Result<()> {
        use tada::localization::tiny::{config_yaml, write, TinySpec};
        if self.channels == 0 || self.train_videos == 0 || self.val_videos == 0 {
            anyhow::bail!("--channels, --train-videos and --val-videos must be at least 1");
        }
        let spec = TinySpec {
            seed: self.seed,
            channels: self.channels,
            train_videos: self.train_videos,
            val_videos: self.val_videos,
            ..TinySpec::default()
        };
        for dir in ["annotations", "features", "classifier"] {
            let d = self.out.join(dir);
            if d.exists() {
                std::fs::remove_dir_all(&d)?;
            }
        }
        let data = write(&self.out, &spec)?;
        let cfg = self.out.join("bmn_tiny_tal.yaml");
        tada::atomic_write::write(&cfg, config_yaml(&data, &spec).as_bytes())?;
        println!(
            "tiny-tal ({} training and {} validation videos) in {}; train with `tada finetune --config {}`",
            spec.train_videos,
            spec.val_videos,
            self.out.display(),
            cfg.display()
        );
        Ok(())
    }
}
