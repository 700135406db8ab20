//! The update rules' shared hyper-parameters, apart from the optimiser that holds them so that
//! the rules (sgd.rs, adam.rs) and the optimiser depend on this module, not on each other.

use crate::config::schema::OptimizerConfig;

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
    /// The values of OPTIMIZER (checked with the config, as `torch.optim` checks them at
    /// construction).
    pub fn new(o: &OptimizerConfig) -> Self {
        Self {
            momentum: o.momentum,
            dampening: o.dampening,
            nesterov: o.nesterov,
            betas: (0.9, 0.999),
            eps: 1e-8,
            lars_eta: 0.001,
        }
    }
}
