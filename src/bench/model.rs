//! `tada bench model`: training-step time (forward + backward + SGD update) of a configured
//! model on random input, on the CPU or the configured GPU.

use std::time::{Duration, Instant};

use tch::nn::{OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

use crate::config::{Config, MAX_BATCH_SIZE};
use crate::localization::bmn;
use crate::models::heads::Predictions;
use crate::models::summary::configured_input_shape;
use crate::models::{ModelError, VideoModel};
use crate::step_guard::{guarded, libtorch_message};

/// Why a step-time benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("batch size must be 1 to {MAX_BATCH_SIZE}, got {0}")]
    Batch(i64),
    /// libtorch failed (out of memory, most likely); the message is its first line.
    #[error("{what} failed: {message}")]
    Torch { what: String, message: String },
}

/// Result of a step-time benchmark.
#[derive(Debug, Clone)]
pub struct StepTime {
    pub input_shape: Vec<i64>,
    pub steps: usize,
    /// Median seconds per step.
    pub median: f64,
    pub mean: f64,
    pub device: Device,
}

impl StepTime {
    /// Clips per second at the median step time (MoSI: every speed clip counts).
    pub fn clips_per_second(&self) -> f64 {
        // (B, C, T, H, W) or (B, K, C, T, H, W) clips; BMN's (B, C, T) feature windows.
        let item_dims = if self.input_shape.len() == 3 { 2 } else { 4 };
        let clips: i64 = self
            .input_shape
            .iter()
            .take(self.input_shape.len().saturating_sub(item_dims))
            .product();
        clips as f64 / self.median
    }
}

/// Cross-entropy of (N, K) logits against class 0.
fn classification_loss(logits: &Tensor) -> Tensor {
    let labels = Tensor::zeros([logits.size()[0]], (Kind::Int64, logits.device()));
    logits.cross_entropy_for_logits(&labels)
}

/// Times training steps of the config's model at batch `batch` for about `budget` (after two
/// warm-up steps). `mosi_clips` is K for MoSINet inputs.
pub fn step_time(
    cfg: &Config,
    batch: i64,
    mosi_clips: Option<i64>,
    budget: Duration,
) -> Result<StepTime, BenchError> {
    if !(1..=MAX_BATCH_SIZE as i64).contains(&batch) {
        return Err(BenchError::Batch(batch));
    }
    // The device training would use, cuDNN's benchmark mode included.
    let device = crate::models::device_for(cfg);
    tch::manual_seed(cfg.random_seed as i64);
    let vs = VarStore::new(device);
    let mut shape = configured_input_shape(cfg, mosi_clips);
    shape[0] = batch;
    // Building the model and the input allocate; libtorch failing comes back as a panic. The
    // network alone: timing a step needs no dataset, so a config whose data tada does not read
    // yet (EPIC-Kitchens) is timed too.
    let torch = |what: String| move |message| BenchError::Torch { what, message };
    let model = guarded(|| VideoModel::new(&vs.root(), cfg))
        .map_err(torch("building the model".into()))??;
    let xs = Tensor::f_randn(shape.as_slice(), (Kind::Float, device)).map_err(|e| {
        let full = e.to_string();
        tracing::debug!("{full}");
        BenchError::Torch {
            what: format!("allocating the input {shape:?}"),
            message: libtorch_message(&full),
        }
    })?;
    model.check_input(&xs)?;
    let mut opt = tch::nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&vs, 1e-3)
    .map_err(|e| ModelError::Unsupported(format!("optimizer: {e}")))?;
    let mut step = || {
        let out = model.forward_t(&xs, true);
        let loss = match out.predictions {
            Predictions::Tensor(t) => classification_loss(&t),
            // BMN's maps: every output takes part in the backward pass.
            Predictions::Named(v) if v.iter().any(|(n, _)| n == bmn::CONFIDENCE_MAP) => v
                .iter()
                .map(|(_, t)| t.mean(Kind::Float))
                .fold(Tensor::zeros([], (Kind::Float, device)), |a, b| a + b),
            Predictions::Named(mut v) => classification_loss(&v.remove(0).1),
        };
        opt.backward_step(&loss);
        if let Device::Cuda(i) = device {
            // Kernels run asynchronously; wait so the step is really timed.
            tch::Cuda::synchronize(i as i64);
        }
    };
    let mut times = Vec::new();
    guarded(|| {
        step();
        step();
        let start = Instant::now();
        while start.elapsed() < budget || times.len() < 3 {
            let t = Instant::now();
            step();
            times.push(t.elapsed().as_secs_f64());
        }
    })
    .map_err(torch(format!("a training step on {shape:?}")))?;
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    Ok(StepTime {
        input_shape: shape,
        steps: times.len(),
        median: times[times.len() / 2],
        mean,
        device,
    })
}
