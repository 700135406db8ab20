//! Contrastive pretraining (PARAMCROP.md §4–5): two views are cut from every source clip — by
//! random cubic crops, or by ParamCrop's parameter net behind a gradient-reversal layer — and an
//! InfoNCE loss pulls the views of a video together: SimCLR (NT-Xent, one encoder) or MoCo v2
//! (a momentum key encoder and a queue of past keys).
//!
//! One backward pass trains everything: the encoder descends the loss, and through the reversed
//! gradient the parameter net ascends it. Every extra state (the parameter net, the key encoder,
//! the queue) lives in the run's VarStore, so checkpoints and `--resume` cover it.

use std::cell::RefCell;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tada_augment::paramcrop::{gradient_reversal, Cube, ParamCropConfig, ParamNet};
use tada_augment::visualize::clip_frames;
use tch::nn::Init;
use tch::{Device, Kind, Tensor};

use super::crops::{draw_views, paramcrop_config, strip};
use super::loss::{moco_info_nce, nt_xent, Contrast};
use super::views::{cut_view, grl_lambda, overlap_metrics, step_rng_seed, ViewConfig};
use crate::config::schema::{ContrastiveFramework, GrlSchedule, HeadName};
use crate::config::Config;
use crate::data::clips::{color_config, triple};
use crate::data::loader::Batch;
use crate::models::VideoModel;
use crate::tasks::{StepContext, Task, TaskLoss};
use crate::train::{Session, TrainError};

/// Variable path of the parameter net (`paramcrop.fc1.weight`, …), as `tada crops` reads it.
pub const PARAMCROP_PATH: &str = "paramcrop";
/// Variable path of MoCo's key encoder (`momentum_encoder.backbone.…`).
pub const KEY_ENCODER_PATH: &str = "momentum_encoder";

/// ParamCrop: the net and its gradient-reversal settings.
struct Adversary {
    net: ParamNet,
    schedule: GrlSchedule,
    lambda_max: f64,
    gamma: f64,
    start_epoch: f64,
    key_grad: bool,
}

/// MoCo v2's key side.
struct KeyEncoder {
    encoder: VideoModel,
    /// `(key parameter, query parameter)`: the momentum update pairs.
    pairs: Vec<(Tensor, Tensor)>,
    momentum: f64,
    /// `(K, D)` L2-normalised past keys (a non-trainable variable).
    queue: Tensor,
    /// `(1)` next row of the queue to overwrite, stored as a float so it checkpoints with the
    /// other variables (exact below 2^24 rows).
    ptr: Tensor,
    /// Keys of the current step, enqueued after the optimiser step.
    pending: RefCell<Option<Tensor>>,
}

/// SimCLR or MoCo v2 over random cubic crops or ParamCrop views.
pub struct ContrastiveTask {
    framework: ContrastiveFramework,
    temperature: f64,
    bounds: ParamCropConfig,
    adversary: Option<Adversary>,
    views: ViewConfig,
    key: Option<KeyEncoder>,
    name: String,
    /// PARAMCROP.IMAGE_PERIOD.
    image_period: u64,
    /// The last step's first source clip `(3, T, H, W)` and its two cubes, on the CPU.
    last_views: RefCell<Option<(Tensor, Vec<Cube>)>>,
}

fn config_error(key: &'static str, message: impl Into<String>) -> TrainError {
    TrainError::Config {
        key,
        message: message.into(),
    }
}

impl ContrastiveTask {
    /// Builds the task's own variables (parameter net, key encoder, queue) in `session`'s
    /// VarStore, next to the model.
    pub fn new(session: &Session, cfg: &Config) -> Result<Self, TrainError> {
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
        let c = &cfg.pretrain.contrastive;
        let p = &cfg.pretrain.paramcrop;
        if cfg.train.batch_size < 2 && c.framework == ContrastiveFramework::Simclr {
            return Err(config_error(
                "TRAIN.BATCH_SIZE",
                "must be at least 2: SimCLR's negatives are the other videos of the batch",
            ));
        }
        let root = session.vs.root();
        let bounds = paramcrop_config(cfg);
        let adversary = p.enable.then(|| Adversary {
            net: ParamNet::new(&(&root / PARAMCROP_PATH), &bounds),
            schedule: p.grl_schedule,
            lambda_max: p.grl_lambda,
            gamma: p.grl_gamma,
            start_epoch: p.start_epoch as f64,
            key_grad: p.key_grad,
        });
        let key = match c.framework {
            ContrastiveFramework::Simclr => None,
            ContrastiveFramework::Moco => Some(key_encoder(session, cfg)?),
        };
        let d = &cfg.data;
        let views = ViewConfig {
            out: [
                d.num_input_frames as i64,
                d.train_crop_size as i64,
                d.train_crop_size as i64,
            ],
            flip: c.view_flip,
            color: color_config(&cfg.augmentation),
            mean: triple(&d.mean),
            std: triple(&d.std),
        };
        let name = format!(
            "{}{}",
            match c.framework {
                ContrastiveFramework::Simclr => "simclr",
                ContrastiveFramework::Moco => "moco",
            },
            if p.enable { "+paramcrop" } else { "" }
        );
        Ok(Self {
            framework: c.framework,
            temperature: c.temperature,
            bounds,
            adversary,
            views,
            key,
            name,
            image_period: p.image_period,
            last_views: RefCell::new(None),
        })
    }

    /// The affine matrices of both views, with the reversal applied to learned ones, and the
    /// overlap metrics of the cubes.
    fn thetas(
        &self,
        b: i64,
        source: [i64; 3],
        ctx: &StepContext,
        rng: &mut ChaCha8Rng,
        device: Device,
    ) -> (Vec<Tensor>, Vec<Cube>, Vec<(String, f64)>) {
        let learned = self
            .adversary
            .as_ref()
            .filter(|a| ctx.epoch >= a.start_epoch);
        let (cubes, lambda) = match learned {
            Some(a) => {
                let raw = a.net.forward(&a.net.noise(b, rng, device));
                let lambda = grl_lambda(a.schedule, a.lambda_max, a.gamma, ctx.progress());
                (a.net.cubes(&raw, source), Some(lambda))
            }
            None => {
                let raw = self.bounds.uniform_raw(b, rng, device);
                (self.bounds.cubes(&raw, source), None)
            }
        };
        let mut metrics = overlap_metrics(&cubes[0], &cubes[1]);
        let thetas = cubes
            .iter()
            .map(|c| match lambda {
                Some(l) => gradient_reversal(&c.theta(), l),
                None => c.theta(),
            })
            .collect();
        if let Some(l) = lambda {
            metrics.push(("grl_lambda".into(), l));
        }
        (thetas, cubes, metrics)
    }
}

/// A copy of the model under [`KEY_ENCODER_PATH`], with its parameters frozen to autograd and
/// equal to the query encoder's, and the queue of random unit keys MoCo starts from.
fn key_encoder(session: &Session, cfg: &Config) -> Result<KeyEncoder, TrainError> {
    let root = session.vs.root();
    let encoder = VideoModel::new(&(&root / KEY_ENCODER_PATH), cfg)?;
    let vars = session.vs.variables();
    let prefix = format!("{KEY_ENCODER_PATH}.");
    let mut pairs = Vec::new();
    tch::no_grad(|| -> Result<(), TrainError> {
        for (name, k) in &vars {
            let Some(q_name) = name.strip_prefix(&prefix) else {
                continue;
            };
            let q = vars.get(q_name).ok_or_else(|| {
                TrainError::Task(format!("key encoder variable {name} has no query twin"))
            })?;
            let mut k = k.shallow_clone();
            k.copy_(q);
            if q.requires_grad() {
                k = k.set_requires_grad(false);
                pairs.push((k, q.shallow_clone()));
            } else {
                // Buffers (BN statistics) are copied once and then follow the key encoder's own
                // forward passes.
                let _ = k.set_requires_grad(false);
            }
        }
        Ok(())
    })?;
    let c = &cfg.pretrain.contrastive;
    let dim = c.head_out_dim as i64;
    let store = &root / "contrastive";
    let queue = store.var("queue", &[c.queue_size as i64, dim], Init::Const(0.0));
    let ptr = store.var("queue_ptr", &[1], Init::Const(0.0));
    tch::no_grad(|| {
        let q = Tensor::randn([c.queue_size as i64, dim], (Kind::Float, session.device));
        let norm = q.norm_scalaropt_dim(2, [1i64].as_slice(), true);
        queue.shallow_clone().copy_(&(q / norm));
    });
    let queue = queue.set_requires_grad(false);
    let ptr = ptr.set_requires_grad(false);
    Ok(KeyEncoder {
        encoder,
        pairs,
        momentum: c.momentum,
        queue,
        ptr,
        pending: RefCell::new(None),
    })
}

/// The embedding a contrastive model predicts.
fn embedding(model: &VideoModel, xs: &Tensor) -> Result<Tensor, TrainError> {
    let out = model.forward_t(xs, true);
    out.predictions
        .single()
        .map(Tensor::shallow_clone)
        .ok_or_else(|| TrainError::Task("the contrastive head must give one embedding".into()))
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

    fn step(
        &self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        ctx: &StepContext,
    ) -> Result<TaskLoss, TrainError> {
        let x = batch.inputs.to_device(device).to_kind(Kind::Float);
        let s = x.size();
        if s.len() != 5 {
            return Err(TrainError::Task(format!(
                "contrastive pretraining takes (B, C, T, H, W) source clips, got {s:?}"
            )));
        }
        let b = s[0];
        let mut rng = ChaCha8Rng::seed_from_u64(step_rng_seed());
        let (thetas, cubes, mut metrics) =
            self.thetas(b, [s[2], s[3], s[4]], ctx, &mut rng, device);
        if self.image_period > 0 {
            let first = |t: &Tensor| t.narrow(0, 0, 1).detach().to_device(Device::Cpu);
            let cubes = cubes
                .iter()
                .map(|c| Cube {
                    scale: first(&c.scale),
                    centre: first(&c.centre),
                })
                .collect();
            *self.last_views.borrow_mut() = Some((first(&x).squeeze_dim(0), cubes));
        }
        let crop = |t: &Tensor, rng: &mut ChaCha8Rng| {
            cut_view(&x, t, &self.views, rng).map_err(|e| TrainError::Task(e.to_string()))
        };
        let v1 = crop(&thetas[0], &mut rng)?;
        let v2 = crop(&thetas[1], &mut rng)?;
        let Contrast { loss, accuracy } = match (self.framework, &self.key) {
            (ContrastiveFramework::Moco, Some(key)) => {
                let q = embedding(model, &v1)?;
                // With ParamCrop the key view's crop must get gradients too, so the key branch
                // runs outside no_grad (its weights are frozen to autograd, not its input).
                let key_grad = self.adversary.as_ref().is_some_and(|a| a.key_grad);
                let k = if key_grad {
                    embedding(&key.encoder, &v2)?
                } else {
                    tch::no_grad(|| embedding(&key.encoder, &v2.detach()))?
                };
                let c = moco_info_nce(&q, &k, &key.queue, self.temperature);
                *key.pending.borrow_mut() = Some(k.detach());
                c
            }
            _ => {
                // One pass over both views: BN statistics come from all 2B clips.
                let z = embedding(model, &Tensor::cat(&[&v1, &v2], 0))?;
                nt_xent(&z.narrow(0, 0, b), &z.narrow(0, b, b), self.temperature)
            }
        };
        metrics.insert(0, ("acc".into(), accuracy));
        Ok(TaskLoss { loss, metrics })
    }

    fn images(&self, step: u64) -> Vec<(String, image::RgbImage)> {
        if self.image_period == 0 || step % self.image_period != 0 {
            return Vec::new();
        }
        let Some((clip, cubes)) = self.last_views.borrow_mut().take() else {
            return Vec::new();
        };
        let s = clip.size();
        // The source is in [0, 1]: no normalisation to undo.
        let Ok(mut frames) = clip_frames(&clip, [0.0; 3], [1.0; 3]) else {
            return Vec::new();
        };
        draw_views(&mut frames, &cubes, 0, [s[1], s[2], s[3]]);
        strip(&frames)
            .map(|img| vec![("paramcrop/views".to_string(), img)])
            .unwrap_or_default()
    }

    fn after_step(&self) -> Result<(), TrainError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let m = key.momentum;
        tch::no_grad(|| {
            for (k, q) in &key.pairs {
                let mut k = k.shallow_clone();
                let _ = k.g_mul_scalar_(m).g_add_(&(q * (1.0 - m)));
            }
            if let Some(keys) = key.pending.borrow_mut().take() {
                let rows = key.queue.size()[0];
                let start = key.ptr.double_value(&[0]) as i64;
                let n = keys.size()[0];
                // Ring buffer: rows start, start+1, … modulo the queue length.
                let idx = (Tensor::arange(n, (Kind::Int64, keys.device())) + start).remainder(rows);
                let _ =
                    key.queue
                        .shallow_clone()
                        .index_copy_(0, &idx, &keys.to_kind(key.queue.kind()));
                let _ = key.ptr.shallow_clone().fill_(((start + n) % rows) as f64);
            }
        });
        Ok(())
    }
}
