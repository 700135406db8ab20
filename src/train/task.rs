//! What differs between training runs: how a batch becomes the model's input, how the model is
//! run, and the loss and metrics of its output. The loop in [`super::trainer`] does the rest.

use tch::{Device, Tensor};

use super::TrainError;
use crate::data::loader::Batch;
use crate::models::{ModelOutput, VideoModel};

/// A scalar loss to backpropagate and the step's metrics (accuracy per head, …).
#[derive(Debug)]
pub struct TaskLoss {
    /// 0-d tensor on the model's device.
    pub loss: Tensor,
    /// `(name, value)`; names become metrics.jsonl fields and TensorBoard tags `train/<name>`.
    pub metrics: Vec<(String, f64)>,
}

/// A pretext or downstream task.
pub trait Task {
    /// Label for logs and progress bars, e.g. `mosi` or `linear_probe`.
    fn name(&self) -> &str;

    /// The model input of `batch` on `device`.
    fn input(&self, batch: &Batch, device: Device) -> Tensor {
        batch.inputs.to_device(device)
    }

    /// Number of clips the model sees for `batch` (for clips/s).
    fn clips(&self, batch: &Batch) -> usize {
        batch.indices.len()
    }

    /// Runs the model in training mode. A linear probe overrides this to keep the backbone in
    /// evaluation mode.
    fn forward(&self, model: &VideoModel, xs: &Tensor) -> ModelOutput {
        model.forward_t(xs, true)
    }

    /// Loss and metrics of `out` against the labels of `batch`.
    fn loss(
        &self,
        out: &ModelOutput,
        batch: &Batch,
        device: Device,
    ) -> Result<TaskLoss, TrainError>;
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
