//! BaseBMN (module `head`): the temporal evaluation module (start / end probabilities per
//! position), the boundary-matching layer and the proposal evaluation module (a (2, D, T)
//! confidence map: channel 0 regressed IoU, channel 1 classified IoU).

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::backbone::{conv1d, pytorch_conv_init};
use super::bm_layer::{boundary_matching, sample_mask};
use super::spec::{HeadSpec, MapSpec, TEM_GROUPS};

/// The prediction names of [`BaseBmn::forward`], the reference's output keys.
pub const CONFIDENCE_MAP: &str = "confidence_map";
pub const START: &str = "start";
pub const END: &str = "end";

/// The frozen parameter the reference registers (nn.Parameter, requires_grad=False): it is a
/// state_dict key and counts in `parameters()`, but is never trained.
pub const SAMPLE_MASK: &str = "sample_mask";

/// The head's three outputs.
#[derive(Debug)]
pub struct BmnOutput {
    /// (B, 2, D, T) in (0, 1): [regression, classification] confidence per (duration, start).
    pub confidence_map: Tensor,
    /// (B, T) start probability per position.
    pub start: Tensor,
    /// (B, T) end probability per position.
    pub end: Tensor,
}

/// Parameter paths: `sample_mask`, `x_1d_s.{0,2}`, `x_1d_e.{0,2}`, `x_1d_p.0`, `x_3d_p.0`,
/// `x_2d_p.{0,2,4,6}` (weights and biases), as in the reference.
#[derive(Debug)]
pub struct BaseBmn {
    spec: HeadSpec,
    sample_mask: Tensor,
    x_1d_s: [nn::Conv1D; 2],
    x_1d_e: [nn::Conv1D; 2],
    x_1d_p: nn::Conv1D,
    x_3d_p: nn::Conv3D,
    x_2d_p: [nn::Conv2D; 4],
}

impl BaseBmn {
    pub fn new(path: &nn::Path, spec: &HeadSpec) -> Self {
        let (d1, d2, d3) = (spec.dim1d, spec.dim2d, spec.dim3d);
        let values = sample_mask(&spec.map);
        // A variable outside the trainable set, so that checkpoints carry it and no optimiser
        // sees it.
        let mut mask = path.zeros_no_train(SAMPLE_MASK, &values.size());
        tch::no_grad(|| mask.copy_(&values));
        let tem = |name: &str| {
            let p = path / name;
            [
                conv1d(&p / 0, d1, d1, 3, TEM_GROUPS),
                conv1d(&p / 2, d1, 1, 1, 1),
            ]
        };
        let n = spec.map.num_sample;
        let (ws_init, bs_init) = pytorch_conv_init(d1 * n);
        let x_3d_p = nn::conv(
            path / "x_3d_p" / 0,
            d1,
            d3,
            [n, 1, 1],
            nn::ConvConfigND::<[i64; 3]> {
                stride: [n, 1, 1],
                padding: [0, 0, 0],
                dilation: [1, 1, 1],
                groups: 1,
                bias: true,
                ws_init,
                bs_init,
                padding_mode: nn::PaddingMode::Zeros,
            },
        );
        let pem = path / "x_2d_p";
        let conv2d = |i: i64, c_in: i64, c_out: i64, k: i64| {
            let (ws_init, bs_init) = pytorch_conv_init(c_in * k * k);
            let config = nn::ConvConfig {
                padding: k / 2,
                ws_init,
                bs_init,
                ..Default::default()
            };
            nn::conv2d(&pem / i, c_in, c_out, k, config)
        };
        Self {
            spec: *spec,
            sample_mask: mask,
            x_1d_s: tem("x_1d_s"),
            x_1d_e: tem("x_1d_e"),
            x_1d_p: conv1d(path / "x_1d_p" / 0, d1, d1, 3, 1),
            x_3d_p,
            x_2d_p: [
                conv2d(0, d3, d2, 1),
                conv2d(2, d2, d2, 3),
                conv2d(4, d2, d2, 3),
                conv2d(6, d2, 2, 1),
            ],
        }
    }

    pub fn map_spec(&self) -> &MapSpec {
        &self.spec.map
    }

    /// # Shapes
    /// (B, DIM1D, T) -> confidence map (B, 2, D, T), start (B, T), end (B, T).
    pub fn forward(&self, xs: &Tensor) -> BmnOutput {
        let tem = |convs: &[nn::Conv1D; 2]| {
            // (B, 1, T) -> (B, T)
            convs[1]
                .forward(&convs[0].forward(xs).relu())
                .sigmoid()
                .squeeze_dim(1)
        };
        let mid = self.x_1d_p.forward(xs).relu();
        // (B, C, T) -> (B, C, N, D, T) -> (B, DIM3D, 1, D, T) -> (B, DIM3D, D, T)
        let matched = boundary_matching(&mid, &self.sample_mask, &self.spec.map);
        let mid = self.x_3d_p.forward(&matched).relu().squeeze_dim(2);
        let pem = &self.x_2d_p;
        let h = pem[0].forward(&mid).relu();
        let h = pem[1].forward(&h).relu();
        let h = pem[2].forward(&h).relu();
        BmnOutput {
            confidence_map: pem[3].forward(&h).sigmoid(),
            start: tem(&self.x_1d_s),
            end: tem(&self.x_1d_e),
        }
    }

    /// Values of the frozen sampling mask (for checks).
    pub fn sample_mask(&self) -> Tensor {
        self.sample_mask.to_kind(Kind::Float)
    }
}
