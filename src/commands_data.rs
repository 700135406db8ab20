//! `tada data check` and the loader side of `tada bench data`: argument handling and printing
//! around the library calls.

use anyhow::Result;

/// The config of `tada bench data` when its data is measured through the loader: a video
/// dataset (or synthetic_videos) for supervised training, or a MoSI config whose TRAIN.DATASET
/// is on disk (image files, or frames of a video dataset). `None` leaves the generation
/// benchmark on synthetic images, for MoSI configs that ask for synthetic images.
pub fn video_dataset_config(
    path: &std::path::Path,
    set: &[String],
) -> Result<Option<tada::config::Config>> {
    use tada::config::schema::Dataset;
    if let Ok(loaded) = tada::config::load(path, set) {
        let cfg = loaded.config;
        let video = matches!(
            cfg.train.dataset,
            Some(
                Dataset::Ucf101
                    | Dataset::Hmdb51
                    | Dataset::Kinetics400
                    | Dataset::Ssv2
                    | Dataset::SyntheticVideos
            )
        );
        if video && !cfg.pretrain.enable {
            return Ok(Some(cfg));
        }
    }
    // A MoSI config, completed by the run recipe as `tada pretrain` completes it.
    let Ok(loaded) = tada::config::recipes::MOSI.load(path, set) else {
        return Ok(None);
    };
    let cfg = loaded.config;
    let on_disk =
        is_mosi(&cfg) && !matches!(cfg.train.dataset, None | Some(Dataset::SyntheticImages));
    Ok(on_disk.then_some(cfg))
}

fn is_mosi(cfg: &tada::config::Config) -> bool {
    cfg.pretrain.enable && cfg.pretrain.generator == tada::config::recipes::MOSI_GENERATOR
}

pub fn bench_loader(cfg: &tada::config::Config, budget: std::time::Duration) -> Result<()> {
    use tada::bench::loader::loader_throughput;
    use tada::config::schema::Dataset;
    use tada::data::dataset::Split;
    use tada::data::pipeline;
    if is_mosi(cfg) {
        return bench_mosi_files(cfg, budget);
    }
    let r = if cfg.train.dataset == Some(Dataset::SyntheticVideos) {
        let source = std::sync::Arc::new(pipeline::synthetic_videos(cfg, Split::Train)?);
        let config = pipeline::loader_config(cfg, Split::Train, 0);
        loader_throughput(&tada::data::loader::Loader::new(source, config), budget)?
    } else {
        loader_throughput(&pipeline::video_loader(cfg, Split::Train, 0)?, budget)?
    };
    // The training loader's batch (pipeline::loader_config).
    let batch = cfg.train.batch_size;
    println!(
        "loader, {} workers, batch {}, clip {:?}: {} clips in {:.2} s, {} skipped; decoding {:.0}% of worker time",
        r.workers,
        batch,
        r.clip_shape,
        r.clips,
        r.seconds,
        r.skipped,
        100.0 * r.decode_share()
    );
    println!(
        "{:.1} samples/s, {:.1} clips/s, {:.1} clips/s per worker",
        r.clips_per_second(),
        r.clips_per_second(),
        r.clips_per_second_per_worker()
    );
    Ok(())
}

/// MoSI over the configured files through the training loader: what `tada pretrain` makes
/// per second, reading and decoding included.
fn bench_mosi_files(cfg: &tada::config::Config, budget: std::time::Duration) -> Result<()> {
    use tada::bench::loader::loader_throughput;
    use tada::data::dataset::Split;
    use tada::data::loader::Loader;
    use tada::data::mosi_images::{ImageOrigin, MosiImages};
    use tada::data::pipeline;
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
        std::sync::Arc::new(source),
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

pub fn data_check(cfg: &tada::config::Config, workers: Option<usize>) -> Result<()> {
    use tada::config::schema::Dataset;
    use tada::data::check::{check_entries, check_images};
    use tada::data::dataset::Split;
    use tada::data::pipeline::{dataset_for, entries, PipelineError};
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
    let total = videos.len() + images.len();
    if total == 0 {
        anyhow::bail!("nothing to check: set TRAIN.DATASET or TEST.DATASET to a dataset on disk");
    }
    let workers = workers.unwrap_or(cfg.data_loader.num_workers).max(1);
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
