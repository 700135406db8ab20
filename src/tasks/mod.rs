//! What differs between training runs: how a batch becomes the model's input, how the model is
//! run, the loss and metrics of its output, and the task's own trainable parameters. The loop in
//! [`crate::train`] does the rest. One folder per pretext: [`mosi`] and [`contrastive`];
//! [`classify`] is the downstream task (fine-tuning, linear probe), with [`verb_noun`] for
//! EPIC-Kitchens' two heads.

pub mod classify;
pub mod contrastive;
mod error;
pub mod localize;
pub mod mosi;
pub mod verb_noun;

pub use error::TaskError;

use tch::{Device, Tensor};

use crate::optim::ParamGroup;

use crate::data::loader::Batch;
use crate::models::VideoModel;

/// A scalar loss to backpropagate and the step's metrics (accuracy per head, …).
#[derive(Debug)]
pub struct TaskLoss {
    /// 0-d tensor on the model's device.
    pub loss: Tensor,
    /// `(name, value)`; names become metrics.jsonl fields and TensorBoard tags `train/<name>`.
    pub metrics: Vec<(String, f64)>,
}

/// Where a step sits in the run, for tasks whose behaviour changes over training (ParamCrop's
/// gradient-reversal ramp).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepContext {
    /// Fractional epoch of the step (epoch + iteration / iterations per epoch).
    pub epoch: f64,
    /// OPTIMIZER.MAX_EPOCH.
    pub max_epoch: f64,
}

impl StepContext {
    /// Training progress in [0, 1].
    pub fn progress(&self) -> f64 {
        if self.max_epoch > 0.0 {
            (self.epoch / self.max_epoch).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// A pretext or downstream task.
pub trait Task {
    /// Label for logs and progress bars, e.g. `mosi` or `linear_probe`.
    fn name(&self) -> &str;

    /// Number of clips the model sees for `batch` (for clips/s).
    fn clips(&self, batch: &Batch) -> usize {
        batch.indices.len()
    }

    /// Runs the model on `batch` (in training mode, or as the task says) and returns the loss
    /// to backpropagate with the step's metrics.
    fn step(
        &mut self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        ctx: &StepContext,
    ) -> Result<TaskLoss, TaskError>;

    /// The step's whole batch before it runs (and before TRAIN.MICRO_BATCH_SIZE cuts it):
    /// batch-level augmentation such as mixup and CutMix, which pairs samples across the
    /// batch. `seed` is the step's, so a resumed run draws what the uninterrupted one drew.
    fn prepare(&mut self, batch: Batch, _device: Device, _seed: u64) -> Result<Batch, TaskError> {
        Ok(batch)
    }

    /// Whether a step may run as several chunks of the batch with gradients accumulated
    /// (TRAIN.MICRO_BATCH_SIZE). False when the loss couples the batch's samples (InfoNCE:
    /// every other sample is a negative), since chunks would change the loss itself.
    fn splits_batches(&self) -> bool {
        true
    }

    /// The optimiser groups of the task's own trainable variables (ParamCrop's net), with
    /// `base_lr` the run's BASE_LR after ADJUST_LR. The model's groups are built from the rest.
    fn param_groups(&self, _base_lr: f64) -> Result<Vec<ParamGroup>, TaskError> {
        Ok(Vec::new())
    }

    /// Called after the optimiser step (MoCo's momentum update and queue).
    fn after_step(&mut self) -> Result<(), TaskError> {
        Ok(())
    }

    /// Images to log to TensorBoard after step `step` (`(tag, image)`), e.g. the contrastive
    /// views drawn over their source; most tasks have none.
    fn images(&mut self, _step: u64) -> Vec<(String, image::RgbImage)> {
        Vec::new()
    }
}

/// Top-1 accuracy of `(N, K)` logits against `(N)` class indices.
pub fn accuracy(logits: &Tensor, targets: &Tensor) -> f64 {
    tch::no_grad(|| {
        logits
            .argmax(-1, false)
            .eq_tensor(targets)
            .to_kind(tch::Kind::Float)
            .mean(tch::Kind::Float)
            .double_value(&[])
    })
}
