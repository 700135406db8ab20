//! Gradient reversal: the identity forward, `-lambda` times the gradient backward.

use tch::Tensor;

/// `x.detach() - lambda * (x - x.detach())`: `x - x.detach()` is exactly 0, so the forward value
/// is `x` bit for bit, and the derivative is `-lambda`. tch has no custom autograd functions,
/// so the reversal is built from ops autograd already knows.
pub fn gradient_reversal(x: &Tensor, lambda: f64) -> Tensor {
    let d = x.detach();
    &d - (x - &d) * lambda
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn forward_is_identity_and_gradient_is_reversed() {
        let x = Tensor::randn([4, 3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let y = gradient_reversal(&x, 0.7);
        assert!(
            y.equal(&x.detach()),
            "forward value is the input, bit for bit"
        );
        let g = Tensor::randn([4, 3], (Kind::Float, tch::Device::Cpu));
        (&y * &g).sum(Kind::Float).backward();
        let expected = &g * -0.7;
        assert!((x.grad() - expected).abs().max().double_value(&[]) < 1e-6);
    }
}
