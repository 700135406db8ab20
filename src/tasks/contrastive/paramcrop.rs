//! ParamCrop, the adversarial side of contrastive pretraining: a parameter net draws the two
//! views' cubes and learns, through a gradient-reversal layer, to make them harder
//! (docs/paramcrop.md). Without it the cubes are drawn uniformly within the same bounds.

use rand_chacha::ChaCha8Rng;
use tada_augment::paramcrop::{gradient_reversal, Cube, ParamCropConfig, ParamNet};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::views::{grl_lambda, overlap_metrics};
use crate::config::schema::{GrlSchedule, ParamCropSection};
use crate::optim::{trainable_parameters, ParamGroup};
use crate::tasks::StepContext;

/// Variable path of the parameter net (`paramcrop.fc1.weight`, …), as `tada crops` reads it.
pub const PARAMCROP_PATH: &str = "paramcrop";

/// The net's settings from PRETRAIN.PARAMCROP.
pub fn paramcrop_config(p: &ParamCropSection) -> ParamCropConfig {
    let pair = |v: &[f64]| [v[0], v[1]];
    ParamCropConfig {
        noise_dim: p.noise_dim as i64,
        hidden: p.hidden_dim as i64,
        views: 2,
        spatial_scale: pair(&p.spatial_scale),
        temporal_scale: pair(&p.temporal_scale),
        aspect: pair(&p.aspect),
        square: p.square,
    }
}

/// The parameter net and its gradient-reversal settings.
pub(super) struct Adversary {
    net: ParamNet,
    /// The net's trainable variables, sorted by full name (`paramcrop.…`).
    params: Vec<(String, Tensor)>,
    schedule: GrlSchedule,
    lambda_max: f64,
    gamma: f64,
    start_epoch: f64,
    /// PRETRAIN.PARAMCROP.KEY_GRAD: MoCo's key view's crop gets gradients too.
    pub key_grad: bool,
    lr: f64,
    optim_method: crate::config::schema::OptimMethod,
}

impl Adversary {
    /// Builds the net in `vs` under [`PARAMCROP_PATH`], beside the model.
    pub fn new(vs: &VarStore, p: &ParamCropSection, bounds: &ParamCropConfig) -> Self {
        let net = ParamNet::new(&(vs.root() / PARAMCROP_PATH), bounds);
        let prefix = format!("{PARAMCROP_PATH}.");
        let params = trainable_parameters(vs)
            .into_iter()
            .filter(|(n, _)| n.starts_with(&prefix))
            .collect();
        Self {
            net,
            params,
            schedule: p.grl_schedule,
            lambda_max: p.grl_lambda,
            gamma: p.grl_gamma,
            start_epoch: p.start_epoch as f64,
            key_grad: p.key_grad,
            lr: p.lr,
            optim_method: p.optim_method,
        }
    }

    /// The net's optimiser group (docs/paramcrop.md): no weight decay, PRETRAIN.PARAMCROP.LR
    /// (as a multiple of the run's `base_lr`, > 0 since BASE_LR and the batch are validated)
    /// and OPTIM_METHOD, the run's schedule shape.
    pub fn param_group(&self, base_lr: f64) -> ParamGroup {
        let mut g = ParamGroup::empty(PARAMCROP_PATH, 0.0, self.lr / base_lr);
        g.method = Some(self.optim_method);
        g.params = self
            .params
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        g
    }
}

/// The affine matrices of both views — with the reversal applied when `adversary` is past its
/// start epoch, else uniform draws within `bounds` — with the cubes and their overlap metrics.
pub(super) fn view_thetas(
    adversary: Option<&Adversary>,
    bounds: &ParamCropConfig,
    b: i64,
    source: [i64; 3],
    ctx: &StepContext,
    rng: &mut ChaCha8Rng,
    device: Device,
) -> (Vec<Tensor>, Vec<Cube>, Vec<(String, f64)>) {
    let learned = adversary.filter(|a| ctx.epoch >= a.start_epoch);
    let (cubes, lambda) = match learned {
        Some(a) => {
            let raw = a.net.forward(&a.net.noise(b, rng, device));
            let lambda = grl_lambda(a.schedule, a.lambda_max, a.gamma, ctx.progress());
            (a.net.cubes(&raw, source), Some(lambda))
        }
        None => {
            let raw = bounds.uniform_raw(b, rng, device);
            (bounds.cubes(&raw, source), None)
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
