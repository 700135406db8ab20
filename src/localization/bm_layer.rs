//! The boundary-matching layer: a fixed linear sampling of a 1-D feature sequence at
//! NUM_SAMPLE points inside (and BOUNDARY_RATIO around) every proposal (start, duration), as one
//! matrix product with the sampling mask.

use tch::Tensor;

use super::spec::MapSpec;

/// The sampling mask, built in f64 as the reference does (its numpy arrays) and stored f32.
///
/// # Shapes
/// (T, N·D·T): row `t`, column `((n·D) + d)·T + s` is the weight of position `t` in sample
/// point `n` of the proposal starting at `s` with duration index `d` (ending at `s + d`).
/// Proposals running past the window (`s + d >= T`) have all-zero columns.
pub fn sample_mask(spec: &MapSpec) -> Tensor {
    let (t, n, d) = (
        spec.tscale as usize,
        spec.num_sample as usize,
        spec.dscale as usize,
    );
    let mut mask = vec![0f32; t * n * d * t];
    for start in 0..t {
        for dur in 0..d {
            if start + dur >= t {
                continue;
            }
            let (xmin, xmax) = (start as f64, (start + dur) as f64);
            let center_len = (xmax - xmin) + 1.0;
            let bins = bin_weights(
                xmin - center_len * spec.boundary_ratio,
                xmax + center_len * spec.boundary_ratio,
                t,
                n,
                spec.num_sample_perbin as usize,
            );
            for (point, bin) in bins.iter().enumerate() {
                for (pos, w) in bin.iter().enumerate() {
                    mask[pos * n * d * t + (point * d + dur) * t + start] = *w as f32;
                }
            }
        }
    }
    // (T·N·D·T) -> (T, N·D·T)
    Tensor::from_slice(&mask).reshape([spec.tscale, -1])
}

/// Weights over the `tscale` positions of each of `num_sample` points spread evenly over
/// [xmin, xmax]: each point averages `perbin` linearly interpolated sub-samples; positions
/// outside the window get no weight (the window is not padded).
fn bin_weights(
    xmin: f64,
    xmax: f64,
    tscale: usize,
    num_sample: usize,
    perbin: usize,
) -> Vec<Vec<f64>> {
    let total = num_sample * perbin;
    let step = (xmax - xmin) / (total as f64 - 1.0);
    let inside = |i: f64| i >= 0.0 && i <= (tscale as f64 - 1.0);
    (0..num_sample)
        .map(|point| {
            let mut bin = vec![0f64; tscale];
            for k in point * perbin..(point + 1) * perbin {
                let x = xmin + step * k as f64;
                // Python's math.modf: both parts carry the sign of x, so a sample in (-1, 0)
                // puts 1 - frac (> 1) on position 0 and frac (< 0) on ceil(x) = 0 as well.
                let (down, frac, up) = (x.trunc(), x - x.trunc(), x.ceil());
                if inside(down) {
                    bin[down as usize] += 1.0 - frac;
                }
                if inside(up) {
                    bin[up as usize] += frac;
                }
            }
            bin.iter().map(|w| 1.0 / perbin as f64 * w).collect()
        })
        .collect()
}

/// Samples every proposal of the map from `xs`.
///
/// # Shapes
/// xs (B, C, T), mask (T, N·D·T) -> (B, C, N, D, T).
pub fn boundary_matching(xs: &Tensor, mask: &Tensor, spec: &MapSpec) -> Tensor {
    let (b, c) = (xs.size()[0], xs.size()[1]);
    // (B, C, T) x (T, N·D·T) -> (B, C, N·D·T) -> (B, C, N, D, T)
    xs.matmul(&mask.to_kind(xs.kind()))
        .reshape([b, c, spec.num_sample, spec.dscale, spec.tscale])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn spec(t: i64, d: i64) -> MapSpec {
        MapSpec {
            tscale: t,
            dscale: d,
            num_sample: 4,
            num_sample_perbin: 3,
            boundary_ratio: 0.5,
        }
    }

    /// Every proposal inside the window samples weights that sum to one per point where the
    /// whole sampled span lies inside; those past the end are empty.
    #[test]
    fn columns_of_inner_proposals_sum_to_one_and_outer_ones_are_empty() {
        let s = spec(16, 8);
        let m = sample_mask(&s).view([16, 4, 8, 16]);
        let sums = m.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        // start 6, duration 1: span [6 - 1, 7 + 1] lies inside.
        for n in 0..4 {
            assert!((sums.double_value(&[n, 1, 6]) - 1.0).abs() < 1e-6);
        }
        // start 12, duration 5 ends at 17 >= 16.
        assert_eq!(
            m.select(3, 12)
                .select(2, 5)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
    }
}
