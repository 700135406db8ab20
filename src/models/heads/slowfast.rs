//! `SlowFastHead`: each pathway globally average-pooled, the pooled features concatenated
//! (slow first), then dropout and the Linear `out` — BaseHead's parameters and math on the
//! concatenation, which is how tada builds it (VIDEO.HEAD.NAME SlowFastHead selects BaseHead
//! over [`pool_pathways`]). The reference sizes `out` from NUM_OUT_FEATURES · (1 + 1 / BETA)
//! for both pathways (NUM_OUT_FEATURES alone for `slowonly`, / BETA for `fastonly`): the
//! backbone's [`crate::models::backbones::SlowFast::out_features`] gives the same number.

use tch::Tensor;

/// The pathways' global average pools, concatenated over channels.
///
/// # Shapes
/// [(N, D_p, T_p, H_p, W_p)] -> (N, Σ D_p, 1, 1, 1).
pub fn pool_pathways(pathways: &[Tensor]) -> Tensor {
    let pooled: Vec<Tensor> = pathways
        .iter()
        // (N, D, T, H, W) -> (N, D, 1, 1, 1)
        .map(|x| x.adaptive_avg_pool3d([1, 1, 1]))
        .collect();
    Tensor::cat(&pooled, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn pathways_are_pooled_each_then_concatenated_slow_first() {
        let slow = Tensor::ones([2, 3, 2, 4, 4], (Kind::Float, Device::Cpu));
        let fast =
            Tensor::arange(2 * 8 * 4 * 4, (Kind::Float, Device::Cpu)).reshape([2, 1, 8, 4, 4]);
        let y = pool_pathways(&[slow, fast.shallow_clone()]);
        assert_eq!(y.size(), [2, 4, 1, 1, 1]);
        assert_eq!(y.double_value(&[0, 2, 0, 0, 0]), 1.0);
        let want = fast.get(1).mean(Kind::Float).double_value(&[]);
        assert!((y.double_value(&[1, 3, 0, 0, 0]) - want).abs() < 1e-4);
    }
}
