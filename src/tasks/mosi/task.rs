//! MoSI pretraining (docs/mosi.md#pretext-loss): classify the pseudo-motion of every clip.

use tada_augment::mosi::{MosiGenerator, SpeedSet};
use tada_augment::visualize::clip_frames;
use tch::{Device, Kind, Tensor};

use super::config::{generator_config, MosiConfigError};
use super::pictures::clip_grid;
use crate::config::Config;
use crate::data::loader::Batch;
use crate::models::heads::Predictions;
use crate::models::{ModelOutput, VideoModel};
use crate::tasks::TaskError;
use crate::tasks::{accuracy, StepContext, Task, TaskLoss};

/// Frames per clip in the TensorBoard grid (evenly spaced).
const IMAGE_FRAMES: usize = 4;

/// Cross-entropy over the B·K clips of a batch of B images × K speeds, summed over the heads
/// the model has (`move_joint`, or `move_x` / `move_y`). With pictures on, every
/// PRETRAIN.IMAGE_PERIOD steps the first image's clips go to TensorBoard as a labelled grid.
#[derive(Debug, Default)]
pub struct MosiTask {
    pictures: Option<Pictures>,
}

/// What the TensorBoard grid needs.
#[derive(Debug)]
struct Pictures {
    period: u64,
    speeds: SpeedSet,
    mean: [f64; 3],
    std: [f64; 3],
    /// The last batch's first image's clips `(K, C, T, H, W)`: a view of the loader's batch,
    /// so nothing is copied (or moved off a device) except on the steps that draw it.
    last: Option<Tensor>,
}

impl MosiTask {
    /// The task of `cfg`, drawing its clips every PRETRAIN.IMAGE_PERIOD steps (0 = never).
    pub fn new(cfg: &Config) -> Result<Self, MosiConfigError> {
        let period = cfg.pretrain.image_period;
        if period == 0 {
            return Ok(Self::default());
        }
        let gcfg = generator_config(cfg)?;
        let (mean, std) = (gcfg.mean, gcfg.std);
        let speeds = MosiGenerator::new(gcfg)?.speed_set().clone();
        Ok(Self {
            pictures: Some(Pictures {
                period,
                speeds,
                mean,
                std,
                last: None,
            }),
        })
    }
}

impl Pictures {
    /// The grid of the kept clips, or nothing when they cannot be drawn.
    fn draw(&mut self, step: u64) -> Option<image::RgbImage> {
        let clips = self.last.take()?;
        let s = clips.size();
        if s.len() != 5 {
            return None;
        }
        let clips = clips.to_device(Device::Cpu);
        let frames: Vec<_> = (0..s[0])
            .map(|k| clip_frames(&clips.get(k), self.mean, self.std))
            .collect::<Result<_, _>>()
            .ok()?;
        let title = format!("MoSI clips of step {step}: one row per speed");
        clip_grid(&self.speeds, &frames, IMAGE_FRAMES, Some(title)).ok()
    }
}

/// The targets of head `name`, `(B·K)`. Joint labels `(B, K)` serve every head, as in the
/// reference (its MoSIX/MoSIY losses read `move_joint`); separate labels `(B, K, 2)` give
/// `move_x` column 0 and `move_y` column 1 and have no joint target.
fn targets(name: &str, labels: &Tensor) -> Result<Tensor, TaskError> {
    let size = labels.size();
    match (size.len(), name) {
        // (B, K) -> (B·K), sample index fastest inside an image, as MoSINet folds its input.
        (2, _) => Ok(labels.reshape([-1])),
        // (B, K, 2) -> (B·K) of one axis.
        (3, "move_x") => Ok(labels.select(2, 0).reshape([-1])),
        (3, "move_y") => Ok(labels.select(2, 1).reshape([-1])),
        _ => Err(TaskError::Invalid(format!(
            "MoSI head output {name} cannot be scored against labels of shape {size:?} \
             (PRETRAIN.LABEL_MODE and VIDEO.HEAD.NAME disagree)"
        ))),
    }
}

impl Task for MosiTask {
    fn name(&self) -> &str {
        "mosi"
    }

    fn clips(&self, batch: &Batch) -> usize {
        // (B, K, C, T, H, W): every image gives K clips.
        let s = batch.inputs.size();
        (s[0] * s.get(1).copied().unwrap_or(1)) as usize
    }

    fn step(
        &mut self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        _ctx: &StepContext,
    ) -> Result<TaskLoss, TaskError> {
        if let Some(p) = &mut self.pictures {
            // (B, K, C, T, H, W): a view, not a copy.
            p.last = (batch.inputs.dim() == 6).then(|| batch.inputs.get(0));
        }
        let out = model.forward_t(&batch.inputs.to_device(device), true);
        self.loss(&out, batch, device)
    }

    fn images(&mut self, step: u64) -> Vec<(String, image::RgbImage)> {
        match &mut self.pictures {
            Some(p) if step % p.period == 0 => p.draw(step),
            _ => None,
        }
        .map(|img| vec![("mosi/clips".to_string(), img)])
        .unwrap_or_default()
    }
}

impl MosiTask {
    /// Loss and metrics of `out` against the labels of `batch`.
    pub fn loss(
        &self,
        out: &ModelOutput,
        batch: &Batch,
        device: Device,
    ) -> Result<TaskLoss, TaskError> {
        let labels = batch.labels.to_device(device).to_kind(Kind::Int64);
        let heads: Vec<(&str, &Tensor)> = match &out.predictions {
            Predictions::Named(v) => v.iter().map(|(n, t)| (n.as_str(), t)).collect(),
            Predictions::Tensor(t) => vec![("move_joint", t)],
        };
        let mut total: Option<Tensor> = None;
        let mut metrics = Vec::new();
        for (name, logits) in heads {
            let y = targets(name, &labels)?;
            if y.size()[0] != logits.size()[0] {
                return Err(TaskError::Invalid(format!(
                    "MoSI head output {name} has {} rows, the labels {}",
                    logits.size()[0],
                    y.size()[0]
                )));
            }
            let ce = logits.cross_entropy_for_logits(&y);
            metrics.push((format!("loss_{name}"), ce.double_value(&[])));
            metrics.push((format!("acc_{name}"), accuracy(logits, &y)));
            total = Some(match total {
                Some(t) => t + ce,
                None => ce,
            });
        }
        let loss =
            total.ok_or_else(|| TaskError::Invalid("the model has no MoSI output".into()))?;
        Ok(TaskLoss { loss, metrics })
    }
}
