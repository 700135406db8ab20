//! `tada data check`: every file the config's datasets list, opened in parallel (a
//! localisation config's windows: [`super::data_localization`]); `tada data tiny-epic`: the
//! embedded tiny EPIC-Kitchens-100 written to a folder (docs/epic.md).

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
    /// Write a tiny EPIC-Kitchens-100 in the published format (csv lists + JPEG frame folders;
    /// verb = a motion, noun = an object's look) into OUT, for DATA.DATA_ROOT_DIR and
    /// DATA.ANNO_DIR of an `epickitchen100` config.
    TinyEpic(TinyEpicArgs),
    /// Write tiny-tal, an EPIC-Kitchens-100 localisation feature set in the reference's layout
    /// (lists, lengths, 5-second clip features, classifier results, ground-truth JSON), and a
    /// BMN config that trains on it, into DIR (docs/localization.md#tiny-tal).
    TinyTal(super::data_localization::TinyTalArgs),
}

#[derive(clap::Args)]
pub struct TinyEpicArgs {
    /// Folder to write (created; files of an earlier run are overwritten).
    #[arg(long)]
    out: std::path::PathBuf,
    /// Frame side in pixels.
    #[arg(long, default_value_t = 32)]
    size: u32,
    /// Videos of the train list (validation gets half, the test timestamps a quarter, at least 1).
    #[arg(long, default_value_t = 4)]
    videos: usize,
    /// Frames per segment.
    #[arg(long, default_value_t = 8)]
    frames: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl TinyEpicArgs {
    fn run(self) -> Result<()> {
        use tada::data::sources::epic_synthetic::{write_tiny_epic, TinyEpic};
        let t = TinyEpic {
            videos: [
                self.videos,
                (self.videos / 2).max(1),
                (self.videos / 4).max(1),
            ],
            frames_per_segment: self.frames,
            size: self.size,
            seed: self.seed,
            ..TinyEpic::default()
        };
        write_tiny_epic(&self.out, &t)?;
        println!(
            "tiny EPIC-Kitchens-100 ({} verbs, {} nouns; {:?} videos of {} segments) in {}",
            t.verbs,
            t.nouns,
            t.videos,
            t.segments_per_video,
            self.out.display()
        );
        Ok(())
    }
}

#[derive(clap::Args)]
pub struct Check {
    #[command(flatten)]
    config: ConfigArgs,
    /// Threads (default: DATA_LOADER.NUM_WORKERS), 1 to 256.
    #[arg(long, value_parser = workers, display_order = AFTER_SET)]
    workers: Option<usize>,
    /// Also build the key-frame index of every good video file now (kept in the cache folder,
    /// $TADA_INDEX_DIR or $XDG_CACHE_HOME/tada/index; otherwise built on first read).
    #[arg(long, display_order = AFTER_SET)]
    index: bool,
}

impl Data {
    pub fn run(self) -> Result<()> {
        match self {
            Data::Check(check) => check.run(),
            Data::TinyEpic(args) => args.run(),
            Data::TinyTal(args) => args.run(),
        }
    }
}

impl Check {
    fn run(self) -> Result<()> {
        let cfg = self.config.load()?.config;
        if cfg.task_type == tada::config::schema::TaskType::Localization {
            let workers = self.workers.unwrap_or(cfg.data_loader.num_workers).max(1);
            return super::data_localization::check(&cfg, workers);
        }
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
        if self.index {
            let bad: std::collections::HashSet<&std::path::Path> =
                video_report.bad.iter().map(|(p, _)| p.as_path()).collect();
            let good: Vec<&Entry> = videos
                .iter()
                .filter(|e| !bad.contains(e.path.as_path()))
                .collect();
            index_videos(&good, workers);
        }
        let checked = video_report.checked + image_report.checked;
        let bad = video_report.bad.len() + image_report.bad.len();
        println!("checked {checked}, bad {bad}");
        within_bad_limit(&cfg, bad, checked, "files")
    }
}

/// Fails when `bad` of `checked` things exceed DATA_LOADER.MAX_BAD_FRACTION, the share a
/// training run would tolerate.
pub(super) fn within_bad_limit(cfg: &Config, bad: usize, checked: usize, what: &str) -> Result<()> {
    let fraction = bad as f64 / checked.max(1) as f64;
    let limit = cfg.data_loader.max_bad_fraction;
    if fraction > limit {
        anyhow::bail!(
            "{:.1}% of the {what} are bad, more than DATA_LOADER.MAX_BAD_FRACTION {:.1}%",
            100.0 * fraction,
            100.0 * limit
        );
    }
    Ok(())
}

/// The entries of the datasets to check: videos, and images (of an image dataset).
fn files(cfg: &Config) -> Result<(Vec<Entry>, Vec<Entry>)> {
    let (mut videos, mut images) = (Vec::new(), Vec::new());
    // The test split only when TEST.DATASET names one (validation otherwise reuses TRAIN's).
    let splits = [Some(Split::Train), cfg.test.dataset.map(|_| Split::Test)];
    for split in splits.into_iter().flatten() {
        if dataset_for(cfg, split).ok() == Some(Dataset::Epickitchen100) {
            epic_files(cfg, split, &mut videos, &mut images)?;
            continue;
        }
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

/// EPIC-Kitchens segments as training reads them: a pre-cut clip is a video to check, a
/// frame-folder segment its first and last frame files (the ends a clip reaches), images.
fn epic_files(
    cfg: &Config,
    split: Split,
    videos: &mut Vec<Entry>,
    images: &mut Vec<Entry>,
) -> Result<()> {
    use tada::data::dataset::annotations::epic::{frame_file, read_list, EpicList, Media};
    let n = read_list(
        std::path::Path::new(&cfg.data.anno_dir),
        std::path::Path::new(cfg.data.data_root_dir.first()),
        EpicList::of(split),
    )?;
    for x in n.narrations {
        match &x.media {
            Media::Clip(p) => videos.push(Entry {
                path: p.clone(),
                label: x.verb,
                id: x.id,
            }),
            Media::Frames(dir) => {
                for f in [x.start_frame, x.stop_frame] {
                    images.push(Entry {
                        path: frame_file(dir, f),
                        label: x.verb,
                        id: x.id.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Builds (or finds) the key-frame index of every video file, on `workers` threads, and says
/// how many were built, how many were cached already and where they are kept.
#[cfg(feature = "video")]
fn index_videos(videos: &[&Entry], workers: usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tada::data::video::index::{cache_dir, Found};
    let (built, kept, unsaved, failed) = Default::default();
    let counts: [&AtomicUsize; 4] = [&built, &kept, &unsaved, &failed];
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers.min(videos.len()).max(1) {
            s.spawn(|| {
                while let Some(e) = videos.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let slot = match tada::data::video::index_keyframes(&e.path) {
                        Ok(None) => continue,
                        Ok(Some(Found::Built { saved: true })) => 0,
                        Ok(Some(Found::Memory | Found::Disk)) => 1,
                        Ok(Some(Found::Built { saved: false })) => 2,
                        Err(_) => 3,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let n = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    println!(
        "key-frame index: {} built, {} already cached, {} not saved (folder not writable), {} unreadable; in {}",
        n(&built),
        n(&kept),
        n(&unsaved),
        n(&failed),
        cache_dir().display()
    );
}

#[cfg(not(feature = "video"))]
fn index_videos(_: &[&Entry], _: usize) {
    println!("key-frame index: none built (tada was built without the `video` feature)");
}
