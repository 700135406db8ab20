//! SGD (PyTorch's `torch.optim.SGD`) and the reference's LARS, which shares SGD's momentum rule.
//!
//! Called under `no_grad`; every update is in place on the parameter. PyTorch's `a.add(b,
//! alpha=s)` is written `a + b·s` here (tch does not expose `alpha`); PyTorch's vectorised CPU and
//! CUDA kernels fuse that into one multiply-add, so values can differ from PyTorch in the last
//! bit of float32, never in the rule.

use tch::Tensor;

use super::arith::add_scaled;
use super::hyper::Hyper;
use super::state::ParamState;

/// The momentum stage of SGD and LARS applied to the step direction `d`: the buffer starts as a
/// copy of the first `d`, then `buf ← m·buf + (1 − dampening)·d`; the result is `d + m·buf`
/// with Nesterov, else `buf`. Momentum 0 keeps no buffer.
fn momentum(d: Tensor, state: &mut ParamState, h: &Hyper) -> Tensor {
    if h.momentum == 0.0 {
        return d;
    }
    let buf = match state {
        ParamState::Momentum(buf) => {
            *buf *= h.momentum;
            if h.dampening == 0.0 {
                *buf += &d;
            } else {
                *buf += &d * (1.0 - h.dampening);
            }
            buf.shallow_clone()
        }
        _ => {
            let buf = d.detach().copy();
            *state = ParamState::Momentum(buf.shallow_clone());
            buf
        }
    };
    if h.nesterov {
        add_scaled(&d, &buf, h.momentum)
    } else {
        buf
    }
}

/// One SGD step: `g ← g + wd·p`, momentum, `p ← p − lr·step`.
pub(super) fn sgd_step(
    p: &mut Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
    wd: f64,
    h: &Hyper,
) {
    let g = if wd != 0.0 {
        add_scaled(grad, p, wd)
    } else {
        grad.shallow_clone()
    };
    let d = momentum(g, state, h);
    *p += d * (-lr);
}

/// One LARS step (docs/training.md#optimisers): trust ratio `r = η‖p‖ / (‖g‖ + wd‖p‖)`,
/// `d = (g + wd·p)·r·lr`, momentum on `d`, `p ← p − d`.
///
/// The norms are read back as numbers, as the reference does (`.item()`). Where the denominator
/// is 0 the reference divides by zero and stops; that happens only when `g = 0` and `wd·p = 0`,
/// where `d = 0` whatever `r` is, so `r = 0` is used.
pub(super) fn lars_step(
    p: &mut Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
    wd: f64,
    h: &Hyper,
) {
    let p_norm = p.norm().double_value(&[]);
    let g_norm = grad.norm().double_value(&[]);
    let denom = g_norm + wd * p_norm;
    let trust = if denom > 0.0 {
        h.lars_eta * p_norm / denom
    } else {
        0.0
    };
    let g = if wd != 0.0 {
        add_scaled(grad, p, wd)
    } else {
        grad.shallow_clone()
    };
    let d = momentum(g * (trust * lr), state, h);
    *p -= d;
}
