//! The optimiser: parameter groups with per-parameter state, stepped in place.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use tch::nn::VarStore;
use tch::{COptimizer, Tensor};

use super::state::ParamState;
use super::{adam, clip, sgd, OptimError, ParamGroup};
use super::{adjusted_base_lr, build_groups, trainable_parameters};
use crate::config::schema::{OptimMethod, OptimizerConfig};
use crate::config::Config;

/// Hyper-parameters shared by all groups (the learning rate and weight decay are per group).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    /// Adam's (β1, β2); the reference hard-codes (0.9, 0.999).
    pub betas: (f64, f64),
    /// Adam's ε; the reference uses PyTorch's default 1e-8.
    pub eps: f64,
    /// LARS coefficient η; the reference uses its class default 0.001.
    pub lars_eta: f64,
}

impl Hyper {
    /// The values of OPTIMIZER, checked as `torch.optim` checks them at construction.
    pub fn from_config(o: &OptimizerConfig) -> Result<Self, OptimError> {
        let sgd_like = matches!(o.optim_method, OptimMethod::Sgd | OptimMethod::Lars);
        if sgd_like && o.momentum < 0.0 {
            return Err(OptimError::invalid(
                "OPTIMIZER.MOMENTUM",
                format!("is {}, must be >= 0", o.momentum),
            ));
        }
        if sgd_like && o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0) {
            return Err(OptimError::invalid(
                "OPTIMIZER.NESTEROV",
                format!(
                    "Nesterov momentum needs MOMENTUM > 0 and DAMPENING 0 (they are {} and {})",
                    o.momentum, o.dampening
                ),
            ));
        }
        Ok(Self {
            momentum: o.momentum,
            dampening: o.dampening,
            nesterov: o.nesterov,
            betas: (0.9, 0.999),
            eps: 1e-8,
            lars_eta: 0.001,
        })
    }
}

#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    state: ParamState,
}

#[derive(Debug)]
struct Group {
    name: String,
    weight_decay: f64,
    lr_mult: f64,
    /// The optimiser's method unless the group has its own.
    method: OptimMethod,
    params: Vec<Param>,
}

/// SGD, Adam, AdamW or LARS over parameter groups. The learning rate is set from outside every
/// iteration ([`Optimizer::set_lr`]); each group uses it times its `lr_mult`.
#[derive(Debug)]
pub struct Optimizer {
    method: OptimMethod,
    hyper: Hyper,
    groups: Vec<Group>,
    lr: f64,
    /// libtorch's own optimiser holding every trainable variable, used only for `zero_grad`:
    /// it resets gradients to undefined (PyTorch's `set_to_none`), which tch cannot do
    /// otherwise. A parameter that then gets no gradient is skipped by `step`, as in PyTorch,
    /// instead of being decayed and pushed by its momentum.
    grad_reset: COptimizer,
}

fn method_name(m: OptimMethod) -> &'static str {
    match m {
        OptimMethod::Sgd => "sgd",
        OptimMethod::Adam => "adam",
        OptimMethod::Adamw => "adamw",
        OptimMethod::Lars => "lars",
    }
}

fn is_adam(m: OptimMethod) -> bool {
    matches!(m, OptimMethod::Adam | OptimMethod::Adamw)
}

impl Optimizer {
    /// The optimiser the reference's `construct_optimizer` builds for the model in `vs`, with
    /// the learning rate at BASE_LR (after ADJUST_LR).
    pub fn new(vs: &VarStore, cfg: &Config) -> Result<Self, OptimError> {
        let o = &cfg.optimizer;
        for (key, wd) in [
            ("OPTIMIZER.WEIGHT_DECAY", o.weight_decay),
            ("BN.WEIGHT_DECAY", cfg.bn.weight_decay),
        ] {
            if wd < 0.0 {
                return Err(OptimError::invalid(key, format!("is {wd}, must be >= 0")));
            }
        }
        let hyper = Hyper::from_config(o)?;
        let params = trainable_parameters(vs);
        let groups = build_groups(&params, cfg)?;
        Self::from_groups(
            o.optim_method,
            hyper,
            groups,
            &params,
            adjusted_base_lr(cfg),
        )
    }

    /// An optimiser over `groups`. `all_params` are every trainable variable of the model (a
    /// superset of the groups' parameters): [`Optimizer::zero_grad`] clears all of them, so
    /// parameters that are not stepped (ONLY_LINEAR, BN.WB_LOCK) do not accumulate gradients.
    pub fn from_groups(
        method: OptimMethod,
        hyper: Hyper,
        groups: Vec<ParamGroup>,
        all_params: &[(String, Tensor)],
        lr: f64,
    ) -> Result<Self, OptimError> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let mut params = Vec::with_capacity(g.params.len());
            for (name, tensor) in g.params {
                if !seen.insert(name.clone()) {
                    return Err(OptimError::state(&name, "is in two parameter groups"));
                }
                params.push(Param {
                    name,
                    tensor,
                    state: ParamState::Fresh,
                });
            }
            out.push(Group {
                name: g.name,
                weight_decay: g.weight_decay,
                lr_mult: g.lr_mult,
                method: g.method.unwrap_or(method),
                params,
            });
        }
        let mut grad_reset = COptimizer::sgd(0.0, 0.0, 0.0, 0.0, false)?;
        for (_, t) in all_params {
            grad_reset.add_parameters(t, 0)?;
        }
        let listed: HashSet<&str> = all_params.iter().map(|(n, _)| n.as_str()).collect();
        for p in out.iter().flat_map(|g| &g.params) {
            if !listed.contains(p.name.as_str()) {
                grad_reset.add_parameters(&p.tensor, 0)?;
            }
        }
        Ok(Self {
            method,
            hyper,
            groups: out,
            lr,
            grad_reset,
        })
    }

    pub fn method(&self) -> OptimMethod {
        self.method
    }

    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// Sets the scheduled learning rate; group `i` steps with `lr · lr_mult_i`.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// `(name, weight decay, lr_mult, number of parameters)` of every group, in order.
    pub fn group_summary(&self) -> Vec<(String, f64, f64, usize)> {
        self.groups
            .iter()
            .map(|g| (g.name.clone(), g.weight_decay, g.lr_mult, g.params.len()))
            .collect()
    }

    /// Names of the parameters this optimiser steps, group by group.
    pub fn param_names(&self) -> Vec<&str> {
        self.groups
            .iter()
            .flat_map(|g| g.params.iter().map(|p| p.name.as_str()))
            .collect()
    }

    /// The parameters this optimiser steps (handles sharing their storage and gradients).
    pub fn params(&self) -> Vec<Tensor> {
        self.groups
            .iter()
            .flat_map(|g| g.params.iter().map(|p| p.tensor.shallow_clone()))
            .collect()
    }

    /// Resets every trainable variable's gradient to undefined.
    pub fn zero_grad(&mut self) -> Result<(), OptimError> {
        Ok(self.grad_reset.zero_grad()?)
    }

    /// Clips the global L2 norm of the stepped parameters' gradients to `max_norm`; see
    /// [`clip::clip_grad_norm`].
    pub fn clip_grad_norm(&self, max_norm: f64) -> Result<f64, OptimError> {
        let params: Vec<&Tensor> = self
            .groups
            .iter()
            .flat_map(|g| g.params.iter().map(|p| &p.tensor))
            .collect();
        clip::clip_grad_norm(&params, max_norm)
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self) {
        let (hyper, lr) = (self.hyper, self.lr);
        tch::no_grad(|| {
            for g in &mut self.groups {
                let (glr, wd, method) = (lr * g.lr_mult, g.weight_decay, g.method);
                for p in &mut g.params {
                    let grad = p.tensor.grad();
                    if !grad.defined() {
                        continue;
                    }
                    let (t, s) = (&mut p.tensor, &mut p.state);
                    match method {
                        OptimMethod::Sgd => sgd::sgd_step(t, &grad, s, glr, wd, &hyper),
                        OptimMethod::Lars => sgd::lars_step(t, &grad, s, glr, wd, &hyper),
                        OptimMethod::Adam => adam::adam_step(t, &grad, s, glr, wd, false, &hyper),
                        OptimMethod::Adamw => adam::adam_step(t, &grad, s, glr, wd, true, &hyper),
                    }
                }
            }
        });
    }

    /// The state as named tensors `<slot>.<param>` (copies; parameters never stepped have none).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for g in &self.groups {
            for p in &g.params {
                for (slot, t) in p.state.export() {
                    out.push((format!("{slot}.{}", p.name), t));
                }
            }
        }
        out
    }

    /// What is not a tensor: the method (checked on load) and, for the record, the groups and
    /// the current learning rate.
    pub fn state_meta(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                json!({"name": g.name, "weight_decay": g.weight_decay,
                       "lr_mult": g.lr_mult, "method": method_name(g.method),
                       "params": g.params.len()})
            })
            .collect();
        json!({"method": method_name(self.method), "lr": self.lr, "groups": groups})
    }

    /// Restores state written by [`Optimizer::state_tensors`] / [`Optimizer::state_meta`], so
    /// the next step is the one the saved run would have taken. Every tensor must belong to a
    /// parameter this optimiser steps; parameters without entries start fresh.
    pub fn load_state(
        &mut self,
        tensors: &[(String, Tensor)],
        meta: &Value,
    ) -> Result<(), OptimError> {
        let saved = meta.get("method").and_then(Value::as_str).unwrap_or("?");
        if saved != method_name(self.method) {
            return Err(OptimError::invalid(
                "OPTIMIZER.OPTIM_METHOD",
                format!(
                    "is {}, but the checkpoint's optimiser state is {saved}'s (train with \
                     TRAIN.FINE_TUNE to start a fresh optimiser)",
                    method_name(self.method)
                ),
            ));
        }
        let mut by_param: BTreeMap<&str, Vec<(&str, &Tensor)>> = BTreeMap::new();
        for (key, t) in tensors {
            let (slot, param) = key
                .split_once('.')
                .ok_or_else(|| OptimError::state(key, "is not named <slot>.<parameter>"))?;
            by_param.entry(param).or_default().push((slot, t));
        }
        let names: HashSet<&str> = self.param_names().into_iter().collect();
        if let Some(unknown) = by_param.keys().find(|k| !names.contains(*k)) {
            return Err(OptimError::state(
                unknown,
                "is not a parameter this optimiser steps (model or parameter groups changed?)",
            ));
        }
        let mut restored = Vec::new();
        for g in &self.groups {
            let adam = is_adam(g.method);
            for p in &g.params {
                let slots = by_param.get(p.name.as_str()).map_or(&[][..], |v| &v[..]);
                restored.push(ParamState::import(&p.name, &p.tensor, adam, slots)?);
            }
        }
        let mut restored = restored.into_iter();
        for g in &mut self.groups {
            for p in &mut g.params {
                if let Some(s) = restored.next() {
                    p.state = s;
                }
            }
        }
        Ok(())
    }
}
