//! `tada data check` and the loader side of `tada bench data`: argument handling and printing
//! around the library calls.

use anyhow::Result;

/// The config of `tada bench data` when it names a video dataset for training (not MoSI):
/// then the loader is measured, else MoSI generation.
pub fn video_dataset_config(
    path: &std::path::Path,
    set: &[String],
) -> Result<Option<tada::config::Config>> {
    use tada::config::schema::Dataset;
    let Ok(loaded) = tada::config::load(path, set) else {
        return Ok(None);
    };
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
    Ok((video && !cfg.pretrain.enable).then_some(cfg))
}

pub fn bench_loader(cfg: &tada::config::Config, budget: std::time::Duration) -> Result<()> {
    use tada::bench::loader::loader_throughput;
    use tada::config::schema::Dataset;
    use tada::data::dataset::Split;
    use tada::data::pipeline;
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

pub fn data_check(cfg: &tada::config::Config, workers: Option<usize>) -> Result<()> {
    use tada::data::dataset::Split;
    let mut entries = Vec::new();
    // The test split only when TEST.DATASET names one (validation otherwise reuses TRAIN's).
    let splits = [Some(Split::Train), cfg.test.dataset.map(|_| Split::Test)];
    for split in splits.into_iter().flatten() {
        match tada::data::pipeline::entries(cfg, split) {
            Ok(list) => entries.extend(list.entries),
            Err(tada::data::pipeline::PipelineError::NoDataset { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if entries.is_empty() {
        anyhow::bail!("nothing to check: set TRAIN.DATASET or TEST.DATASET to a dataset on disk");
    }
    let workers = workers.unwrap_or(cfg.data_loader.num_workers).max(1);
    let progress = std::sync::Mutex::new(tada::train::progress::Progress::new(
        "checking",
        entries.len() as u64,
        (entries.len() as u64 / 20).max(1),
    ));
    let report = tada::data::check::check_entries(&entries, workers, &|_| {
        if let Ok(mut p) = progress.lock() {
            p.inc(1, String::new);
        }
    });
    if let Ok(mut p) = progress.lock() {
        p.finish();
    }
    for (_, e) in &report.bad {
        println!("{e}");
    }
    println!("checked {}, bad {}", report.checked, report.bad.len());
    let limit = cfg.data_loader.max_bad_fraction;
    if report.bad_fraction() > limit {
        anyhow::bail!(
            "{:.1}% of the files are bad, more than DATA_LOADER.MAX_BAD_FRACTION {:.1}%",
            100.0 * report.bad_fraction(),
            100.0 * limit
        );
    }
    Ok(())
}
