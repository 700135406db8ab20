//! BMN temporal action localisation (TASK_TYPE localization): the model maps a window of
//! features to start / end scores and the proposal confidence map, trained with the
//! reference's TEM + PEM regression + PEM classification losses
//! (docs/localization.md#training). Batches come from `data::sources::tal_windows`, labels
//! packed as start (T), end (T), IoU map (D·T).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::{StepContext, Task, TaskError, TaskLoss};
use crate::config::Config;
use crate::data::loader::Batch;
use crate::localization::labels::LabelMaps;
use crate::localization::loss::{bmn_losses, LossConfig, RegDraws, Targets};
use crate::models::VideoModel;

/// The PEM regression loss's sub-sampling draws its own stream of the step's seed.
const REG_STREAM: u64 = 0x424d_4e5f_5245_4721;

pub struct LocalizeTask {
    loss: LossConfig,
    /// (D, T) proposals inside the window; moved to the model's device at the first step.
    valid: Tensor,
    /// The step's seed and how many chunks of it have run (TRAIN.MICRO_BATCH_SIZE), so each
    /// chunk draws its own fields and a resumed run draws the same.
    seed: u64,
    chunk: u64,
}

impl LocalizeTask {
    pub fn from_config(cfg: &Config) -> Result<Self, TaskError> {
        let tscale = cfg.data.temporal_scale.ok_or_else(|| {
            TaskError::config(
                "DATA.TEMPORAL_SCALE",
                "is not set; the localisation task needs it",
            )
        })?;
        let dscale = match cfg.data.duration_scale {
            n if n < 1 => tscale,
            n => n as usize,
        };
        Ok(Self {
            loss: LossConfig::from_config(&cfg.localization)?,
            valid: LabelMaps::new(tscale, dscale).valid_mask(),
            seed: cfg.random_seed,
            chunk: 0,
        })
    }
}

impl Task for LocalizeTask {
    fn name(&self) -> &str {
        "localization"
    }

    fn prepare(&mut self, batch: Batch, _device: Device, seed: u64) -> Result<Batch, TaskError> {
        self.seed = seed;
        self.chunk = 0;
        Ok(batch)
    }

    fn step(
        &mut self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        _ctx: &StepContext,
    ) -> Result<TaskLoss, TaskError> {
        if self.valid.device() != device {
            self.valid = self.valid.to_device(device);
        }
        let (d, t) = (self.valid.size()[0], self.valid.size()[1]);
        let labels = batch.labels.to_device(device).to_kind(Kind::Float);
        let b = labels.size()[0];
        if labels.size() != [b, 2 * t + d * t] {
            return Err(TaskError::Invalid(format!(
                "localisation labels have shape {:?}, expected ({b}, {})",
                labels.size(),
                2 * t + d * t
            )));
        }
        let out = model.forward_t(&batch.inputs.to_device(device), true);
        let pred = |k: &str| {
            out.predictions.get(k).ok_or_else(|| {
                TaskError::Invalid(format!(
                    "the model has no `{k}` output; TASK_TYPE localization trains BaseBMN"
                ))
            })
        };
        let (start, end) = (labels.narrow(1, 0, t), labels.narrow(1, t, t));
        // (B, D·T) -> (B, D, T)
        let iou_map = labels.narrow(1, 2 * t, d * t).reshape([b, d, t]);
        let mask = self.valid.unsqueeze(0).expand([b, d, t], false);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ REG_STREAM ^ self.chunk);
        self.chunk += 1;
        let draws = RegDraws::sample(&iou_map, &mut rng);
        let targets = Targets {
            start: &start,
            end: &end,
            iou_map: &iou_map,
            mask: &mask,
        };
        let l = bmn_losses(
            pred("confidence_map")?,
            pred("start")?,
            pred("end")?,
            &targets,
            &self.loss,
            &draws,
        );
        // One device-to-host copy for the three logged terms.
        let terms = tch::no_grad(|| Tensor::stack(&[&l.tem, &l.pem_reg, &l.pem_cls], 0))
            .to_kind(Kind::Double)
            .to_device(Device::Cpu);
        let terms = Vec::<f64>::try_from(&terms)?;
        Ok(TaskLoss {
            metrics: ["tem", "pem_reg", "pem_cls"]
                .iter()
                .zip(terms)
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            loss: l.total,
        })
    }
}
