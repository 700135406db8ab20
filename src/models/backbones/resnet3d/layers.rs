//! Conv3d and BatchNorm3d as every ResNet3D module builds them: no conv bias, BN eps/momentum
//! from the BN section, and the initialisation the backbone asks for.

use tch::nn::{self, Init};
use tch::Tensor;

/// How the backbone's convolutions are initialised (VIDEO.BACKBONE.INITIALIZATION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvInit {
    /// PyTorch's Conv3d default: Kaiming-uniform with a = √5, i.e. U(±1/√fan_in).
    PyTorchDefault,
    /// The reference's ResNet initialiser (`kaiming`): Kaiming-normal, fan-out, ReLU gain.
    KaimingFanOut,
}

impl ConvInit {
    fn init(self) -> Init {
        match self {
            // gain √(2 / (1 + a²)) with a = √5 gives bound √3·gain/√fan = 1/√fan.
            Self::PyTorchDefault => Init::Kaiming {
                dist: nn::init::NormalOrUniform::Uniform,
                fan: nn::init::FanInOut::FanIn,
                non_linearity: nn::init::NonLinearity::ExplicitGain(1.0 / 3f64.sqrt()),
            },
            Self::KaimingFanOut => Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
        }
    }
}

/// Shape of one bias-free Conv3d: kernel, stride and padding as (t, h, w), and its groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub kernel: [i64; 3],
    pub stride: [i64; 3],
    pub padding: [i64; 3],
    /// 1, or the channel count for a depthwise (channel-separated) conv.
    pub groups: i64,
}

impl ConvSpec {
    /// "Same"-style padding k//2 per dim, as every ResNet3D conv uses.
    pub fn centred(kernel: [i64; 3], stride: [i64; 3]) -> Self {
        Self {
            kernel,
            stride,
            padding: kernel.map(|k| k / 2),
            groups: 1,
        }
    }

    /// The same conv in `groups` channel groups.
    pub fn grouped(self, groups: i64) -> Self {
        Self { groups, ..self }
    }
}

/// A Conv3d without bias.
pub fn conv3d(path: nn::Path, c_in: i64, c_out: i64, spec: ConvSpec, init: ConvInit) -> nn::Conv3D {
    let config = nn::ConvConfigND::<[i64; 3]> {
        stride: spec.stride,
        padding: spec.padding,
        dilation: [1, 1, 1],
        groups: spec.groups,
        bias: false,
        ws_init: init.init(),
        bs_init: Init::Const(0.0),
        padding_mode: nn::PaddingMode::Zeros,
    };
    nn::conv(path, c_in, c_out, spec.kernel, config)
}

/// The reference's ResNet initialiser (`c2_msra_fill`) applied to a Conv3d built elsewhere (the
/// routing function's convs): Kaiming-normal fan-out weight, zero bias.
pub fn msra_fill(conv: &nn::Conv3D) {
    tch::no_grad(|| {
        let mut w = conv.ws.shallow_clone();
        ConvInit::KaimingFanOut.init().set(&mut w);
        if let Some(b) = &conv.bs {
            let _ = b.shallow_clone().zero_();
        }
    });
}

/// BatchNorm settings shared by every BN of the backbone (BN.EPS, BN.MOMENTUM, BN.FREEZE).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnParams {
    pub eps: f64,
    pub momentum: f64,
    /// BN.FREEZE: BNs keep using their running statistics while the rest trains.
    pub freeze: bool,
}

/// BatchNorm3d with PyTorch's initialisation (weight 1, bias 0) and the BN.FREEZE behaviour.
#[derive(Debug)]
pub struct Bn {
    bn: nn::BatchNorm,
    freeze: bool,
    /// Kept for SyncBatchNorm, which computes the normalisation itself (tch hides them).
    eps: f64,
    momentum: f64,
}

impl Bn {
    pub fn new(path: nn::Path, channels: i64, p: BnParams) -> Self {
        Self::with_weight(path, channels, p, 1.0)
    }

    /// A BatchNorm3d whose weight and bias start at 0, so that its output starts at 0: a term
    /// added to another starts as a no-op (TAda2D's `b_avgpool_bn`).
    pub fn zeroed(path: nn::Path, channels: i64, p: BnParams) -> Self {
        Self::with_weight(path, channels, p, 0.0)
    }

    fn with_weight(path: nn::Path, channels: i64, p: BnParams, weight: f64) -> Self {
        let config = nn::BatchNormConfig {
            eps: p.eps,
            momentum: p.momentum,
            // tch defaults the weight to U(0, 1); PyTorch (and the reference) start at 1.
            ws_init: Init::Const(weight),
            bs_init: Init::Const(0.0),
            ..Default::default()
        };
        Self {
            bn: nn::batch_norm3d(path, channels, config),
            freeze: p.freeze,
            eps: p.eps,
            momentum: p.momentum,
        }
    }

    /// Sets the weight to 0 (the reference's `transform_final_bn`: a residual branch that starts
    /// as a no-op).
    pub fn zero_weight(&self) {
        if let Some(w) = &self.bn.ws {
            tch::no_grad(|| {
                let _ = w.shallow_clone().fill_(0.0);
            });
        }
    }

    /// Batch statistics over every rank's samples when SyncBatchNorm is on (BN.SYNC in a
    /// distributed run).
    ///
    /// # Shapes
    /// (N, C, T, H, W) -> same.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let train = train && !self.freeze;
        crate::dist::sync_bn::forward(&self.bn, xs, train, self.eps, self.momentum)
    }
}

/// Conv3d followed by its BatchNorm3d (no activation): the unit every ResNet3D module chains.
#[derive(Debug)]
pub struct ConvBn {
    conv: nn::Conv3D,
    bn: Bn,
}

impl ConvBn {
    /// Builds `<conv>` and `<conv>_bn` under `path`, the reference's naming pattern.
    pub fn new(
        path: &nn::Path,
        name: &str,
        (c_in, c_out): (i64, i64),
        spec: ConvSpec,
        init: ConvInit,
        bn: BnParams,
    ) -> Self {
        Self {
            conv: conv3d(path / name, c_in, c_out, spec, init),
            bn: Bn::new(path / format!("{name}_bn"), c_out, bn),
        }
    }

    /// The same unit with its BN weight starting at 0 ([`Bn::zero_weight`]).
    pub fn with_zero_bn(self) -> Self {
        self.bn.zero_weight();
        self
    }

    /// # Shapes
    /// (N, c_in, T, H, W) -> (N, c_out, T', H', W') with T', H', W' set by stride and padding.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&xs.apply(&self.conv), train)
    }
}
