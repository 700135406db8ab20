//! Gradient clipping by global norm (OPTIMIZER.CLIP_GRAD_NORM, a tada addition: the reference
//! never clips), computed as `torch.nn.utils.clip_grad_norm_` does.

use std::borrow::Borrow;

use tch::Tensor;

use super::OptimError;
use crate::config::schema::OptimizerConfig;

/// The clipping threshold of the config: `None` when CLIP_GRAD_NORM is 0 (off).
pub fn clip_threshold(o: &OptimizerConfig) -> Option<f64> {
    (o.clip_grad_norm > 0.0).then_some(o.clip_grad_norm)
}

/// Scales the gradients of `params` in place so that their global L2 norm is at most
/// `max_norm`, and returns the norm before clipping. Parameters without a gradient are ignored
/// (no gradient at all gives 0).
///
/// As PyTorch: total = ‖(‖g_1‖, …, ‖g_n‖)‖, every gradient × min(1, max_norm / (total + 1e-6)),
/// without a branch on the device. A NaN or infinite norm is returned as
/// [`OptimError::NonFiniteGradNorm`] with the gradients untouched; the caller should stop.
pub fn clip_grad_norm<T: Borrow<Tensor>>(params: &[T], max_norm: f64) -> Result<f64, OptimError> {
    if max_norm.is_nan() || max_norm <= 0.0 {
        return Err(OptimError::invalid(
            "OPTIMIZER.CLIP_GRAD_NORM",
            format!("clipping to {max_norm}: the threshold must be positive"),
        ));
    }
    let grads: Vec<Tensor> = params
        .iter()
        .map(|p| p.borrow().grad())
        .filter(Tensor::defined)
        .collect();
    let Some(first) = grads.first() else {
        return Ok(0.0);
    };
    let device = first.device();
    tch::no_grad(|| {
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm().to_device(device)).collect();
        let total = Tensor::stack(&norms, 0).norm();
        let value = total.double_value(&[]);
        if !value.is_finite() {
            return Err(OptimError::NonFiniteGradNorm(value));
        }
        // `max_norm / t` on a tensor is `t.reciprocal() * max_norm` in PyTorch.
        let coef = ((total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
        for g in &grads {
            let mut g = g.shallow_clone();
            g *= coef.to_device(g.device());
        }
        Ok(value)
    })
}
