//! Adam and AdamW as PyTorch computes them (`torch.optim.Adam` / `AdamW`, no amsgrad), with the
//! same order of tensor operations. Called under `no_grad`; updates are in place.

use tch::Tensor;

use super::arith::add_scaled;
use super::hyper::Hyper;
use super::state::ParamState;

/// One Adam step. `decoupled` selects AdamW's decay (`p ← p·(1 − lr·wd)` before the update)
/// instead of Adam's L2 term added to the gradient (`g ← g + wd·p`).
pub(super) fn adam_step(
    p: &mut Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
    wd: f64,
    decoupled: bool,
    h: &Hyper,
) {
    if !matches!(state, ParamState::Adam { .. }) {
        *state = ParamState::Adam {
            step: 0,
            exp_avg: p.zeros_like(),
            exp_avg_sq: p.zeros_like(),
        };
    }
    let ParamState::Adam {
        step,
        exp_avg,
        exp_avg_sq,
    } = state
    else {
        unreachable!("state was just made Adam")
    };
    *step += 1;
    let (beta1, beta2) = h.betas;
    let g = if wd == 0.0 {
        grad.shallow_clone()
    } else if decoupled {
        *p *= 1.0 - lr * wd;
        grad.shallow_clone()
    } else {
        add_scaled(grad, p, wd)
    };
    let _ = exp_avg.lerp_(&g, 1.0 - beta1);
    // addcmul_(g, g, value=1−β2) computes self + (value·g)·g.
    *exp_avg_sq *= beta2;
    *exp_avg_sq += (&g * (1.0 - beta2)) * &g;
    // PyTorch keeps the step count in a float32 tensor and reads it back as a float.
    let t = *step as f32 as f64;
    let bias_correction1 = 1.0 - beta1.powf(t);
    let bias_correction2 = 1.0 - beta2.powf(t);
    let step_size = lr / bias_correction1;
    let denom = exp_avg_sq.sqrt() / bias_correction2.powf(0.5) + h.eps;
    // addcdiv_(exp_avg, denom, value=−step_size) computes self + (value·exp_avg)/denom.
    *p += (&*exp_avg * (-step_size)) / denom;
}
