//! `tada bench data` for a dataset on disk: the configured training pipeline through the
//! parallel loader (video clips: decode, sample, crop, jitter, normalise, collate; MoSI: read
//! and decode the image or frame, generate the pseudo-motion clips, collate; contrastive: the
//! source clips, then the views cut on the CPU, see [`super::contrastive`]), with the share of
//! worker time spent reading and decoding.

use std::time::{Duration, Instant};

use crate::data::loader::{Batch, Loader, LoaderError};

/// Result of a loader benchmark.
#[derive(Debug, Clone)]
pub struct LoaderRate {
    pub workers: usize,
    pub clips: usize,
    pub batches: usize,
    pub seconds: f64,
    /// Worker seconds spent decoding / making batches (decode + augment + collate).
    pub decode_seconds: f64,
    pub make_seconds: f64,
    pub clip_shape: Vec<i64>,
    pub skipped: usize,
}

impl LoaderRate {
    pub fn clips_per_second(&self) -> f64 {
        self.clips as f64 / self.seconds
    }

    /// Per worker thread (the figure to compare with one DataLoader worker).
    pub fn clips_per_second_per_worker(&self) -> f64 {
        self.clips_per_second() / self.workers.max(1) as f64
    }

    pub fn decode_share(&self) -> f64 {
        if self.make_seconds > 0.0 {
            self.decode_seconds / self.make_seconds
        } else {
            0.0
        }
    }
}

/// Pulls batches for about `budget` (after one warm-up batch), epoch after epoch. Each epoch is
/// a fresh pass: its bad samples are counted against DATA_LOADER.MAX_BAD_FRACTION on their own.
pub fn loader_throughput(loader: &Loader, budget: Duration) -> Result<LoaderRate, LoaderError> {
    loader_throughput_with(loader, budget, |_, _| Ok(()))
}

/// [`loader_throughput`] with `consume(batch, timed)` run on every batch in the calling thread
/// (the warm-up batch too, with `timed` false), its time counted in the rate: what a training
/// step does to the batch on the CPU before the model sees it.
pub fn loader_throughput_with<E: From<LoaderError>>(
    loader: &Loader,
    budget: Duration,
    mut consume: impl FnMut(&Batch, bool) -> Result<(), E>,
) -> Result<LoaderRate, E> {
    let mut r = LoaderRate {
        workers: loader.config().num_workers.max(1),
        clips: 0,
        batches: 0,
        seconds: 0.0,
        decode_seconds: 0.0,
        make_seconds: 0.0,
        clip_shape: Vec::new(),
        skipped: 0,
    };
    loader.check_batches()?;
    let mut start: Option<Instant> = None;
    let mut epoch = 0;
    'outer: loop {
        let mut any = false;
        for batch in loader.epoch(epoch) {
            let b = batch?;
            any = true;
            r.skipped += b.skipped.len();
            consume(&b, start.is_some())?;
            let Some(t0) = start else {
                // The first batch pays for thread start-up and first-use costs.
                r.clip_shape = b.inputs.size()[1..].to_vec();
                start = Some(Instant::now());
                continue;
            };
            r.clips += b.indices.len();
            r.batches += 1;
            r.decode_seconds += b.decode_seconds;
            r.make_seconds += b.make_seconds;
            if t0.elapsed() >= budget {
                break 'outer;
            }
        }
        if !any {
            return Err(LoaderError::NothingReadable {
                first: loader.bad_samples().first().unwrap_or_default(),
            }
            .into());
        }
        epoch += 1;
    }
    r.seconds = start.map_or(0.0, |t| t.elapsed().as_secs_f64());
    Ok(r)
}
