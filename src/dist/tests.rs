//! Two ranks as two threads of one process, each with its own store connection and process
//! group: the shim's ABI assumptions (csrc/gloo_decls/README.md) and the collectives' results.

use std::time::Duration;

use tch::{Device, Kind, Tensor};

use super::{GradReducer, ProcessGroup, ReduceOp, Store};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `f(group)` on ranks 0 and 1, each in its own thread; their results in rank order.
fn two_ranks<T: Send + 'static>(f: fn(&ProcessGroup) -> T) -> Vec<T> {
    ranks(2, false, f)
}

/// Runs `f(group)` on `n` ranks, each in its own thread (with NCCL for CUDA tensors when
/// `nccl`); their results in rank order.
fn ranks<T: Send + 'static>(n: usize, nccl: bool, f: fn(&ProcessGroup) -> T) -> Vec<T> {
    // One world at a time in this process: c10d's stores and Gloo's threads of several worlds
    // at once, set up and torn down by tests running in parallel, once crashed the test binary.
    static ONE_WORLD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_WORLD.lock().unwrap_or_else(|p| p.into_inner());
    let port = free_port();
    let handles: Vec<_> = (0..n)
        .map(|rank| {
            std::thread::spawn(move || {
                let t = Duration::from_secs(30);
                let store =
                    Store::connect("127.0.0.1", port, rank == 0, n, t, "test/").expect("store");
                let group = ProcessGroup::new(&store, rank, n, t, 1).expect("group");
                if nccl {
                    group.add_nccl(&store, t).expect("NCCL backend");
                }
                let out = f(&group);
                // No rank tears its group (or rank 0 the store it serves) down while another
                // still talks to it.
                group.barrier().expect("final barrier");
                out
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("rank thread"))
        .collect()
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).expect("f64s")
}

#[test]
fn all_reduce_broadcast_and_gather_across_two_ranks() {
    let out = two_ranks(|g| {
        let r = g.rank as f64;
        let sum = Tensor::from_slice(&[1.0 + r, 10.0 * r]).to_kind(Kind::Float);
        g.all_reduce(&[&sum], ReduceOp::Sum).expect("all_reduce");
        let max = Tensor::from_slice(&[r, -r]);
        g.all_reduce(&[&max], ReduceOp::Max).expect("max");
        let b = Tensor::from_slice(&[5.0 + r, 7.0 * (r + 1.0)]);
        g.broadcast(&[&b], 1).expect("broadcast");
        let gathered = g
            .all_gather(&Tensor::from_slice(&[r, r + 0.5]).view([1, 2]))
            .expect("all_gather");
        g.barrier().expect("barrier");
        (values(&sum), values(&max), values(&b), values(&gathered))
    });
    for (sum, max, b, gathered) in out {
        assert_eq!(sum, vec![3.0, 10.0]);
        assert_eq!(max, vec![1.0, 0.0]);
        assert_eq!(b, vec![6.0, 14.0], "rank 1's values everywhere");
        assert_eq!(gathered, vec![0.0, 0.5, 1.0, 1.5], "rank order");
    }
}

#[test]
fn differentiable_collectives_sum_the_gradients_over_ranks() {
    let out = two_ranks(|g| {
        let r = g.rank as f64;
        let x = Tensor::from_slice(&[1.0 + r, 2.0]).set_requires_grad(true);
        // d/dx of Σ_ranks (k_r · allreduce(x)) = Σ_r k_r, with k_r = r + 1.
        let y = g.all_reduce_grad(&x).expect("all_reduce_grad");
        (&y * (r + 1.0)).sum(Kind::Double).backward();
        let reduced = values(&y);
        let gx = values(&x.grad());
        let z = Tensor::from_slice(&[r]).set_requires_grad(true);
        let all = g.all_gather_grad(&z.view([1, 1])).expect("all_gather_grad");
        // Rank r weighs row j by (j + 1)·(r + 1): row j's gradient on its owner is
        // (j + 1)·Σ_r (r + 1) = 3 (j + 1).
        let w = Tensor::from_slice(&[1.0, 2.0]).view([2, 1]) * (r + 1.0);
        (&all * w).sum(Kind::Double).backward();
        (reduced, gx, values(&z.grad()))
    });
    assert_eq!(out[0].0, vec![3.0, 4.0]);
    assert_eq!(out[0].1, vec![3.0, 3.0]);
    assert_eq!(out[1].1, vec![3.0, 3.0]);
    assert_eq!(out[0].2, vec![3.0]);
    assert_eq!(out[1].2, vec![6.0]);
}

#[test]
fn the_reducer_averages_gradients_and_skips_unarmed_passes() {
    let out = two_ranks(|g| {
        let w = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let b = Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let reducer = GradReducer::new(
            g,
            &[w.shallow_clone(), b.shallow_clone()],
            1 << 20,
            1 << 20,
            false,
        )
        .expect("reducer");
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0]) * (g.rank as f64 + 1.0);
        // An unarmed pass (no_sync): local gradients only.
        let loss = (&w * &x).sum(Kind::Float) + b.sum(Kind::Float);
        loss.backward();
        let local = values(&w.grad());
        let _ = w.grad().zero_();
        let _ = b.grad().zero_();
        // An armed pass: the gradients are the mean over ranks.
        let loss = (&w * &x).sum(Kind::Float) + b.sum(Kind::Float) * (g.rank as f64 + 1.0);
        reducer.prepare(&[&loss]).expect("prepare");
        loss.backward();
        (local, values(&w.grad()), values(&b.grad()))
    });
    assert_eq!(out[0].0, vec![1.0, 2.0, 3.0]);
    assert_eq!(out[1].0, vec![2.0, 4.0, 6.0]);
    for (_, gw, gb) in &out {
        assert_eq!(gw, &vec![1.5, 3.0, 4.5], "mean of x over the two ranks");
        assert_eq!(gb, &vec![1.5]);
    }
}

#[test]
fn simclr_over_gathered_embeddings_is_the_global_loss_with_w_times_its_gradient() {
    use crate::tasks::contrastive::loss::nt_xent;
    // Rows of both views for 4 videos; rank r holds videos 2r and 2r + 1.
    fn views() -> (Tensor, Tensor) {
        let z = Tensor::from_slice(&[
            0.3f32, -0.2, 0.9, 0.5, 0.1, -0.4, -0.7, 0.8, 0.2, 0.0, 0.6, 0.6, 0.4, 0.4, -0.3, 0.9,
            -0.1, 0.2, 0.1, -0.8, 0.5, -0.5, 0.3, 0.7,
        ])
        .view([8, 3]);
        let z = &z / z.norm_scalaropt_dim(2, [1i64].as_slice(), true);
        (z.narrow(0, 0, 4), z.narrow(0, 4, 4))
    }
    let out = two_ranks(|g| {
        let (z1, z2) = views();
        let r = g.rank as i64;
        let mine1 = z1.narrow(0, 2 * r, 2).detach().set_requires_grad(true);
        let mine2 = z2.narrow(0, 2 * r, 2).detach().set_requires_grad(true);
        let c = nt_xent(
            &g.all_gather_grad(&mine1).expect("gather"),
            &g.all_gather_grad(&mine2).expect("gather"),
            0.2,
        );
        c.loss.backward();
        (
            c.loss.double_value(&[]),
            values(&mine1.grad()),
            values(&mine2.grad()),
        )
    });
    let (z1, z2) = views();
    let (z1, z2) = (z1.set_requires_grad(true), z2.set_requires_grad(true));
    let whole = nt_xent(&z1, &z2, 0.2);
    whole.loss.backward();
    let expect = whole.loss.double_value(&[]);
    for (r, (loss, g1, g2)) in out.iter().enumerate() {
        assert!((loss - expect).abs() < 1e-6, "rank {r}: {loss} vs {expect}");
        let rows = |t: &Tensor| values(&(t.grad().narrow(0, 2 * r as i64, 2) * 2.0));
        for (a, b) in g1.iter().zip(rows(&z1)).chain(g2.iter().zip(rows(&z2))) {
            assert!((a - b).abs() < 1e-5, "rank {r}: gradient {a} vs 2 x {b}");
        }
    }
}

/// The CI machine's libtorch has CUDA (the PyPI wheel), so its build must compile the NCCL
/// process group: a missing header would otherwise silently leave GPU runs without NCCL.
#[test]
fn nccl_is_built_wherever_libtorch_has_cuda() {
    let lib = std::path::Path::new(env!("TADA_LIBTORCH_LIB"));
    assert_eq!(
        ProcessGroup::HAS_NCCL,
        lib.join("libtorch_cuda.so").exists(),
        "NCCL built vs libtorch_cuda.so in {}",
        lib.display()
    );
}

/// On a GPU machine (skipped elsewhere): NCCL carries the CUDA collectives, the differentiable
/// gather and DDP's reducer, on one rank per GPU (at most two; NCCL takes one rank per device).
#[test]
fn nccl_runs_the_collectives_and_the_reducer_on_gpus() {
    if !tch::Cuda::is_available() || !ProcessGroup::HAS_NCCL {
        eprintln!("skipped: needs a CUDA device and a build with NCCL");
        return;
    }
    let n = (tch::Cuda::device_count() as usize).clamp(1, 2);
    let out = ranks(n, true, |g| {
        let dev = Device::Cuda(g.rank);
        let r = g.rank as f64;
        let sum = (Tensor::from_slice(&[1.0f32, 2.0]) * (r + 1.0)).to_device(dev);
        g.all_reduce(&[&sum], ReduceOp::Sum)
            .expect("NCCL all_reduce");
        let z =
            (Tensor::from_slice(&[r as f32]).view([1, 1]).to_device(dev)).set_requires_grad(true);
        let all = g.all_gather_grad(&z).expect("NCCL all_gather_grad");
        all.sum(Kind::Float).backward();
        let w = Tensor::ones([2], (Kind::Float, dev)).set_requires_grad(true);
        let reducer =
            GradReducer::new(g, &[w.shallow_clone()], 1 << 20, 1 << 20, false).expect("reducer");
        let loss = (&w * (r + 1.0)).sum(Kind::Float);
        reducer.prepare(&[&loss]).expect("prepare");
        loss.backward();
        (
            values(&sum.to_device(Device::Cpu)),
            values(&all.to_device(Device::Cpu)),
            values(&z.grad().to_device(Device::Cpu)),
            values(&w.grad().to_device(Device::Cpu)),
        )
    });
    let n = out.len() as f64;
    let ranks_sum: f64 = (1..=out.len()).map(|k| k as f64).sum();
    for (sum, all, gz, gw) in out {
        assert_eq!(sum, vec![ranks_sum, 2.0 * ranks_sum]);
        assert_eq!(all, (0..n as usize).map(|k| k as f64).collect::<Vec<_>>());
        assert_eq!(gz, vec![n], "every rank's loss reads every row");
        assert_eq!(gw, vec![ranks_sum / n; 2], "the mean over ranks");
    }
}

/// SyncBatchNorm's statistics over two ranks' halves normalise, and pass gradients, as one
/// process's BatchNorm on the whole batch, also for channels whose mean is large against their
/// spread (where E[x²] − E[x]² of summed powers loses every digit in float32).
#[test]
fn sync_bn_statistics_and_gradients_equal_one_batch_norm_over_both_halves() {
    fn halves() -> (Tensor, Tensor) {
        let g = |seed: i64, shape: &[i64]| {
            let n: i64 = shape.iter().product();
            // Deterministic, well spread values without libtorch's global generator.
            let v: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5)
                .collect();
            Tensor::from_slice(&v).view(shape)
        };
        // Channel 0 sits at 100 with a spread of 0.1; channel 1 is centred.
        let offset = Tensor::from_slice(&[100.0f32, 0.0]).view([1, 2, 1, 1]);
        let scale = Tensor::from_slice(&[0.1f32, 1.0]).view([1, 2, 1, 1]);
        let x = g(1, &[4, 2, 3, 5]) * scale + offset;
        let w = g(2, &[4, 2, 3, 5]);
        (x, w)
    }
    let out = two_ranks(|g| {
        let (x, w) = halves();
        let r = g.rank as i64;
        let mine = x.narrow(0, 2 * r, 2).detach().set_requires_grad(true);
        let (mean, var, n) = super::sync_bn::statistics(&mine, |rows| {
            g.all_gather_grad(rows).expect("all_gather_grad")
        });
        let y = (&mine - mean.view([1, 2, 1, 1])) * (var + 1e-5).rsqrt().view([1, 2, 1, 1]);
        (&y * w.narrow(0, 2 * r, 2)).sum(Kind::Float).backward();
        (values(&y), values(&mine.grad()), values(&n))
    });
    let (x, w) = halves();
    let x = x.set_requires_grad(true);
    let y = x.batch_norm(
        None::<Tensor>,
        None::<Tensor>,
        None::<Tensor>,
        None::<Tensor>,
        true,
        0.1,
        1e-5,
        false,
    );
    (&y * &w).sum(Kind::Float).backward();
    let (y_all, g_all) = (values(&y), values(&x.grad()));
    let half = y_all.len() / 2;
    for (r, (y, gx, n)) in out.iter().enumerate() {
        assert_eq!(n, &vec![60.0], "values per channel over both ranks");
        let rows = r * half..(r + 1) * half;
        for (what, a, b) in [
            ("output", y, &y_all[rows.clone()]),
            ("gradient", gx, &g_all[rows]),
        ] {
            let worst = a
                .iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            let scale = b.iter().map(|v| v.abs()).fold(0.0, f64::max);
            assert!(
                worst <= 1e-3 * scale,
                "rank {r} {what}: max |diff| {worst:e} of {scale:e}"
            );
        }
    }
}
