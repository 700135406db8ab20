//! Supervised classification: fine-tuning, and the linear probe (frozen backbone).

use tch::{Device, Kind, Tensor};

use super::{accuracy, StepContext, Task, TaskLoss};
use crate::config::schema::LossFunc;
use crate::config::Config;
use crate::data::loader::Batch;
use crate::models::{ModelOutput, Taps, VideoModel};
use crate::tasks::TaskError;

/// Cross-entropy on the head's logits against `(B)` class labels.
#[derive(Debug, Clone, Copy)]
pub struct ClassifyTask {
    /// TRAIN.ONLY_LINEAR: the backbone runs in evaluation mode (BatchNorm uses and keeps its
    /// running statistics) and without autograd; only the head trains.
    pub linear_probe: bool,
}

impl ClassifyTask {
    /// The task of a config; only TRAIN.LOSS_FUNC `cross_entropy` is built.
    pub fn from_config(cfg: &Config) -> Result<Self, TaskError> {
        if cfg.train.loss_func != LossFunc::CrossEntropy {
            return Err(TaskError::Unsupported(format!(
                "TRAIN.LOSS_FUNC {:?} (only cross_entropy is built)",
                cfg.train.loss_func
            )));
        }
        Ok(Self {
            linear_probe: cfg.train.only_linear,
        })
    }
}

impl Task for ClassifyTask {
    fn name(&self) -> &str {
        if self.linear_probe {
            "linear_probe"
        } else {
            "finetune"
        }
    }

    fn step(
        &mut self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        _ctx: &StepContext,
    ) -> Result<TaskLoss, TaskError> {
        let out = self.forward(model, &batch.inputs.to_device(device));
        self.loss(&out, batch, device)
    }
}

impl ClassifyTask {
    /// Runs the model in training mode; the linear probe keeps the backbone in evaluation mode.
    pub fn forward(&self, model: &VideoModel, xs: &Tensor) -> ModelOutput {
        if !self.linear_probe {
            return model.forward_t(xs, true);
        }
        // The frozen backbone is never stepped: no graph through it, BN in evaluation mode.
        let features = tch::no_grad(|| model.backbone().forward_taps(xs, false, &mut Taps::off()));
        let out = model.head().forward_t(&features, true);
        ModelOutput {
            predictions: out.predictions,
            features: out.features,
        }
    }

    /// Loss and accuracy of `out` against the labels of `batch`.
    pub fn loss(
        &self,
        out: &ModelOutput,
        batch: &Batch,
        device: Device,
    ) -> Result<TaskLoss, TaskError> {
        let logits = out.predictions.single().ok_or_else(|| {
            TaskError::Invalid(format!(
                "classification needs one head output, the model gives {:?}",
                out.predictions.names()
            ))
        })?;
        // (B) class indices.
        let y = batch
            .labels
            .to_device(device)
            .to_kind(Kind::Int64)
            .reshape([-1]);
        let loss = logits.cross_entropy_for_logits(&y);
        let metrics = vec![("acc".to_string(), accuracy(logits, &y))];
        Ok(TaskLoss { loss, metrics })
    }
}
