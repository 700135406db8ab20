//! The reference's `misc.py` helpers: its own `LayerNorm` (channels-first or channels-last) and
//! `QuickGELU`.

use tch::nn;
use tch::Tensor;

use super::{ensure, OpError};

/// Which axis a [`LayerNorm`] normalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataFormat {
    /// Over the last dimension (`F.layer_norm`).
    #[default]
    ChannelsLast,
    /// Over dimension 1 of an (N, C, ...) tensor, e.g. (B, C, T, H, W) video features.
    ChannelsFirst,
}

/// Parameters of a [`LayerNorm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormConfig {
    pub channels: i64,
    /// 1e-6 for every LayerNorm of the tadaconv code (torch's `nn.LayerNorm` default is 1e-5).
    pub eps: f64,
    pub data_format: DataFormat,
}

impl LayerNormConfig {
    /// The reference's defaults: eps 1e-6, channels-last.
    pub fn new(channels: i64) -> Self {
        Self {
            channels,
            eps: 1e-6,
            data_format: DataFormat::ChannelsLast,
        }
    }
}

/// The reference's `LayerNorm` (`misc.py`), with `weight` (C) = 1 and `bias` (C) = 0 at start.
///
/// It is not a torch `nn.LayerNorm`, so the reference's model-wide initialisers never touch it.
/// The channels-first variant uses the biased variance, like `F.layer_norm`.
///
/// # Shapes
/// channels-last: (..., C) -> (..., C); channels-first: (N, C, ...) -> (N, C, ...). The
/// reference applies the channels-first affine only to 3-D and 5-D inputs; any rank ≥ 2 works
/// here, identically for those two.
#[derive(Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    eps: f64,
    data_format: DataFormat,
}

impl LayerNorm {
    /// Creates `weight` and `bias` under `path`.
    pub fn new(path: &nn::Path, cfg: &LayerNormConfig) -> Result<Self, OpError> {
        ensure(cfg.channels > 0, "LayerNorm", || {
            format!("channels must be positive, got {}", cfg.channels)
        })?;
        Ok(Self {
            weight: path.var("weight", &[cfg.channels], nn::Init::Const(1.0)),
            bias: path.var("bias", &[cfg.channels], nn::Init::Const(0.0)),
            eps: cfg.eps,
            data_format: cfg.data_format,
        })
    }
}

impl nn::Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self.data_format {
            DataFormat::ChannelsLast => {
                let c = self.weight.size()[0];
                xs.layer_norm([c], Some(&self.weight), Some(&self.bias), self.eps, true)
            }
            DataFormat::ChannelsFirst => {
                let u = xs.mean_dim(1, true, None);
                let centred = xs - &u;
                let s = centred.pow_tensor_scalar(2).mean_dim(1, true, None);
                let normed = centred / (s + self.eps).sqrt();
                // (C) -> (C, 1, ..., 1): broadcast over every axis after the channels.
                let mut shape = vec![-1i64];
                shape.resize(xs.dim().max(2) - 1, 1);
                normed * self.weight.view(shape.as_slice()) + self.bias.view(shape.as_slice())
            }
        }
    }
}

/// `QuickGELU`: x · sigmoid(1.702 · x), used by all V2 code instead of the exact GELU.
pub fn quick_gelu(xs: &Tensor) -> Tensor {
    xs * (xs * 1.702).sigmoid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn channels_first_matches_layer_norm_over_moved_axis() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = LayerNormConfig {
            data_format: DataFormat::ChannelsFirst,
            ..LayerNormConfig::new(6)
        };
        let ln = LayerNorm::new(&vs.root(), &cfg).expect("valid config");
        tch::no_grad(|| {
            let _ = ln.weight.shallow_clone().uniform_(0.5, 1.5);
            let _ = ln.bias.shallow_clone().uniform_(-0.5, 0.5);
        });
        let x = Tensor::randn([2, 6, 3, 4, 5], (Kind::Float, Device::Cpu));
        let ours = nn::Module::forward(&ln, &x);
        // (B, C, T, H, W) -> (B, T, H, W, C) for the channels-last reference, and back.
        let reference = x
            .permute([0, 2, 3, 4, 1])
            .layer_norm([6], Some(&ln.weight), Some(&ln.bias), 1e-6, false)
            .permute([0, 4, 1, 2, 3]);
        let diff = (ours - reference).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "max abs diff {diff}");
    }

    #[test]
    fn quick_gelu_values() {
        let x = Tensor::from_slice(&[-1.0f32, 0.0, 2.0]);
        let y = quick_gelu(&x);
        let expect = [
            -1.0 / (1.0 + 1.702f64.exp()),
            0.0,
            2.0 / (1.0 + (-3.404f64).exp()),
        ];
        for (i, e) in expect.iter().enumerate() {
            assert!((y.double_value(&[i as i64]) - e).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_channels_is_an_error() {
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(LayerNorm::new(&vs.root(), &LayerNormConfig::new(0)).is_err());
    }
}
