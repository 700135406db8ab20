//! The residual block `res_k` (the reference's `Base3DBlock`).

use tch::nn;
use tch::Tensor;

use super::branches::ConvBranch;
use super::layers::{ConvBn, ConvSpec};
use super::{BlockParams, ResNetSpec};
use crate::models::{ModelError, Taps};

/// ReLU(shortcut(x) + conv_branch(x)). The shortcut is a strided 1×1×1 projection
/// (`short_cut` + `short_cut_bn`) when the block changes width or downsamples, else identity.
#[derive(Debug)]
pub struct ResBlock {
    short_cut: Option<ConvBn>,
    conv_branch: ConvBranch,
}

impl ResBlock {
    pub fn new(path: &nn::Path, spec: &ResNetSpec, p: &BlockParams) -> Result<Self, ModelError> {
        let short_cut = (p.dim_in != p.num_filters || p.downsampling).then(|| {
            let proj = ConvSpec {
                kernel: [1, 1, 1],
                stride: p.stride,
                padding: [0, 0, 0],
                groups: 1,
            };
            ConvBn::new(
                path,
                "short_cut",
                (p.dim_in, p.num_filters),
                proj,
                p.conv_init,
                p.bn,
            )
        });
        let conv_branch = ConvBranch::new(&(path / "conv_branch"), spec, p)?;
        Ok(Self {
            short_cut,
            conv_branch,
        })
    }

    /// # Shapes
    /// (N, dim_in, T, H, W) -> (N, num_filters, T/s_t, H/s, W/s) for block stride (s_t, s, s).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], passing `taps` on to the branch.
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let identity = match &self.short_cut {
            Some(proj) => proj.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        (identity + self.conv_branch.forward_taps(xs, train, taps)).relu()
    }
}
