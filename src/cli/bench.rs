//! `tada bench data` and `tada bench model`: throughput of the input pipeline a config trains on
//! (named on the first line) and of a training step, each ending on a `… N clips/s …` line.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tada::bench::loader::loader_throughput;
use tada::config::recipes::{supervised_on_videos, CONTRASTIVE_GENERATOR, MOSI_GENERATOR};
use tada::config::schema::Dataset;
use tada::config::Config;
use tada::data::dataset::Split;
use tada::data::loader::Loader;
use tada::data::pipeline;
use tada::data::sources::mosi_images::{ImageOrigin, MosiImages};

use super::config_args::{self, ConfigArgs, AFTER_SET};
use super::flags::{batch_size, seconds};
use tada::tasks::mosi::clips_per_item;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Input rate of what the config trains: the supervised loader, MoSI over files or MoSI generation on one core (synthetic images), or for a contrastive config the source-clip loader plus the views cut on the CPU; the first line names the pipeline, the last reads `... N clips/s ...`.
    Data(BenchData),
    /// Training-step time (forward + backward + update) of the config's model; last line `... N clips/s ...`.
    Model(BenchModel),
}

#[derive(clap::Args)]
#[command(mut_args(config_args::help(
    "A training config; keys a MoSI config leaves out default to the reference's MoSI run recipe (a contrastive config is read as it is)",
    None,
)))]
pub struct BenchData {
    #[command(flatten)]
    config: ConfigArgs,
    /// Seconds to measure (over 0, at most 1e6).
    #[arg(long, default_value_t = 10.0, value_parser = seconds, display_order = AFTER_SET)]
    seconds: f64,
}

#[derive(clap::Args)]
pub struct BenchModel {
    #[command(flatten)]
    config: ConfigArgs,
    /// Batch size, 1 to 65536 (default TRAIN.BATCH_SIZE).
    #[arg(long, value_parser = batch_size, display_order = AFTER_SET)]
    batch: Option<i64>,
    /// Seconds to measure (over 0, at most 1e6).
    #[arg(long, default_value_t = 10.0, value_parser = seconds, display_order = AFTER_SET + 1)]
    seconds: f64,
}

impl Bench {
    pub fn run(self) -> Result<()> {
        match self {
            Bench::Data(b) => b.run(),
            Bench::Model(b) => b.run(),
        }
    }
}

impl BenchData {
    /// Measures what the training run of this config would read: the supervised loader, the
    /// contrastive source clips and views, MoSI over the files on disk, or (for synthetic images)
    /// MoSI generation alone.
    fn run(self) -> Result<()> {
        let cfg = self.config.load_bench_data()?.config;
        let budget = Duration::from_secs_f64(self.seconds);
        let mosi = cfg.pretrain.enable && cfg.pretrain.generator == MOSI_GENERATOR;
        if cfg.task_type == tada::config::schema::TaskType::Localization {
            localization_windows(&cfg, budget)
        } else if cfg.pretrain.enable && cfg.pretrain.generator == CONTRASTIVE_GENERATOR {
            contrastive_views(&cfg, budget)
        } else if supervised_on_videos(cfg.train.dataset, cfg.pretrain.enable) {
            video_loader(&cfg, budget)
        } else if mosi && !matches!(cfg.train.dataset, None | Some(Dataset::SyntheticImages)) {
            mosi_files(&cfg, budget)
        } else {
            mosi_generation(&cfg, budget)
        }
    }
}

/// The supervised training loader: clips as `tada finetune` reads them (EPIC-Kitchens'
/// segments included).
fn video_loader(cfg: &Config, budget: Duration) -> Result<()> {
    let source = pipeline::labelled_clips(cfg, Split::Train)?.into_source();
    let config = pipeline::loader_config(cfg, Split::Train, 0);
    let r = loader_throughput(&Loader::new(source, config), budget)?;
    // The training loader's batch (pipeline::loader_config).
    let batch = cfg.train.batch_size;
    println!(
        "supervised video loader, {} workers, batch {}, clip {:?}: {} clips in {:.2} s, {} skipped; decoding {:.0}% of worker time",
        r.workers,
        batch,
        r.clip_shape,
        r.clips,
        r.seconds,
        r.skipped,
        100.0 * r.decode_share()
    );
    // (3, T, S, S) clips: T frames delivered per clip.
    let frames = r.clip_shape.get(1).copied().unwrap_or(1) as f64;
    let k = cfg.data.clips_per_decode.max(1);
    println!(
        "{:.1} videos/s, {:.1} clips/s ({k} per decode, DATA.CLIPS_PER_DECODE), {:.1} clips/s per worker, {:.0} frames/s per worker",
        r.clips_per_second() / k as f64,
        r.clips_per_second(),
        r.clips_per_second_per_worker(),
        frames * r.clips_per_second_per_worker()
    );
    Ok(())
}

/// TASK_TYPE localization: the training windows (feature files read and resized, targets
/// built) through the training loader, as `tada finetune` reads them.
fn localization_windows(cfg: &Config, budget: Duration) -> Result<()> {
    use tada::localization::features::{FeatureSet, TalSplit};
    let set = FeatureSet::from_config(cfg, TalSplit::Train, true)?;
    let source = std::sync::Arc::new(tada::data::sources::tal_windows::TalWindows::new(set));
    let config = pipeline::loader_config(cfg, Split::Train, 0);
    let r = loader_throughput(&Loader::new(source, config), budget)?;
    println!(
        "localisation windows, {} workers, batch {}, window {:?}: {} windows in {:.2} s, {} skipped; reading files {:.0}% of worker time",
        r.workers,
        cfg.train.batch_size,
        r.clip_shape,
        r.clips,
        r.seconds,
        r.skipped,
        100.0 * r.decode_share()
    );
    println!(
        "{:.1} windows/s, {:.1} windows/s per worker",
        r.clips_per_second(),
        r.clips_per_second_per_worker()
    );
    Ok(())
}

/// The contrastive pipeline: the source clips `tada pretrain` reads, through the loader, and
/// their two views cut on the CPU.
fn contrastive_views(cfg: &Config, budget: Duration) -> Result<()> {
    let source = tada::runs::contrastive_source_clips(cfg)?;
    let r = tada::bench::contrastive::contrastive_views(cfg, source, budget)?;
    let l = &r.loader;
    println!(
        "contrastive views from {} source clips {:?} through the loader ({} workers, batch {}), two {:?} views each cut on the CPU: {} source clips, {} views in {:.2} s, {} skipped; decoding {:.0}% of worker time, cutting views {:.0}% of the time",
        cfg.train.dataset.map_or("synthetic_videos", |d| d.name()),
        l.clip_shape,
        l.workers,
        cfg.train.batch_size,
        r.view_shape,
        l.clips,
        2 * l.clips,
        l.seconds,
        l.skipped,
        100.0 * l.decode_share(),
        100.0 * r.cut_share()
    );
    // (3, T, S, S) views: T frames delivered per view.
    let frames = r.view_shape.get(1).copied().unwrap_or(1) as f64;
    let per_worker = r.clips_per_second() / l.workers.max(1) as f64;
    println!(
        "{:.1} source clips/s, {:.1} clips/s (views), {:.1} clips/s per worker, {:.0} frames/s per worker",
        l.clips_per_second(),
        r.clips_per_second(),
        per_worker,
        frames * per_worker
    );
    Ok(())
}

/// MoSI over the configured files through the training loader: what `tada pretrain` makes
/// per second, reading and decoding included.
fn mosi_files(cfg: &Config, budget: Duration) -> Result<()> {
    let Some(origin) = pipeline::mosi_files(cfg)? else {
        anyhow::bail!("TRAIN.DATASET names no dataset on disk: nothing to read");
    };
    let (count, what) = match &origin {
        ImageOrigin::Files(e) => (e.len(), "image files"),
        ImageOrigin::VideoFrames(e) => (e.len(), "videos (one frame each)"),
        ImageOrigin::Synthetic { count, .. } => (*count, "synthetic images"),
    };
    let generator =
        tada_augment::mosi::MosiGenerator::new(tada::tasks::mosi::generator_config(cfg)?)?;
    let source = MosiImages::new(origin, generator, Split::Train);
    let loader = Loader::new(
        Arc::new(source),
        pipeline::loader_config(cfg, Split::Train, 0),
    );
    let r = loader_throughput(&loader, budget)?;
    // Each sample is (K, 3, T, S, S): K pseudo-motion clips of one image.
    let per_image = r.clip_shape.first().copied().unwrap_or(1).max(1) as usize;
    let clips = r.clips * per_image;
    println!(
        "MoSI from {count} {what} under {}, through the loader ({} workers, batch {}), {:?} per clip: {} images, {} clips in {:.2} s, {} skipped; reading and decoding {:.0}% of worker time",
        cfg.data.data_root_dir,
        r.workers,
        cfg.train.batch_size,
        r.clip_shape.get(1..).unwrap_or_default(),
        r.clips,
        clips,
        r.seconds,
        r.skipped,
        100.0 * r.decode_share()
    );
    println!(
        "{:.2} images/s, {:.1} clips/s, {:.1} clips/s per worker",
        r.clips_per_second(),
        clips as f64 / r.seconds,
        clips as f64 / r.seconds / r.workers.max(1) as f64
    );
    Ok(())
}

/// MoSI generation alone, on one thread over synthetic images.
fn mosi_generation(cfg: &Config, budget: Duration) -> Result<()> {
    let r = tada::bench::data::mosi_generation(cfg, budget, 0)?;
    println!(
        "MoSI generation, 1 thread, 240x320 -> {:?} per clip: {} images, {} clips in {:.2} s",
        r.clip_shape, r.images, r.clips, r.seconds
    );
    println!(
        "{:.2} images/s, {:.1} clips/s per core",
        r.images_per_second(),
        r.clips_per_second()
    );
    Ok(())
}

impl BenchModel {
    fn run(self) -> Result<()> {
        let cfg = self.config.load()?.config;
        let clips = clips_per_item(&cfg)?;
        let batch = self.batch.unwrap_or(cfg.train.batch_size as i64);
        let budget = Duration::from_secs_f64(self.seconds);
        let r = tada::bench::model::step_time(&cfg, batch, clips, budget)?;
        println!(
            "training step on {:?}, input {:?}, {} threads: median {:.1} ms, mean {:.1} ms over {} steps",
            r.device, r.input_shape, tch::get_num_threads(), r.median * 1e3, r.mean * 1e3, r.steps
        );
        println!("{:.1} clips/s", r.clips_per_second());
        Ok(())
    }
}
