//! Helpers shared by the ops' unit tests.

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

pub fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Per-frame conv2d with one static TAdaConv kernel: what a TAdaConv must equal when every
/// calibration factor is 1. `geometry` is [stride, padding, dilation]; groups follow from the
/// kernel's shape.
pub fn per_frame_conv(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geometry: &[[i64; 2]; 3],
) -> Tensor {
    let s = xs.size();
    let (b, c, t, h, w) = (s[0], s[1], s[2], s[3], s[4]);
    let (c_out, c_in_g) = (weight.size()[2], weight.size()[3]);
    // (B, C, T, H, W) -> (B·T, C, H, W): frames become the batch.
    let frames = xs.permute([0, 2, 1, 3, 4]).reshape([b * t, c, h, w]);
    // (1, 1, C_out, C_in/g, k_h, k_w) -> (C_out, C_in/g, k_h, k_w)
    let w2 = weight.squeeze_dim(0).squeeze_dim(0);
    // (1, 1, C_out) -> (C_out)
    let b2 = bias.map(|b| b.reshape([-1]));
    let [stride, padding, dilation] = *geometry;
    let y = frames.conv2d(&w2, b2.as_ref(), stride, padding, dilation, c / c_in_g);
    let (ho, wo) = (y.size()[2], y.size()[3]);
    // (B·T, C_out, H', W') -> (B, T, C_out, H', W') -> (B, C_out, T, H', W')
    y.view([b, t, c_out, ho, wo]).permute([0, 2, 1, 3, 4])
}

/// Gradient of `name` after the last backward pass; panics (failing the test) when it is
/// undefined, not finite or all zero.
fn check_grad(name: &str, var: &Tensor) {
    let grad = var.grad();
    assert!(grad.defined(), "{name}: no gradient");
    let finite = grad.isfinite().all().int64_value(&[]) == 1;
    assert!(finite, "{name}: gradient is not finite");
    let norm = grad.abs().sum(Kind::Double).double_value(&[]);
    assert!(norm > 0.0, "{name}: gradient is all zero");
}

/// Trains two SGD steps on `loss` and checks that gradients reach every trainable variable.
///
/// Zero-initialised layers (a routing conv `b`, a BN scale of 0, a bias of 0) block the gradient
/// of whatever sits behind them, so only the variables in `first_step` are checked after the
/// first backward pass; after one step every trainable variable must get a defined, finite,
/// non-zero gradient.
pub fn assert_grads_reach_all(vs: &nn::VarStore, first_step: &[&str], loss: impl Fn() -> Tensor) {
    let mut opt = nn::Sgd::default().build(vs, 0.5).expect("optimizer");
    let vars = vs.variables();
    opt.zero_grad();
    loss().backward();
    for name in first_step {
        let var = vars
            .get(*name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        check_grad(name, var);
    }
    opt.step();
    opt.zero_grad();
    loss().backward();
    let mut trainable = 0;
    for (name, var) in &vars {
        if var.requires_grad() {
            trainable += 1;
            check_grad(name, var);
        }
    }
    assert_eq!(trainable, vs.trainable_variables().len());
}
