//! `FuseFastToSlow` (module `slowfast_fusion{k}`): the lateral connection that hands the fast
//! pathway's features to the slow one.

use tch::nn::{self, Init};
use tch::Tensor;

use crate::models::backbones::resnet3d::{Bn, BnParams};

/// What the SLOWFAST keys set for every fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionSpec {
    /// Temporal stride: the fast pathway runs ALPHA times the slow one's frame rate.
    pub alpha: i64,
    /// Output channels per fast channel (CONV_CHANNEL_RATIO).
    pub channel_ratio: i64,
    /// Temporal kernel (KERNEL_SIZE), padded by KERNEL_SIZE / 2.
    pub kernel: i64,
    pub bias: bool,
    pub bn: Option<BnParams>,
    pub relu: bool,
}

/// `conv_fast_to_slow` (KERNEL_SIZE,1,1) with temporal stride ALPHA, then the optional `bn` and
/// ReLU; its output is concatenated to the slow features over channels.
#[derive(Debug)]
pub struct FuseFastToSlow {
    conv: nn::Conv3D,
    bn: Option<Bn>,
    relu: bool,
}

impl FuseFastToSlow {
    /// `fast_channels`: the width of the fast pathway's stage before the fusion.
    pub fn new(path: &nn::Path, fast_channels: i64, s: &FusionSpec) -> Self {
        let out = fast_channels * s.channel_ratio;
        let config = nn::ConvConfigND::<[i64; 3]> {
            stride: [s.alpha, 1, 1],
            padding: [s.kernel / 2, 0, 0],
            dilation: [1, 1, 1],
            groups: 1,
            bias: s.bias,
            // The reference's ResNet initialiser (c2_msra_fill): Kaiming-normal fan-out, zero
            // bias.
            ws_init: Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            bs_init: Init::Const(0.0),
            padding_mode: nn::PaddingMode::Zeros,
        };
        Self {
            conv: nn::conv(
                path / "conv_fast_to_slow",
                fast_channels,
                out,
                [s.kernel, 1, 1],
                config,
            ),
            bn: s.bn.map(|p| Bn::new(path / "bn", out, p)),
            relu: s.relu,
        }
    }

    /// # Shapes
    /// slow (N, C_s, T/α, H, W), fast (N, C_f, T, H, W) -> (N, C_s + C_f·ratio, T/α, H, W).
    pub fn forward_t(&self, slow: &Tensor, fast: &Tensor, train: bool) -> Tensor {
        let mut fuse = fast.apply(&self.conv);
        if let Some(bn) = &self.bn {
            fuse = bn.forward_t(&fuse, train);
        }
        if self.relu {
            fuse = fuse.relu();
        }
        Tensor::cat(&[slow, &fuse], 1)
    }
}
