//! Parameter groups (docs/training.md#parameter-groups): which parameters are optimised, with which
//! weight decay and learning-rate multiplier, decided by substring tests on the parameter's full
//! name.

use tch::nn::VarStore;
use tch::Tensor;

use super::{layerwise, OptimError};
use crate::config::schema::{BnConfig, Depth, OptimMethod, OptimizerConfig};

/// What decides the model's parameter groups: OPTIMIZER, BN's decay and lock, and the run's
/// kind. Built from those sections by the run (`runs::group_rules`).
#[derive(Debug, Clone, Copy)]
pub struct GroupRules<'a> {
    pub optimizer: &'a OptimizerConfig,
    pub bn: &'a BnConfig,
    /// TRAIN.ONLY_LINEAR: only the head is optimised.
    pub only_linear: bool,
    /// TRAIN.LR_REDUCE of a fine-tuning run (the reference applies it to fine-tuning only).
    pub lr_reduce: bool,
    /// VIDEO.BACKBONE.DEPTH, which numbers the layers of the layer-wise decay.
    pub depth: Option<&'a Depth>,
}

/// Parameters sharing one weight decay and one learning-rate multiplier.
#[derive(Debug)]
pub struct ParamGroup {
    /// What the group holds (`norm`, `weights`, `head_bias`, `layer_3_decay`, …); for logs.
    pub name: String,
    pub weight_decay: f64,
    /// The group's learning rate is the scheduled rate times this.
    pub lr_mult: f64,
    /// `(full parameter name, parameter)`.
    pub params: Vec<(String, Tensor)>,
    /// An update rule of its own instead of OPTIMIZER.OPTIM_METHOD (ParamCrop's net).
    pub method: Option<OptimMethod>,
}

impl ParamGroup {
    /// A group without parameters yet, stepped by OPTIMIZER.OPTIM_METHOD.
    pub fn empty(name: &str, weight_decay: f64, lr_mult: f64) -> Self {
        Self {
            name: name.into(),
            weight_decay,
            lr_mult,
            params: Vec::new(),
            method: None,
        }
    }
}

/// The parameters of `vs` that require gradients (the reference's `named_parameters()` with
/// `requires_grad`; BatchNorm running statistics are buffers and excluded), sorted by name so
/// that groups and exported state do not depend on hash order.
pub fn trainable_parameters(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut params: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

/// Splits `params` into the optimiser's groups as the reference's `construct_optimizer` does:
/// ONLY_LINEAR (docs/training.md#linear-probe-group), else the layer-wise branch when
/// LAYER_WISE_LR_DECAY < 1 (docs/training.md#layer-wise-decay-groups), else the default substring
/// rules (docs/training.md#default-groups). Parameters not in any group are not optimised. A task's
/// own parameters (ParamCrop's net) are not passed here: the task declares their group itself.
pub fn build_groups(
    params: &[(String, Tensor)],
    rules: &GroupRules,
) -> Result<Vec<ParamGroup>, OptimError> {
    let o = rules.optimizer;
    if rules.only_linear {
        let mut g = ParamGroup::empty("head", o.weight_decay, 1.0);
        g.params = params
            .iter()
            .filter(|(n, _)| n.contains("head"))
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        return Ok(vec![g]);
    }
    if o.layer_wise_lr_decay < 1.0 {
        return layerwise::layer_wise_groups(params, o, rules.depth);
    }
    Ok(default_groups(params, rules))
}

/// The default branch's groups, in the order the reference passes them to the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultGroup {
    Norm,
    RoutingBn,
    Routing,
    RoutingBias,
    Weights,
    Bias,
    Head,
    HeadBias,
    NoDecay,
}

impl DefaultGroup {
    const ORDER: [DefaultGroup; 9] = [
        Self::Norm,
        Self::RoutingBn,
        Self::Routing,
        Self::RoutingBias,
        Self::Weights,
        Self::Bias,
        Self::Head,
        Self::HeadBias,
        Self::NoDecay,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Norm => "norm",
            Self::RoutingBn => "routing_bn",
            Self::Routing => "routing",
            Self::RoutingBias => "routing_bias",
            Self::Weights => "weights",
            Self::Bias => "bias",
            Self::Head => "head",
            Self::HeadBias => "head_bias",
            Self::NoDecay => "no_decay",
        }
    }

    /// The table of docs/training.md#default-groups, first match wins. Substrings, not path
    /// components: `b_bias.weight` is a "bias" and `downsample_layers.0.1.weight` (a LayerNorm) is
    /// a decayed "weight", as in the reference.
    pub(crate) fn classify(name: &str) -> Self {
        let has = |s: &str| name.contains(s);
        if has("rf") {
            if has("bn") {
                Self::RoutingBn
            } else if has("bias") {
                Self::RoutingBias
            } else {
                Self::Routing
            }
        } else if has("embd") || has("cls_token") {
            Self::NoDecay
        } else if has("bn") || has("norm") {
            Self::Norm
        } else if has("head") {
            if has("bias") {
                Self::HeadBias
            } else {
                Self::Head
            }
        } else if has("bias") {
            Self::Bias
        } else {
            Self::Weights
        }
    }
}

fn default_groups(params: &[(String, Tensor)], rules: &GroupRules) -> Vec<ParamGroup> {
    let (o, bn) = (rules.optimizer, rules.bn);
    // The reference's LR_REDUCE multipliers apply to fine-tuning only; NEW_PARAMS and
    // HEAD_LRMULT are ignored in this branch (docs/training.md#default-groups).
    let reduce = rules.lr_reduce;
    let bias_mult = if o.bias_double { 2.0 } else { 1.0 };
    let (weight_mult, special_bias_mult) = if reduce {
        (5.0, 10.0)
    } else {
        (1.0, bias_mult)
    };
    let settings = |g: DefaultGroup| match g {
        DefaultGroup::Norm | DefaultGroup::RoutingBn => (bn.weight_decay, 1.0),
        DefaultGroup::Routing | DefaultGroup::Head => (o.weight_decay, weight_mult),
        DefaultGroup::RoutingBias | DefaultGroup::HeadBias => (0.0, special_bias_mult),
        DefaultGroup::Weights => (o.weight_decay, 1.0),
        DefaultGroup::Bias => (0.0, bias_mult),
        DefaultGroup::NoDecay => (0.0, 1.0),
    };
    let mut groups: Vec<(DefaultGroup, ParamGroup)> = DefaultGroup::ORDER
        .iter()
        .map(|&g| {
            let (wd, mult) = settings(g);
            (g, ParamGroup::empty(g.name(), wd, mult))
        })
        .collect();
    for (name, t) in params {
        let g = DefaultGroup::classify(name);
        if let Some((_, group)) = groups.iter_mut().find(|(k, _)| *k == g) {
            group.params.push((name.clone(), t.shallow_clone()));
        }
    }
    // BN.WB_LOCK: norm parameters keep their values (they still get gradients).
    groups
        .into_iter()
        .filter(|(g, _)| !(bn.wb_lock && matches!(g, DefaultGroup::Norm | DefaultGroup::RoutingBn)))
        .map(|(_, group)| group)
        .collect()
}
