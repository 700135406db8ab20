//! What the loader draws from: anything that turns an index and an RNG into a sample.

use rand_chacha::ChaCha8Rng;
use tch::Tensor;

/// One training or test example.
#[derive(Debug)]
pub struct Sample {
    /// Model input, e.g. `(C, T, H, W)` for a clip or `(K, C, T, H, W)` for a MoSI sample.
    pub input: Tensor,
    /// Target(s): a 0-d int64 class index, or `(K,)` for a MoSI sample.
    pub label: Tensor,
    /// Which media file (for multi-view fusion and reports).
    pub source: usize,
    /// Which view of that file (test: temporal x spatial view number; else 0).
    pub view: usize,
    /// Seconds spent reading and decoding media for this sample (the rest is augmentation).
    pub decode_seconds: f64,
}

/// Why one sample could not be made; the loader skips it and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct SampleError {
    /// One line naming the file and the reason (a `DecodeError`'s message).
    pub what: String,
    /// Short kind for summaries: missing, empty, truncated, undecodable, ...
    pub kind: &'static str,
}

/// A dataset as the loader sees it. `get` runs on worker threads, so it must not depend on
/// anything but `index` and `rng` (that is what makes results independent of the worker count).
pub trait SampleSource: Send + Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `index`, with `rng` seeded from (seed, epoch, index).
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError>;

    /// Clips in every sample when more than 1: each sample is then `(k, ...)` clips with `(k)`
    /// labels, each clip its own place in the batch (`k` clips cut from one decoded video,
    /// DATA.CLIPS_PER_DECODE), and the loader concatenates samples instead of stacking them.
    fn clips_per_sample(&self) -> usize {
        1
    }
}
