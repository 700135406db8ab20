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
    let port = free_port();
    let handles: Vec<_> = (0..2)
        .map(|rank| {
            std::thread::spawn(move || {
                let t = Duration::from_secs(30);
                let store =
                    Store::connect("127.0.0.1", port, rank == 0, 2, t, "test/").expect("store");
                let group = ProcessGroup::new(&store, rank, 2, t, 1).expect("group");
                f(&group)
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
