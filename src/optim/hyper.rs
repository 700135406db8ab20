//! The update rules' shared hyper-parameters, apart from the optimiser that holds them so that
//! the rules (sgd.rs, adam.rs) and the optimiser depend on this module, not on each other.

use super::OptimError;
use crate::config::schema::{OptimMethod, OptimizerConfig};

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
    pub fn new(o: &OptimizerConfig) -> Result<Self, OptimError> {
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
