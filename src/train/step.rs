//! One optimiser step, from a batch to updated weights: the learning rate and seed of the step,
//! forward and backward passes (in micro-batches when asked, under autocast), fp16 loss
//! scaling, gradient clipping, the update, and the task's after-step work. A libtorch failure
//! inside is caught here, so the loop can checkpoint and stop instead of crashing.

use tch::Device;

use super::data_parallel::DataParallel;
use super::precision::{autocast, LossScaler, Precision};
use super::{LoopSettings, TrainError};
use crate::data::loader::Batch;
use crate::models::Session;
use crate::optim::{OptimError, Optimizer};
use crate::step_guard::{self, guarded};
use crate::tasks::{StepContext, Task};

/// What a finished step reports.
#[derive(Debug)]
pub(super) struct StepDone {
    /// The batch's loss (share-weighted mean of its chunks').
    pub loss: f64,
    /// Task metrics, likewise averaged over the chunks.
    pub metrics: Vec<(String, f64)>,
}

/// Why a step did not finish.
pub(super) enum StepFailure {
    /// A chunk's loss was not finite (its value); nothing was backpropagated from it.
    NonFiniteLoss(f64),
    /// The gradients' global norm was not finite; nothing was updated.
    NonFiniteGradient(f64),
    /// The task failed (a tensor it cannot use, …).
    Task(TrainError),
    /// libtorch failed (CUDA out of memory, a shape a layer cannot take): the weights and the
    /// optimiser are as the previous step left them.
    Crashed {
        message: String,
        hint: Option<&'static str>,
    },
}

/// Runs steps with the run's micro-batching, precision and clipping.
pub(super) struct Stepper {
    micro: usize,
    precision: Precision,
    scaler: Option<LossScaler>,
    clip: Option<f64>,
}

impl Stepper {
    /// Refuses micro-batches for a task whose loss couples a batch's samples, and warns when
    /// mixed precision is asked for on the CPU.
    pub fn new(
        settings: &LoopSettings,
        device: Device,
        task: &dyn Task,
    ) -> Result<Self, TrainError> {
        let micro = settings.micro_batch_size;
        if micro > 0 && micro < settings.batch_size && !task.splits_batches() {
            return Err(TrainError::config(
                "TRAIN.MICRO_BATCH_SIZE",
                format!(
                    "is {micro}, but the {} loss compares every sample of a batch with the \
                     others, so it cannot be accumulated over chunks; set 0 (and a \
                     TRAIN.BATCH_SIZE that fits)",
                    task.name()
                ),
            ));
        }
        if settings.precision != Precision::Fp32 && !device.is_cuda() {
            tracing::warn!(
                "TRAIN.PRECISION {:?} needs CUDA autocast; this run is on the CPU, in fp32",
                settings.precision
            );
        }
        Ok(Self {
            micro,
            precision: settings.precision,
            scaler: LossScaler::for_precision(settings.precision, device),
            clip: settings.clip_grad_norm,
        })
    }

    /// One step at learning rate `lr`, with libtorch seeded by `seed` (dropout and any other
    /// in-model randomness then depend on the step only, so a resumed run draws what the
    /// uninterrupted one drew).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        task: &mut dyn Task,
        session: &Session,
        opt: &mut Optimizer,
        batch: &Batch,
        ctx: &StepContext,
        lr: f64,
        seed: i64,
        dp: Option<&DataParallel>,
    ) -> Result<StepDone, StepFailure> {
        if let Some(d) = dp {
            d.sync_buffers().map_err(StepFailure::Task)?;
        }
        opt.set_lr(lr);
        tch::manual_seed(rank_seed(seed, crate::dist::rank()));
        opt.zero_grad().map_err(|e| StepFailure::Task(e.into()))?;
        let (micro, precision, scaler) = (self.micro, self.precision, self.scaler.as_ref());
        let device = session.device;
        let batch = &guarded(|| task.prepare(batch.shallow_clone(), device, seed as u64))
            .map_err(|message| StepFailure::Crashed {
                hint: step_guard::hint(&message),
                message,
            })?
            .map_err(|e| StepFailure::Task(e.into()))?;
        let done =
            guarded(|| forward_backward(task, session, batch, (micro, precision, scaler), ctx, dp))
                .map_err(|message| StepFailure::Crashed {
                    hint: step_guard::hint(&message),
                    message,
                })??;
        if let Some(sc) = &mut self.scaler {
            let finite = sc.unscale(&opt.params());
            sc.update(finite);
            if !finite {
                // fp16 overflow: PyTorch's GradScaler skips the step and lowers the scale.
                tracing::debug!(
                    "fp16 gradients overflowed; step skipped, loss scale {}",
                    sc.scale
                );
                opt.zero_grad().map_err(|e| StepFailure::Task(e.into()))?;
            }
        }
        if let Some(max) = self.clip {
            opt.clip_grad_norm(max).map_err(|e| match e {
                OptimError::NonFiniteGradNorm(value) => StepFailure::NonFiniteGradient(value),
                e => StepFailure::Task(e.into()),
            })?;
        }
        opt.step();
        task.after_step().map_err(|e| StepFailure::Task(e.into()))?;
        Ok(done)
    }
}

/// The forward and backward passes of one step: one per chunk of `batch` (the whole batch
/// unless `micro` cuts it, TRAIN.MICRO_BATCH_SIZE), each chunk's loss weighted by its share of
/// the batch so the accumulated gradient is that of the batch's mean loss.
fn forward_backward(
    task: &mut dyn Task,
    session: &Session,
    batch: &Batch,
    (micro, precision, scaler): (usize, Precision, Option<&LossScaler>),
    ctx: &StepContext,
    dp: Option<&DataParallel>,
) -> Result<StepDone, StepFailure> {
    let device = session.device;
    let mut loss = 0.0;
    let mut metrics: Vec<(String, f64)> = Vec::new();
    let chunks = batch.chunks(micro);
    for (k, chunk) in chunks.iter().enumerate() {
        let share = chunk.indices.len() as f64 / batch.indices.len() as f64;
        let tl = autocast(precision, device, || {
            task.step(&session.model, chunk, device, ctx)
        })
        .map_err(|e| StepFailure::Task(e.into()))?;
        let mut value = tl.loss.double_value(&[]);
        if let Some(d) = dp {
            // Every rank learns whether any chunk k failed before any of them backpropagates.
            value = d.worst(value).map_err(StepFailure::Task)?;
        }
        if !value.is_finite() {
            return Err(StepFailure::NonFiniteLoss(value));
        }
        // share is 1 for a whole batch, and x * 1 is exact: one path for both.
        let weighted = &tl.loss * share;
        let root = match scaler {
            Some(sc) => sc.scale_loss(&weighted),
            None => weighted,
        };
        if let Some(d) = dp.filter(|_| k + 1 == chunks.len()) {
            d.arm(&root).map_err(StepFailure::Task)?;
        }
        root.backward();
        loss += share * value;
        accumulate(&mut metrics, &tl.metrics, share);
    }
    Ok(StepDone { loss, metrics })
}

/// Adds `share` x each of `values` to the same-named entry of `sum` (appending new names in
/// order): the batch's metrics as the share-weighted mean of its chunks'.
fn accumulate(sum: &mut Vec<(String, f64)>, values: &[(String, f64)], share: f64) {
    for (name, v) in values {
        match sum.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += share * v,
            None => sum.push((name.clone(), share * v)),
        }
    }
}

/// The libtorch seed of a rank: the step's own on rank 0 (the one-process run's), a different
/// one on every other rank, so the ranks' dropout masks and contrastive views are drawn
/// independently rather than repeated.
fn rank_seed(seed: i64, rank: usize) -> i64 {
    match rank {
        0 => seed,
        r => step_seed(seed as u64, r as u64 ^ 0x5EED_0000_0000_0000),
    }
}

/// libtorch seed of step `step`: dropout and any other in-model randomness of a step depend on
/// (seed, step) only, so a resumed run draws what the uninterrupted one drew.
pub(super) fn step_seed(seed: u64, step: u64) -> i64 {
    let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64's finaliser: nearby steps get unrelated seeds.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as i64
}
