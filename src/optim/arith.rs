//! Tensor arithmetic the update rules share, written the way PyTorch's kernels compute it.

use tch::Tensor;

/// `a + s·b`, exact when `s` is 1 (PyTorch's alpha = 1 adds plainly too).
pub(super) fn add_scaled(a: &Tensor, b: &Tensor, s: f64) -> Tensor {
    if s == 1.0 {
        a + b
    } else {
        a + b * s
    }
}
