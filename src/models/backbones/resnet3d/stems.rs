//! ResNet3D stems (module `conv1`): `Base2DStem`, `DownSampleStem` and `R2Plus1DStem`.

use tch::nn;
use tch::Tensor;

use super::layers::{ConvBn, ConvSpec};
use super::{ResNetSpec, KEY_FILTERS};
use crate::config::schema::StemName;
use crate::models::ModelError;

/// Width of the intermediate channels of a (2+1)D factorised conv: the count that gives the
/// factorised pair as many parameters as the full k_t×k_h×k_w conv (floor).
pub fn r2plus1d_mid_width(kernel: [i64; 3], c_in: i64, c_out: i64) -> i64 {
    let [kt, kh, kw] = kernel;
    (kt * kh * kw * c_in * c_out) / (kh * kw * c_in + kt * c_out)
}

/// The stem's stride. Only the 3-D stems may stride in time.
fn stem_stride(spec: &ResNetSpec, temporal_allowed: bool) -> [i64; 3] {
    match (
        spec.downsampling[0],
        spec.downsampling_temporal[0] && temporal_allowed,
    ) {
        (true, true) => [2, 2, 2],
        (true, false) => [1, 2, 2],
        (false, _) => [1, 1, 1],
    }
}

/// The stem, selected by VIDEO.BACKBONE.STEM.NAME: conv+BN units, each followed by ReLU, then
/// an optional max-pool.
/// - `Base2DStem`: `a` (1,k_h,k_w), never strided in time.
/// - `DownSampleStem`: `a` (k_t,k_h,k_w), then max-pool (1,3,3) stride (1,2,2) pad (0,1,1).
/// - `R2Plus1DStem`: `a1` (1,k_h,k_w) then `a2` (k_t,1,1) carrying the temporal stride; no pool.
#[derive(Debug)]
pub struct Stem {
    units: Vec<ConvBn>,
    max_pool: bool,
}

impl Stem {
    pub fn new(path: &nn::Path, spec: &ResNetSpec) -> Result<Self, ModelError> {
        let c_in = spec.num_input_channels;
        let c_out = spec.num_filters[0];
        let k = spec.kernel_size[0];
        let (init, bn) = (spec.conv_init, spec.bn);
        Ok(match spec.stem {
            StemName::Base2DStem => {
                // The temporal kernel is forced to 1: a per-frame 2-D stem.
                let conv = ConvSpec::centred([1, k[1], k[2]], stem_stride(spec, false));
                Self {
                    units: vec![ConvBn::new(path, "a", (c_in, c_out), conv, init, bn)],
                    max_pool: false,
                }
            }
            StemName::DownSampleStem => {
                let conv = ConvSpec::centred(k, stem_stride(spec, true));
                Self {
                    units: vec![ConvBn::new(path, "a", (c_in, c_out), conv, init, bn)],
                    max_pool: true,
                }
            }
            StemName::R2Plus1DStem => {
                let mid = r2plus1d_mid_width(k, c_in, c_out);
                if mid < 1 {
                    return Err(ModelError::invalid(
                        KEY_FILTERS,
                        format!("NUM_FILTERS[0] = {c_out} leaves the R(2+1)D stem no mid channels"),
                    ));
                }
                let [st, s, _] = stem_stride(spec, true);
                let spatial = ConvSpec::centred([1, k[1], k[2]], [1, s, s]);
                let temporal = ConvSpec::centred([k[0], 1, 1], [st, 1, 1]);
                Self {
                    units: vec![
                        ConvBn::new(path, "a1", (c_in, mid), spatial, init, bn),
                        ConvBn::new(path, "a2", (mid, c_out), temporal, init, bn),
                    ],
                    max_pool: false,
                }
            }
            other @ (StemName::PatchEmbedStem
            | StemName::TubeletEmbeddingStem
            | StemName::STConv3d) => {
                return Err(ModelError::invalid(
                    "VIDEO.BACKBONE.STEM.NAME",
                    format!(
                        "{other:?} is the stem of another backbone (Transformer, Inception3D); \
                         ResNet3D and Slowfast take Base2DStem, DownSampleStem or R2Plus1DStem"
                    ),
                ))
            }
        })
    }

    /// # Shapes
    /// (N, C_in, T, H, W) -> (N, NUM_FILTERS[0], T', H', W'); H and W shrink by 2 for the
    /// stride and by another 2 for DownSampleStem's max-pool.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self.units.iter().fold(xs.shallow_clone(), |x, unit| {
            unit.forward_t(&x, train).relu()
        });
        if self.max_pool {
            x.max_pool3d([1, 3, 3], [1, 2, 2], [0, 1, 1], [1, 1, 1], false)
        } else {
            x
        }
    }
}
