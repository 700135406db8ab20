//! SyncBatchNorm (BN.SYNC): in training, BatchNorm's batch statistics are taken over the
//! samples of every rank, as PyTorch's `nn.SyncBatchNorm`, so a per-rank batch of B/W normalises
//! like the whole batch B of one process.
//!
//! One all-gather of every rank's (mean, Σ(x − mean)², n) per channel, differentiable
//! ([`super::ProcessGroup::all_gather_grad`]), combined as PyTorch's
//! `batch_norm_gather_stats_with_counts` does: its backward sums the statistics' gradients over
//! the ranks, which is the `batch_norm_backward_reduce` + all-reduce +
//! `batch_norm_backward_elemt` of PyTorch's CUDA kernels written as autograd ops. It runs on the
//! CPU (those ATen kernels are CUDA-only) and on CUDA alike.

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
    let x = xs.to_kind(Kind::Float);
    let (mean, var, n) = statistics(&x, |local| match world.group.all_gather_grad(local) {
        Ok(rows) => rows,
        // A collective that fails here fails the step (caught by the step guard) with the
        // peer the watchdog lost.
        Err(e) => panic!("SyncBatchNorm statistics: {}", world.explain(e)),
    });
    tch::no_grad(|| {
        // Running statistics as nn.SyncBatchNorm updates them: the unbiased variance. Kept as
        // tensor ops: reading the count back would wait for the device at every layer.
        let unbiased = &var * (&n / (&n - 1.0).clamp_min(1.0));
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

/// The per-channel mean and biased variance of `x` over every rank's batch, and the number of
/// values per channel, from `gather`, a differentiable all-gather of (1, R) rows into (W, R).
///
/// Each rank contributes its mean and sum of squared deviations, combined with Chan et al.'s
/// pairwise formula, as PyTorch's SyncBatchNorm gathers per-rank means and variances: the
/// one-pass E[x²] − E[x]² of all-reduced sums loses every digit of a channel whose mean is large
/// against its spread, and training then drifts away from the one-process run.
///
/// # Shapes
/// x (N, C, ...) -> mean (C), var (C), n (1).
pub(crate) fn statistics(
    x: &Tensor,
    gather: impl FnOnce(&Tensor) -> Tensor,
) -> (Tensor, Tensor, Tensor) {
    let c = x.size()[1];
    let dims: Vec<i64> = (0..x.dim() as i64).filter(|&d| d != 1).collect();
    let n_local = (x.numel() as i64 / c.max(1)) as f64;
    let local = Tensor::cat(
        &[
            x.mean_dim(dims.as_slice(), false, Kind::Float),
            x.var_dim(dims.as_slice(), false, false) * n_local,
            Tensor::full([1], n_local, (Kind::Float, x.device())),
        ],
        0,
    );
    // (2C + 1) -> (1, 2C + 1) -> (W, 2C + 1): every rank's row.
    let rows = gather(&local.unsqueeze(0));
    // (W, 2C + 1) -> means (W, C), M2 (W, C), counts (W, 1).
    let means = rows.narrow(1, 0, c);
    let m2s = rows.narrow(1, c, c);
    let counts = rows.narrow(1, 2 * c, 1);
    let over_ranks = |t: Tensor| t.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
    let n = over_ranks(counts.shallow_clone());
    let mean = over_ranks(&means * &counts) / &n;
    let spread = (&means - mean.unsqueeze(0)).square() * &counts;
    let var = over_ranks(m2s + spread) / &n;
    (mean, var, n)
}
