//! The contrastive task (docs/paramcrop.md): two views are cut from every source clip — by
//! random cubic crops, or by ParamCrop's parameter net behind a gradient-reversal layer — and an
//! InfoNCE loss pulls the views of a video together: SimCLR (NT-Xent, one encoder) or MoCo v2
//! (a momentum key encoder and a queue of past keys).
//!
//! One backward pass trains everything: the encoder descends the loss, and through the reversed
//! gradient the parameter net ascends it. Every extra state (the parameter net, the key encoder,
//! the queue) lives in the run's VarStore, so checkpoints and `--resume` cover it.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tada_augment::paramcrop::{Cube, ParamCropConfig};
use tada_augment::visualize::clip_frames;
use tch::{Device, Kind, Tensor};

use super::crops::views_over_source;
use super::loss::Contrast;
use super::moco::KeyEncoder;
use super::paramcrop::{paramcrop_config, view_thetas, Adversary};
use super::simclr;
use super::views::{cut_view, step_rng_seed, ViewConfig};
use crate::config::schema::{ContrastiveFramework, HeadName};
use crate::config::Config;
use crate::data::loader::Batch;
use crate::models::Session;
use crate::models::VideoModel;
use crate::optim::ParamGroup;
use crate::tasks::TaskError;
use crate::tasks::{StepContext, Task, TaskLoss};

/// SimCLR or MoCo v2 over random cubic crops or ParamCrop views.
pub struct ContrastiveTask {
    temperature: f64,
    bounds: ParamCropConfig,
    adversary: Option<Adversary>,
    views: ViewConfig,
    /// MoCo's key side; `None` for SimCLR.
    key: Option<KeyEncoder>,
    name: String,
    /// PARAMCROP.IMAGE_PERIOD.
    image_period: u64,
    /// The last step's first source clip `(3, T, H, W)` and its two cubes, on the CPU.
    last_views: Option<(Tensor, Vec<Cube>)>,
}

fn config_error(key: &'static str, message: impl Into<String>) -> TaskError {
    TaskError::config(key, message)
}

/// Refuses what contrastive pretraining cannot run: another head, MoSINet, a SimCLR batch
/// without negatives.
fn check(session: &Session, cfg: &Config) -> Result<(), TaskError> {
    if cfg.video.head.name != HeadName::ContrastiveHead {
        return Err(config_error(
            "VIDEO.HEAD.NAME",
            format!(
                "is {:?}; contrastive pretraining needs ContrastiveHead (the projection MLP)",
                cfg.video.head.name
            ),
        ));
    }
    if session.model.is_mosi() {
        return Err(config_error(
            "MODEL.NAME",
            "is MoSINet; contrastive pretraining runs the plain backbone + head model",
        ));
    }
    let simclr = cfg.pretrain.contrastive.framework == ContrastiveFramework::Simclr;
    if cfg.train.batch_size < 2 && simclr {
        return Err(config_error(
            "TRAIN.BATCH_SIZE",
            "must be at least 2: SimCLR's negatives are the other videos of the batch",
        ));
    }
    Ok(())
}

impl ContrastiveTask {
    /// Builds the task's own variables (parameter net, key encoder, queue) in `session`'s
    /// VarStore, next to the model.
    pub fn new(session: &Session, cfg: &Config) -> Result<Self, TaskError> {
        check(session, cfg)?;
        let c = &cfg.pretrain.contrastive;
        let p = &cfg.pretrain.paramcrop;
        let bounds = paramcrop_config(p);
        let adversary = p.enable.then(|| Adversary::new(&session.vs, p, &bounds));
        let key = match c.framework {
            ContrastiveFramework::Simclr => None,
            ContrastiveFramework::Moco => Some(KeyEncoder::new(session, cfg)?),
        };
        let views = ViewConfig::from_config(cfg);
        let name = format!(
            "{}{}",
            match c.framework {
                ContrastiveFramework::Simclr => "simclr",
                ContrastiveFramework::Moco => "moco",
            },
            if p.enable { "+paramcrop" } else { "" }
        );
        Ok(Self {
            temperature: c.temperature,
            bounds,
            adversary,
            views,
            key,
            name,
            image_period: p.image_period,
            last_views: None,
        })
    }

    /// Keeps the batch's first source clip and its cubes for the TensorBoard image.
    ///
    /// A copy on the model's device: moving it to the CPU would wait for the device every step,
    /// while only every IMAGE_PERIOD-th step draws it ([`Task::images`] moves it then).
    fn keep_views(&mut self, x: &Tensor, cubes: &[Cube]) {
        let first = |t: &Tensor| t.narrow(0, 0, 1).detach().copy();
        let cubes = cubes
            .iter()
            .map(|c| Cube {
                scale: first(&c.scale),
                centre: first(&c.centre),
            })
            .collect();
        self.last_views = Some((first(x).squeeze_dim(0), cubes));
    }
}

impl Task for ContrastiveTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn clips(&self, batch: &Batch) -> usize {
        // Two views per source clip.
        2 * batch.indices.len()
    }

    fn splits_batches(&self) -> bool {
        false
    }

    fn param_groups(&self, base_lr: f64) -> Result<Vec<ParamGroup>, TaskError> {
        Ok(self
            .adversary
            .iter()
            .map(|a| a.param_group(base_lr))
            .collect())
    }

    fn step(
        &mut self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        ctx: &StepContext,
    ) -> Result<TaskLoss, TaskError> {
        let x = batch.inputs.to_device(device).to_kind(Kind::Float);
        let s = x.size();
        if s.len() != 5 {
            return Err(TaskError::Invalid(format!(
                "contrastive pretraining takes (B, C, T, H, W) source clips, got {s:?}"
            )));
        }
        let b = s[0];
        let mut rng = ChaCha8Rng::seed_from_u64(step_rng_seed());
        let (thetas, cubes, mut metrics) = view_thetas(
            self.adversary.as_ref(),
            &self.bounds,
            b,
            [s[2], s[3], s[4]],
            ctx,
            &mut rng,
            device,
        );
        if self.image_period > 0 {
            self.keep_views(&x, &cubes);
        }
        let crop = |t: &Tensor, rng: &mut ChaCha8Rng| {
            cut_view(&x, t, &self.views, rng).map_err(|e| TaskError::Invalid(e.to_string()))
        };
        let v1 = crop(&thetas[0], &mut rng)?;
        let v2 = crop(&thetas[1], &mut rng)?;
        let key_grad = self.adversary.as_ref().is_some_and(|a| a.key_grad);
        let Contrast { loss, accuracy } = match &mut self.key {
            Some(key) => key.contrast(model, &v1, &v2, key_grad, self.temperature)?,
            None => simclr::contrast(model, &v1, &v2, b, self.temperature)?,
        };
        metrics.insert(0, ("acc".into(), accuracy));
        Ok(TaskLoss { loss, metrics })
    }

    fn images(&mut self, step: u64) -> Vec<(String, image::RgbImage)> {
        if self.image_period == 0 || step % self.image_period != 0 {
            return Vec::new();
        }
        let Some((clip, cubes)) = self.last_views.take() else {
            return Vec::new();
        };
        let cpu = |t: &Tensor| t.to_device(Device::Cpu);
        let clip = cpu(&clip);
        let cubes: Vec<Cube> = cubes
            .iter()
            .map(|c| Cube {
                scale: cpu(&c.scale),
                centre: cpu(&c.centre),
            })
            .collect();
        // The source is in [0, 1]: no normalisation to undo.
        let Ok(frames) = clip_frames(&clip, [0.0; 3], [1.0; 3]) else {
            return Vec::new();
        };
        views_over_source(&frames, &cubes, 0)
            .map(|img| vec![("paramcrop/views".to_string(), img)])
            .unwrap_or_default()
    }

    fn after_step(&mut self) -> Result<(), TaskError> {
        if let Some(key) = &mut self.key {
            key.after_step();
        }
        Ok(())
    }
}
