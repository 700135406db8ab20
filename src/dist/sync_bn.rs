//! SyncBatchNorm (BN.SYNC): in training, BatchNorm's batch statistics are taken over the
//! samples of every rank, as PyTorch's `nn.SyncBatchNorm`, so a per-rank batch of B/W normalises
//! like the whole batch B of one process.
//!
//! One all-reduce of (Σx, Σx², n) per channel, differentiable ([`super::ProcessGroup::
//! all_reduce_grad`]): its backward all-reduces the statistics' gradients, which is the
//! `batch_norm_backward_reduce` + all-reduce + `batch_norm_backward_elemt` of PyTorch's CUDA
//! kernels written as autograd ops. It runs on the CPU (those ATen kernels are CUDA-only) and on
//! CUDA alike.

use std::sync::atomic::{AtomicBool, Ordering};

use tch::nn::{BatchNorm, ModuleT};
use tch::{Kind, Tensor};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns synchronised statistics on for every BatchNorm forward that goes through [`forward`]
/// in this process (a distributed run with BN.SYNC).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::SeqCst);
}

/// Whether [`forward`] synchronises (BN.SYNC in a run of more than one rank).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst) && super::world().is_some()
}

/// `bn` on `xs`; in training with SyncBatchNorm on, with the statistics of every rank's batch.
/// `eps` and `momentum` are the layer's (tch keeps them private).
///
/// # Shapes
/// (N, C, ...) -> (N, C, ...).
pub fn forward(bn: &BatchNorm, xs: &Tensor, train: bool, eps: f64, momentum: f64) -> Tensor {
    let world = match super::world() {
        Some(w) if train && ENABLED.load(Ordering::SeqCst) => w,
        _ => return bn.forward_t(xs, train),
    };
    let c = xs.size()[1];
    // Per-channel sums over every axis but the channels.
    let dims: Vec<i64> = (0..xs.dim() as i64).filter(|&d| d != 1).collect();
    let x = xs.to_kind(Kind::Float);
    let n_local = (xs.numel() as i64 / c.max(1)) as f64;
    let local = Tensor::cat(
        &[
            x.sum_dim_intlist(dims.as_slice(), false, Kind::Float),
            x.square()
                .sum_dim_intlist(dims.as_slice(), false, Kind::Float),
            Tensor::full([1], n_local, (Kind::Float, xs.device())),
        ],
        0,
    );
    let stats = match world.group.all_reduce_grad(&local) {
        Ok(s) => s,
        // A collective that fails here fails the step (caught by the step guard) with the
        // peer the watchdog lost.
        Err(e) => panic!("SyncBatchNorm statistics: {}", world.explain(e)),
    };
    // (2C + 1) -> Σx (C), Σx² (C), n (1).
    let sum = stats.narrow(0, 0, c);
    let sq = stats.narrow(0, c, c);
    let n = stats.narrow(0, 2 * c, 1);
    let mean = &sum / &n;
    let var = (&sq / &n - mean.square()).clamp_min(0.0);
    tch::no_grad(|| {
        // Running statistics as nn.SyncBatchNorm updates them: the unbiased variance.
        let count = n.double_value(&[0]);
        let unbiased = &var * (count / (count - 1.0).max(1.0));
        let rm = bn.running_mean.shallow_clone();
        let rv = bn.running_var.shallow_clone();
        rm.shallow_clone()
            .copy_(&(&rm * (1.0 - momentum) + &mean * momentum));
        rv.shallow_clone()
            .copy_(&(&rv * (1.0 - momentum) + unbiased * momentum));
    });
    // (C) -> (1, C, 1, ..., 1): broadcast over the batch and every axis after the channels.
    let mut shape = vec![1i64, -1];
    shape.resize(xs.dim(), 1);
    let inv = (var + eps).rsqrt().view(shape.as_slice());
    let mut y = (&x - mean.view(shape.as_slice())) * inv;
    if let Some(w) = &bn.ws {
        y *= w.view(shape.as_slice());
    }
    if let Some(b) = &bn.bs {
        y += b.view(shape.as_slice());
    }
    y.to_kind(xs.kind())
}
