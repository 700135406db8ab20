//! InfoNCE losses of contrastive pretraining (docs/paramcrop.md#contrastive-recipe): SimCLR's
//! NT-Xent over the two views of a batch, and MoCo's query-vs-(key, queue) form.

use tch::{Kind, Tensor};

/// A contrastive loss and how often the positive won.
#[derive(Debug)]
pub struct Contrast {
    /// 0-d mean loss over anchors.
    pub loss: Tensor,
    /// Share of anchors whose positive has the highest similarity of all candidates.
    pub accuracy: f64,
}

/// NT-Xent of the two views of B videos, as the group's SimCLR computes it: for anchor `i` with
/// positive `j` (the other view of the same video),
/// `−log(e^{s_ij/τ} / (e^{s_ij/τ} + Σ_{k ∉ video(i)} e^{s_ik/τ}))`, averaged over all 2B
/// anchors. The anchor itself is never a candidate.
///
/// # Shapes
/// `z1`, `z2`: `(B, D)` L2-normalised embeddings of view 1 and view 2 (row `b` of both is
/// video `b`) -> a 0-d loss.
pub fn nt_xent(z1: &Tensor, z2: &Tensor, temperature: f64) -> Contrast {
    let b = z1.size()[0];
    // (2B, D): views stacked, so row r is video r % B.
    let z = Tensor::cat(&[z1, z2], 0);
    // (2B, 2B) cosine similarities over τ.
    let sim = z.matmul(&z.tr()) / temperature;
    let device = z.device();
    let video = Tensor::arange(2 * b, (Kind::Int64, device)).remainder(b);
    // (2B, 2B): candidates from the anchor's own video (itself and its positive) are not negatives.
    let same = video.unsqueeze(1).eq_tensor(&video.unsqueeze(0));
    let partner = (Tensor::arange(2 * b, (Kind::Int64, device)) + b).remainder(2 * b);
    // (2B, 1)
    let pos = sim.gather(1, &partner.unsqueeze(1), false);
    let neg = sim.masked_fill(&same, f64::NEG_INFINITY);
    let all = Tensor::cat(&[&pos, &neg], 1);
    let loss = (all.logsumexp([1i64].as_slice(), true) - &pos).mean(pos.kind());
    let accuracy = winners(&pos, &neg);
    Contrast { loss, accuracy }
}

/// MoCo's InfoNCE: each query against its own key (the positive) and every key in the queue
/// (negatives), cross-entropy with the positive as class 0.
///
/// # Shapes
/// `q`, `k`: `(B, D)`, `queue`: `(K, D)`, all L2-normalised -> a 0-d loss.
pub fn moco_info_nce(q: &Tensor, k: &Tensor, queue: &Tensor, temperature: f64) -> Contrast {
    // (B, 1)
    let pos = (q * k).sum_dim_intlist([1i64].as_slice(), true, q.kind()) / temperature;
    // (B, K)
    let neg = q.matmul(&queue.tr()) / temperature;
    let all = Tensor::cat(&[&pos, &neg], 1);
    let loss = (all.logsumexp([1i64].as_slice(), true) - &pos).mean(pos.kind());
    let accuracy = winners(&pos, &neg);
    Contrast { loss, accuracy }
}

/// Share of rows where the positive beats every negative. `neg` may hold −∞ entries.
fn winners(pos: &Tensor, neg: &Tensor) -> f64 {
    tch::no_grad(|| {
        let best = neg.amax([1i64].as_slice(), true);
        pos.gt_tensor(&best)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn unit_rows(t: Tensor) -> Tensor {
        let n = t.norm_scalaropt_dim(2, [1i64].as_slice(), true);
        t / n
    }

    fn randn(shape: &[i64]) -> Tensor {
        Tensor::randn(shape, (Kind::Double, Device::Cpu))
    }

    /// The definition written out anchor by anchor.
    fn nt_xent_naive(z1: &Tensor, z2: &Tensor, tau: f64) -> f64 {
        let b = z1.size()[0];
        let z = Tensor::cat(&[z1, z2], 0);
        let s = Vec::<Vec<f64>>::try_from(z.matmul(&z.tr()) / tau).unwrap();
        let n = (2 * b) as usize;
        let mut total = 0.0;
        for (i, row) in s.iter().enumerate() {
            let j = (i + b as usize) % n;
            let mut denom = row[j].exp();
            for (k, v) in row.iter().enumerate() {
                if k % b as usize != i % b as usize {
                    denom += v.exp();
                }
            }
            total += -(row[j].exp() / denom).ln();
        }
        total / n as f64
    }

    #[test]
    fn nt_xent_matches_the_written_out_definition() {
        tch::manual_seed(0);
        for b in [2, 5] {
            let z1 = unit_rows(randn(&[b, 7]));
            let z2 = unit_rows(randn(&[b, 7]));
            let got = nt_xent(&z1, &z2, 0.1).loss.double_value(&[]);
            let want = nt_xent_naive(&z1, &z2, 0.1);
            assert!((got - want).abs() < 1e-9, "b={b}: {got} vs {want}");
        }
    }

    #[test]
    fn nt_xent_is_low_for_matching_views_and_high_for_swapped_ones() {
        tch::manual_seed(1);
        let z = unit_rows(randn(&[8, 16]));
        let same = nt_xent(&z, &z, 0.1);
        assert_eq!(same.accuracy, 1.0);
        // Every positive pair made dissimilar: view 2 of video b is video b+1's embedding.
        let shifted = z.roll([1i64].as_slice(), [0i64].as_slice());
        let wrong = nt_xent(&z, &shifted, 0.1);
        assert!(same.loss.double_value(&[]) < wrong.loss.double_value(&[]));
        assert!(wrong.accuracy < 0.5);
    }

    #[test]
    fn moco_loss_is_cross_entropy_with_the_positive_first() {
        tch::manual_seed(2);
        let q = unit_rows(randn(&[4, 8]));
        let k = unit_rows(randn(&[4, 8]));
        let queue = unit_rows(randn(&[6, 8]));
        let got = moco_info_nce(&q, &k, &queue, 0.2).loss.double_value(&[]);
        let logits = Tensor::cat(
            &[
                (&q * &k).sum_dim_intlist([1i64].as_slice(), true, Kind::Double),
                q.matmul(&queue.tr()),
            ],
            1,
        ) / 0.2;
        // Cross-entropy with class 0 as the target.
        let want = -logits
            .log_softmax(1, Kind::Double)
            .select(1, 0)
            .mean(Kind::Double)
            .double_value(&[]);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        let perfect = moco_info_nce(&q, &q, &(-&q), 0.2);
        assert_eq!(perfect.accuracy, 1.0);
    }
}
