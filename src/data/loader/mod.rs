//! The parallel loader: worker threads make and collate batches while the model trains, through
//! a bounded queue, and hand them out in a fixed order.
//!
//! Results do not depend on the number of workers: the epoch's order comes from (seed, epoch),
//! every sample from (seed, epoch, index) ([`seed::sample_rng`]), and batches are re-ordered
//! before they leave. A sample that cannot be made (missing, truncated, undecodable file) is
//! skipped and logged once per run; an epoch fails as soon as more than `max_bad_fraction` of
//! the dataset's samples have been bad in that epoch (distinct samples, counted afresh in every
//! pass, so a file that stays bad does not add up over epochs).

mod bad;
pub mod seed;
mod shard;
mod source;
mod workers;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rand::seq::SliceRandom;
use tch::Tensor;

pub use bad::BadSamples;
use bad::{brief_list, EpochBad};
pub use shard::Strided;
pub use source::{Sample, SampleError, SampleSource};

/// How batches are made.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Worker threads; 0 makes batches on the calling thread.
    pub num_workers: usize,
    /// Finished batches that may wait in the queue (the prefetch depth).
    pub prefetch: usize,
    pub shuffle: bool,
    /// Drop a last batch smaller than `batch_size`.
    pub drop_last: bool,
    pub seed: u64,
    /// Largest share of the dataset's samples that may be bad in one epoch before it fails.
    pub max_bad_fraction: f64,
    /// Page-lock batches for faster host-to-GPU copies (only when CUDA is available).
    pub pin_memory: bool,
    /// The setting `batch_size` came from, for messages (`TRAIN.BATCH_SIZE`, …).
    pub batch_size_key: &'static str,
    /// `(rank, world size)` of a distributed run: this rank reads its shard of every epoch's
    /// order ([`Loader::plan`]) in batches of `batch_size` (its share of the global batch).
    pub shard: Option<(usize, usize)>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 8,
            num_workers: 4,
            prefetch: 4,
            shuffle: true,
            drop_last: false,
            seed: 0,
            max_bad_fraction: 0.01,
            pin_memory: false,
            batch_size_key: "batch_size",
            shard: None,
        }
    }
}

/// A collated batch.
#[derive(Debug)]
pub struct Batch {
    /// The samples' inputs stacked on a new leading dimension: `(B, ...)`.
    pub inputs: Tensor,
    /// The samples' labels stacked: `(B)` or `(B, K)`.
    pub labels: Tensor,
    /// Dataset indices of the samples in the batch.
    pub indices: Vec<usize>,
    pub sources: Vec<usize>,
    pub views: Vec<usize>,
    /// Samples of this batch that were skipped.
    pub skipped: Vec<SampleError>,
    /// Seconds the workers spent making this batch (all samples and the collation).
    pub make_seconds: f64,
    /// The part of `make_seconds` spent reading and decoding media.
    pub decode_seconds: f64,
}

impl Batch {
    /// The batch cut into consecutive chunks of at most `size` samples (the whole batch when
    /// `size` is 0 or not smaller than it), for gradient accumulation. Each chunk keeps its
    /// samples' bookkeeping; skipped-sample records and timings stay with the first chunk.
    ///
    /// # Shapes
    /// inputs (B, ...) -> (b_i, ...), labels (B) or (B, K) -> (b_i) or (b_i, K), Σ b_i = B.
    pub fn chunks(&self, size: usize) -> Vec<Batch> {
        let b = self.indices.len();
        if size == 0 || size >= b {
            return vec![self.shallow_clone()];
        }
        (0..b)
            .step_by(size)
            .enumerate()
            .map(|(k, start)| {
                let len = size.min(b - start);
                let (s, l) = (start as i64, len as i64);
                Batch {
                    inputs: self.inputs.narrow(0, s, l),
                    labels: self.labels.narrow(0, s, l),
                    indices: self.indices[start..start + len].to_vec(),
                    sources: self.sources[start..start + len].to_vec(),
                    views: self.views[start..start + len].to_vec(),
                    skipped: if k == 0 {
                        self.skipped.clone()
                    } else {
                        Vec::new()
                    },
                    make_seconds: if k == 0 { self.make_seconds } else { 0.0 },
                    decode_seconds: if k == 0 { self.decode_seconds } else { 0.0 },
                }
            })
            .collect()
    }

    /// The same batch sharing its tensors' storage.
    pub fn shallow_clone(&self) -> Batch {
        Batch {
            inputs: self.inputs.shallow_clone(),
            labels: self.labels.shallow_clone(),
            indices: self.indices.clone(),
            sources: self.sources.clone(),
            views: self.views.clone(),
            skipped: self.skipped.clone(),
            make_seconds: self.make_seconds,
            decode_seconds: self.decode_seconds,
        }
    }
}

/// Bad files named in one error line; the rest are counted.
const NAMED_IN_ERRORS: usize = 5;

/// Why an epoch stopped early, or gives no batch.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error(
        "{bad} of {total} samples could not be read in this epoch ({:.1}% > DATA_LOADER.MAX_BAD_FRACTION {:.1}%): {}",
        100.0 * *bad as f64 / *total as f64,
        100.0 * limit,
        brief_list(files, NAMED_IN_ERRORS)
    )]
    TooManyBad {
        /// Distinct bad samples of the epoch so far.
        bad: usize,
        total: usize,
        limit: f64,
        /// The failures (file and reason), in the order met.
        files: Vec<String>,
    },
    #[error("a loader worker stopped unexpectedly: {0}")]
    Worker(String),
    #[error("the dataset is empty")]
    Empty,
    #[error("{samples} samples, fewer than one batch of {batch} ({key}) with drop_last")]
    SmallerThanBatch {
        samples: usize,
        batch: usize,
        key: &'static str,
    },
    #[error("no batch could be made: every sample of the epoch failed (first: {first})")]
    NothingReadable { first: String },
}

/// A dataset with its batching settings; [`Loader::epoch`] starts one pass.
pub struct Loader {
    source: Arc<dyn SampleSource>,
    cfg: LoaderConfig,
    bad: Arc<BadSamples>,
    stop: Arc<AtomicBool>,
}

impl Loader {
    pub fn new(source: Arc<dyn SampleSource>, cfg: LoaderConfig) -> Self {
        Self {
            source,
            cfg,
            bad: Arc::new(BadSamples::default()),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops every epoch of this loader when `flag` becomes true (e.g. set by a SIGINT handler):
    /// the iterator ends and the workers exit after their current sample.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    pub fn source(&self) -> &Arc<dyn SampleSource> {
        &self.source
    }

    /// Bad samples seen so far (all epochs).
    pub fn bad_samples(&self) -> &BadSamples {
        &self.bad
    }

    /// Why an epoch has no batch at all ([`Self::batches_per_epoch`] is 0): an empty dataset,
    /// or one smaller than a batch when the last partial batch is dropped.
    pub fn check_batches(&self) -> Result<(), LoaderError> {
        if self.batches_per_epoch() > 0 {
            return Ok(());
        }
        match self.source.len() {
            0 => Err(LoaderError::Empty),
            samples => Err(LoaderError::SmallerThanBatch {
                samples,
                batch: self.cfg.batch_size,
                key: self.cfg.batch_size_key,
            }),
        }
    }

    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.shard_len(), self.cfg.batch_size.max(1));
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Samples this process reads per epoch: the whole dataset, or a rank's shard (every shard
    /// equally long, see [`Self::plan`]).
    fn shard_len(&self) -> usize {
        let n = self.source.len();
        match self.cfg.shard {
            Some((_, world)) if world > 1 && n > 0 => n.div_ceil(world),
            _ => n,
        }
    }

    /// The dataset indices of each batch of `epoch`.
    ///
    /// A rank of a distributed run takes every world-th sample of the epoch's order from its
    /// rank on, the order first padded with its own head to a multiple of the world size, as
    /// PyTorch's DistributedSampler: every rank gets as many samples (so as many steps), and
    /// step k's batches of all ranks together hold the samples of the one-process run's step
    /// k when the global batch divides the dataset.
    pub fn plan(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.source.len()).collect();
        if self.cfg.shuffle {
            order.shuffle(&mut seed::shuffle_rng(self.cfg.seed, epoch));
        }
        if let Some((rank, world)) = self.cfg.shard.filter(|&(_, w)| w > 1) {
            let padded = self.shard_len() * world;
            let head: Vec<usize> = order
                .iter()
                .cycle()
                .take(padded - order.len())
                .copied()
                .collect();
            order.extend(head);
            order = order.into_iter().skip(rank).step_by(world).collect();
        }
        let b = self.cfg.batch_size.max(1);
        let mut plan: Vec<Vec<usize>> = order.chunks(b).map(<[usize]>::to_vec).collect();
        if self.cfg.drop_last && plan.last().is_some_and(|c| c.len() < b) {
            plan.pop();
        }
        plan
    }

    /// Starts the workers for one pass over the data.
    pub fn epoch(&self, epoch: u64) -> Epoch {
        self.epoch_from(epoch, 0)
    }

    /// Starts the workers for the batches of `epoch` from batch `start` on: what a resumed run
    /// needs. Batches are the same as [`Self::epoch`]'s (the plan and every sample's randomness
    /// depend on (seed, epoch, index) only); the first `start` are never made.
    pub fn epoch_from(&self, epoch: u64, start: usize) -> Epoch {
        let plan = Arc::new(self.plan(epoch));
        let ctx = workers::Context {
            source: self.source.clone(),
            plan: plan.clone(),
            seed: self.cfg.seed,
            epoch,
            stop: self.stop.clone(),
            cancel: Arc::new(AtomicBool::new(false)),
            pin_memory: self.cfg.pin_memory && tch::Cuda::is_available(),
        };
        let cancel = ctx.cancel.clone();
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<usize>();
        let (res_tx, res_rx) = crossbeam_channel::unbounded();
        let handles = (0..self.cfg.num_workers)
            .map(|w| workers::spawn(w, ctx.clone(), job_rx.clone(), res_tx.clone()))
            .collect();
        let mut e = Epoch {
            plan_len: plan.len(),
            inline: (self.cfg.num_workers == 0).then(|| Box::new(ctx) as Box<dyn workers::Make>),
            jobs: Some(job_tx),
            results: res_rx,
            workers: handles,
            next: start.min(plan.len()),
            fed: start.min(plan.len()),
            ahead: self.cfg.prefetch.max(1) + self.cfg.num_workers,
            pending: BTreeMap::new(),
            bad: self.bad.clone(),
            epoch_bad: EpochBad::default(),
            limit: self.cfg.max_bad_fraction,
            total: self.source.len(),
            stop: self.stop.clone(),
            cancel,
            failed: false,
        };
        e.feed();
        e
    }
}

/// One pass over the data; yields batches in plan order. Dropping it stops and joins the
/// workers.
pub struct Epoch {
    plan_len: usize,
    /// Batch maker on the calling thread when there are no workers.
    inline: Option<Box<dyn workers::Make>>,
    jobs: Option<Sender<usize>>,
    results: Receiver<(usize, workers::Made)>,
    workers: Vec<std::thread::JoinHandle<()>>,
    next: usize,
    fed: usize,
    /// Batches handed to the workers but not yet consumed, at most.
    ahead: usize,
    pending: BTreeMap<usize, workers::Made>,
    bad: Arc<BadSamples>,
    /// This pass's distinct bad samples: what the limit applies to.
    epoch_bad: EpochBad,
    limit: f64,
    total: usize,
    stop: Arc<AtomicBool>,
    /// Set on drop so workers abandon queued batches.
    cancel: Arc<AtomicBool>,
    failed: bool,
}

impl Epoch {
    /// Number of batches in this pass.
    pub fn len(&self) -> usize {
        self.plan_len
    }

    pub fn is_empty(&self) -> bool {
        self.plan_len == 0
    }

    /// Distinct samples of this pass that could not be made so far.
    pub fn bad_count(&self) -> usize {
        self.epoch_bad.count()
    }

    /// True when the stop flag ended the pass early.
    pub fn interrupted(&self) -> bool {
        self.stop.load(Ordering::Relaxed) && self.next < self.plan_len
    }

    /// Keeps `ahead` batches in flight: the bounded queue that caps memory.
    fn feed(&mut self) {
        let Some(jobs) = &self.jobs else { return };
        while self.fed < self.plan_len && self.fed < self.next + self.ahead {
            if jobs.send(self.fed).is_err() {
                return;
            }
            self.fed += 1;
        }
    }

    fn receive(&mut self) -> Result<Option<workers::Made>, LoaderError> {
        if let Some(made) = self.pending.remove(&self.next) {
            return Ok(Some(made));
        }
        if let Some(inline) = &self.inline {
            return Ok(Some(inline.make(self.next)));
        }
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            match self.results.recv_timeout(Duration::from_millis(100)) {
                Ok((b, made)) if b == self.next => {
                    return Ok(Some(made));
                }
                Ok((b, made)) => {
                    self.pending.insert(b, made);
                }
                // Workers also exit when the stop flag is set (a signal), which can happen
                // while this waits: then the pass ends quietly, as if checked above.
                Err(_) if self.stop.load(Ordering::Relaxed) => return Ok(None),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if self.workers.iter().all(|h| h.is_finished()) {
                        return Err(LoaderError::Worker("all workers have exited".into()));
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(LoaderError::Worker("the result channel closed".into()));
                }
            }
        }
    }

    fn shutdown(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.jobs = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl Iterator for Epoch {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed || self.next >= self.plan_len || self.stop.load(Ordering::Relaxed) {
                return None;
            }
            let made = match self.receive() {
                Ok(Some(m)) => m,
                Ok(None) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            // A worker that saw the stop flag halted between samples: what it sent may be
            // a partial batch, which must not be trained on (a resumed run re-makes it whole).
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            self.next += 1;
            self.feed();
            let made = match made {
                workers::Made::Panicked(msg) => {
                    self.failed = true;
                    return Some(Err(LoaderError::Worker(msg)));
                }
                workers::Made::Batch(b) => b,
            };
            for (index, e) in &made.skipped {
                self.bad.record(*index, e);
                self.epoch_bad.record(*index, e);
            }
            // Checked as bad samples arrive, so a run over the limit stops at the first batch
            // that crosses it rather than after a whole epoch of them.
            if self.epoch_bad.count() as f64 > self.limit * self.total as f64 {
                self.failed = true;
                return Some(Err(LoaderError::TooManyBad {
                    bad: self.epoch_bad.count(),
                    total: self.total,
                    limit: self.limit,
                    files: self.epoch_bad.lines().to_vec(),
                }));
            }
            match made.batch {
                Some(batch) => return Some(Ok(batch)),
                // Every sample of this batch was bad: go on with the next one.
                None => continue,
            }
        }
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        // Workers see `cancel` between samples, so this waits for at most one sample each.
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
