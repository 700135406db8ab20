//! The units S3D-G is made of: the separable `STConv3d`, the plain conv unit
//! (`InceptionBaseConv3D`), feature gating (`SelfGating`) and the four-branch Inception block
//! (`InceptionBlock3D`).

use tch::nn::{self, Init, Module};
use tch::Tensor;

use crate::models::backbones::resnet3d::{Bn, BnParams};
use crate::models::taps::module_path;
use crate::models::Taps;

/// The reference initialises S3D-G's convs from N(0, 0.01²) (a stand-in for the original's
/// truncated normal).
const CONV_STD: f64 = 0.01;

/// A bias-free Conv3d with the S3D-G initialisation.
fn conv(
    path: nn::Path,
    (c_in, c_out): (i64, i64),
    kernel: [i64; 3],
    stride: [i64; 3],
    padding: [i64; 3],
) -> nn::Conv3D {
    let config = nn::ConvConfigND::<[i64; 3]> {
        stride,
        padding,
        dilation: [1, 1, 1],
        groups: 1,
        bias: false,
        ws_init: Init::Randn {
            mean: 0.0,
            stdev: CONV_STD,
        },
        bs_init: Init::Const(0.0),
        padding_mode: nn::PaddingMode::Zeros,
    };
    nn::conv(path, c_in, c_out, kernel, config)
}

/// Kernel, stride (spatial and temporal) and padding of one [`STConv3d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SepConvSpec {
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
}

/// `STConv3d`: `conv1` (1,k,k) → `bn1` → ReLU → `conv2` (k,1,1) → `bn2` → ReLU; the stride
/// applies spatially on `conv1` and temporally on `conv2`. BNs follow BN.EPS / BN.MOMENTUM.
#[derive(Debug)]
pub struct STConv3d {
    conv1: nn::Conv3D,
    bn1: Bn,
    conv2: nn::Conv3D,
    bn2: Bn,
}

impl STConv3d {
    pub fn new(path: &nn::Path, (c_in, c_out): (i64, i64), s: SepConvSpec, bn: BnParams) -> Self {
        let (k, st, p) = (s.kernel, s.stride, s.padding);
        Self {
            conv1: conv(
                path / "conv1",
                (c_in, c_out),
                [1, k, k],
                [1, st, st],
                [0, p, p],
            ),
            bn1: Bn::new(path / "bn1", c_out, bn),
            conv2: conv(
                path / "conv2",
                (c_out, c_out),
                [k, 1, 1],
                [st, 1, 1],
                [p, 0, 0],
            ),
            bn2: Bn::new(path / "bn2", c_out, bn),
        }
    }

    /// # Shapes
    /// (N, c_in, T, H, W) -> (N, c_out, T', H', W'), each reduced by the stride.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self.bn1.forward_t(&xs.apply(&self.conv1), train).relu();
        self.bn2.forward_t(&x.apply(&self.conv2), train).relu()
    }
}

/// `InceptionBaseConv3D`: a 1×1×1 `conv` → `bn` → ReLU. Its BN is PyTorch's default (eps 1e-5,
/// momentum 0.1) whatever the BN section says: the reference does not pass BN.EPS to it.
#[derive(Debug)]
pub struct PointConv {
    conv: nn::Conv3D,
    bn: Bn,
}

/// PyTorch's BatchNorm3d defaults, which `InceptionBaseConv3D` keeps.
pub fn default_bn(freeze: bool) -> BnParams {
    BnParams {
        eps: 1e-5,
        momentum: 0.1,
        freeze,
    }
}

impl PointConv {
    pub fn new(path: &nn::Path, (c_in, c_out): (i64, i64), freeze_bn: bool) -> Self {
        Self {
            conv: conv(path / "conv", (c_in, c_out), [1; 3], [1; 3], [0; 3]),
            bn: Bn::new(path / "bn", c_out, default_bn(freeze_bn)),
        }
    }

    /// # Shapes
    /// (N, c_in, T, H, W) -> (N, c_out, T, H, W).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&xs.apply(&self.conv), train).relu()
    }
}

/// `SelfGating`: x · sigmoid(`fc`(mean of x over T, H, W)), one weight per channel and clip.
#[derive(Debug)]
pub struct SelfGating {
    fc: nn::Linear,
}

impl SelfGating {
    pub fn new(path: nn::Path, channels: i64) -> Self {
        // PyTorch's nn.Linear default: weight and bias U(±1/√fan_in).
        let config = nn::LinearConfig {
            ws_init: Init::Kaiming {
                dist: nn::init::NormalOrUniform::Uniform,
                fan: nn::init::FanInOut::FanIn,
                non_linearity: nn::init::NonLinearity::ExplicitGain(1.0 / 3f64.sqrt()),
            },
            bs_init: None,
            bias: true,
        };
        Self {
            fc: nn::linear(path / "fc", channels, channels, config),
        }
    }

    /// # Shapes
    /// (N, C, T, H, W) -> same.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        // (N, C, T, H, W) -> (N, C)
        let pooled = xs.mean_dim([2i64, 3, 4].as_slice(), false, xs.kind());
        let w = self.fc.forward(&pooled).sigmoid();
        let n = w.size();
        // (N, C) -> (N, C, 1, 1, 1)
        xs * w.reshape([n[0], n[1], 1, 1, 1])
    }
}

/// Output widths of one Inception block, in the reference's order: branch 0's 1×1×1; branch
/// 1's 1×1×1 and separable 3×3×3; branch 2's the same; branch 3's 1×1×1 after the max-pool.
pub type InceptionWidths = [i64; 6];

/// `InceptionBlock3D`: four branches concatenated over channels —
/// `branch0` = 1×1×1; `branch1`, `branch2` = 1×1×1 → `STConv3d` 3×3×3; `branch3` = 3×3×3
/// max-pool (stride 1) → 1×1×1 — each gated (`gating_b0..3`) when BRANCH.GATING is on.
#[derive(Debug)]
pub struct InceptionBlock {
    branch0: PointConv,
    branch1: (PointConv, STConv3d),
    branch2: (PointConv, STConv3d),
    branch3: PointConv,
    gating: Option<[SelfGating; 4]>,
    tap: String,
}

impl InceptionBlock {
    pub fn new(path: &nn::Path, c_in: i64, w: InceptionWidths, gating: bool, bn: BnParams) -> Self {
        let sep = SepConvSpec {
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        let f = bn.freeze;
        let b = |i: usize| path / format!("branch{i}");
        let widths = [w[0], w[2], w[4], w[5]];
        let gating = gating.then(|| {
            std::array::from_fn(|i| SelfGating::new(path / format!("gating_b{i}"), widths[i]))
        });
        Self {
            branch0: PointConv::new(&(b(0) / "0"), (c_in, w[0]), f),
            branch1: (
                PointConv::new(&(b(1) / "0"), (c_in, w[1]), f),
                STConv3d::new(&(b(1) / "1"), (w[1], w[2]), sep, bn),
            ),
            branch2: (
                PointConv::new(&(b(2) / "0"), (c_in, w[3]), f),
                STConv3d::new(&(b(2) / "1"), (w[3], w[4]), sep, bn),
            ),
            // Index 0 of the reference's Sequential is the parameter-free max-pool.
            branch3: PointConv::new(&(b(3) / "1"), (c_in, w[5]), f),
            gating,
            tap: module_path(path),
        }
    }

    /// Output channels: w0 + w2 + w4 + w5.
    pub fn out_channels(w: &InceptionWidths) -> i64 {
        w[0] + w[2] + w[4] + w[5]
    }

    /// # Shapes
    /// (N, c_in, T, H, W) -> (N, w0 + w2 + w4 + w5, T, H, W).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let pooled = xs.max_pool3d([3, 3, 3], [1, 1, 1], [1, 1, 1], [1, 1, 1], false);
        let mut outs = [
            self.branch0.forward_t(xs, train),
            self.branch1
                .1
                .forward_t(&self.branch1.0.forward_t(xs, train), train),
            self.branch2
                .1
                .forward_t(&self.branch2.0.forward_t(xs, train), train),
            self.branch3.forward_t(&pooled, train),
        ];
        if let Some(gates) = &self.gating {
            for (x, g) in outs.iter_mut().zip(gates) {
                *x = g.forward(x);
            }
        }
        let y = Tensor::cat(&outs, 1);
        taps.record(&self.tap, &y);
        y
    }
}
