//! The optimiser: parameter groups with per-parameter state, stepped in place.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use tch::{COptimizer, Tensor};

use super::hyper::Hyper;
use super::state::ParamState;
use super::{adam, clip, sgd, OptimError, ParamGroup};
use crate::config::schema::{OptimMethod, OptimizerConfig};

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
    /// The optimiser of OPTIMIZER over `groups` (see [`super::build_groups`] and the task's own
    /// groups), with the learning rate at `base_lr` until the schedule sets it. `all_params` are
    /// every trainable variable of the model, see [`Optimizer::from_groups`].
    pub fn new(
        o: &OptimizerConfig,
        groups: Vec<ParamGroup>,
        all_params: &[(String, Tensor)],
        base_lr: f64,
    ) -> Result<Self, OptimError> {
        Self::from_groups(o.optim_method, Hyper::new(o), groups, all_params, base_lr)
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
