//! SimpleLocalizationConv (module `backbone`): BACKBONE_LAYER grouped 1-D convolutions (kernel
//! 3, ReLU) over a window of pre-extracted features.

use tch::nn::{self, Module};
use tch::Tensor;

use super::spec::BackboneSpec;

/// nn.Conv1d with PyTorch's default initialisation (weight and bias U(±1/√fan_in)).
pub(crate) fn conv1d(path: nn::Path, c_in: i64, c_out: i64, k: i64, groups: i64) -> nn::Conv1D {
    let (ws_init, bs_init) = pytorch_conv_init(c_in / groups * k);
    let config = nn::ConvConfig {
        padding: k / 2,
        groups,
        ws_init,
        bs_init,
        ..Default::default()
    };
    nn::conv1d(path, c_in, c_out, k, config)
}

/// PyTorch's Conv default for a kernel of `fan_in` inputs per output: weight Kaiming-uniform
/// with a = √5 (gain 1/√3), i.e. U(±1/√fan_in), and bias U(±1/√fan_in).
pub(crate) fn pytorch_conv_init(fan_in: i64) -> (nn::Init, nn::Init) {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let weight = nn::Init::Kaiming {
        dist: nn::init::NormalOrUniform::Uniform,
        fan: nn::init::FanInOut::FanIn,
        non_linearity: nn::init::NonLinearity::ExplicitGain(1.0 / 3f64.sqrt()),
    };
    (
        weight,
        nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )
}

/// Parameters `conv_layer.{0,2,4,…}.{weight,bias}` (the reference's nn.Sequential indices,
/// ReLUs between).
#[derive(Debug)]
pub struct SimpleLocalizationConv {
    convs: Vec<nn::Conv1D>,
    in_channels: i64,
    out_features: i64,
}

impl SimpleLocalizationConv {
    pub fn new(path: &nn::Path, spec: &BackboneSpec) -> Self {
        let seq = path / "conv_layer";
        let convs = (0..spec.layers)
            .map(|i| {
                let c_in = if i == 0 { spec.in_channels } else { spec.dim1d };
                conv1d(&seq / (2 * i), c_in, spec.dim1d, 3, spec.groups)
            })
            .collect();
        Self {
            convs,
            in_channels: spec.in_channels,
            out_features: spec.dim1d,
        }
    }

    pub fn in_channels(&self) -> i64 {
        self.in_channels
    }

    pub fn out_features(&self) -> i64 {
        self.out_features
    }

    /// # Shapes
    /// (B, C_in, T) -> (B, DIM1D, T).
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        self.convs
            .iter()
            .fold(xs.shallow_clone(), |x, conv| conv.forward(&x).relu())
    }
}
