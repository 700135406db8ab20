//! Worker threads: each takes a batch number, makes its samples, collates them, and sends the
//! batch back tagged with its number so the consumer can restore the order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tch::Tensor;

use super::seed::sample_rng;
use super::{Batch, Sample, SampleError, SampleSource};

/// What a worker hands back for one batch number.
pub enum Made {
    Batch(MadeBatch),
    /// The sample code panicked; the message is passed on rather than hanging the consumer.
    Panicked(String),
}

pub struct MadeBatch {
    /// `None` when every sample was bad.
    pub batch: Option<Batch>,
    /// The samples that failed, with their dataset indices.
    pub skipped: Vec<(usize, SampleError)>,
}

/// Everything a worker needs; cheap to clone (shared pointers).
pub struct Context {
    pub source: Arc<dyn SampleSource>,
    pub plan: Arc<Vec<Vec<usize>>>,
    pub seed: u64,
    pub epoch: u64,
    pub stop: Arc<AtomicBool>,
    pub cancel: Arc<AtomicBool>,
    pub pin_memory: bool,
}

impl Clone for Context {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            plan: self.plan.clone(),
            seed: self.seed,
            epoch: self.epoch,
            stop: self.stop.clone(),
            cancel: self.cancel.clone(),
            pin_memory: self.pin_memory,
        }
    }
}

/// Makes batch `b` of the plan.
pub trait Make: Send {
    fn make(&self, b: usize) -> Made;
}

impl Context {
    fn halted(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.cancel.load(Ordering::Relaxed)
    }

    fn make_batch(&self, b: usize) -> MadeBatch {
        let t0 = Instant::now();
        let mut good = Vec::new();
        let mut skipped = Vec::new();
        for &index in &self.plan[b] {
            if self.halted() {
                break;
            }
            let mut rng = sample_rng(self.seed, self.epoch, index);
            match self.source.get(index, &mut rng) {
                Ok(s) => good.push((index, s)),
                Err(e) => skipped.push((index, e)),
            }
        }
        if good.is_empty() {
            return MadeBatch {
                batch: None,
                skipped,
            };
        }
        let inputs: Vec<Tensor> = good.iter().map(|(_, s)| s.input.shallow_clone()).collect();
        let labels: Vec<Tensor> = good.iter().map(|(_, s)| s.label.shallow_clone()).collect();
        let k = self.source.clips_per_sample();
        let (mut inputs, labels) = match k {
            // (B, ...) from B samples of equal shape.
            1 => (Tensor::stack(&inputs, 0), Tensor::stack(&labels, 0)),
            // (B·k, ...) from B samples of (k, ...) clips: each clip its own place.
            _ => (Tensor::cat(&inputs, 0), Tensor::cat(&labels, 0)),
        };
        if self.pin_memory {
            // Unpinned when libtorch cannot pin: the copy to the GPU is then synchronous.
            inputs = crate::cuda_shim::pinned(&inputs).unwrap_or(inputs);
        }
        // One entry per clip: a sample of k clips is k places, views 0..k.
        let per_clip = |f: fn(&(usize, Sample)) -> usize| -> Vec<usize> {
            good.iter()
                .flat_map(|g| std::iter::repeat_n(f(g), k))
                .collect()
        };
        let views = match k {
            1 => good.iter().map(|(_, s)| s.view).collect(),
            _ => good.iter().flat_map(|_| 0..k).collect(),
        };
        let batch = Batch {
            inputs,
            labels,
            indices: per_clip(|(i, _)| *i),
            sources: per_clip(|(_, s)| s.source),
            views,
            skipped: skipped.iter().map(|(_, e)| e.clone()).collect(),
            make_seconds: t0.elapsed().as_secs_f64(),
            decode_seconds: good.iter().map(|(_, s)| s.decode_seconds).sum(),
        };
        MadeBatch {
            batch: Some(batch),
            skipped,
        }
    }
}

impl Make for Context {
    fn make(&self, b: usize) -> Made {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.make_batch(b))) {
            Ok(m) => Made::Batch(m),
            Err(p) => Made::Panicked(panic_message(&*p)),
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a loader worker panicked".into())
}

/// Starts worker `w`.
pub fn spawn(
    w: usize,
    ctx: Context,
    jobs: Receiver<usize>,
    results: Sender<(usize, Made)>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("tada-loader-{w}"))
        .spawn(move || {
            // Parallelism comes from the workers; libtorch's own thread pool inside each would
            // oversubscribe the cores.
            tch::set_num_threads(1);
            while let Ok(b) = jobs.recv() {
                if ctx.halted() {
                    break;
                }
                if results.send((b, ctx.make(b))).is_err() {
                    break;
                }
            }
        })
        .expect("spawn a loader thread")
}
