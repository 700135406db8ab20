//! Mixed precision (TRAIN.PRECISION, a tada key): CUDA autocast in bf16 or fp16, the latter
//! with dynamic loss scaling. libtorch's autocast exists for CUDA only here (tch wraps the CUDA
//! switch), so on the CPU every precision runs in fp32, with a warning.

use tch::{Device, Tensor};

use crate::cuda_shim::AutocastRegion;

pub use crate::config::schema::Precision;

/// Runs `f` (a forward pass and loss) under autocast as `precision` says, on `device`.
///
/// CUDA autocast in bf16 or fp16 through libtorch's device-typed API (tch's own `autocast`
/// is fp16-only and goes through functions libtorch 2.11 warns about on every call).
pub fn autocast<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> T {
    if precision == Precision::Fp32 || !device.is_cuda() {
        return f();
    }
    let _region = AutocastRegion::enter(precision == Precision::Bf16);
    f()
}

/// Dynamic loss scaling for fp16 (what PyTorch's GradScaler does): the loss is multiplied by
/// `scale` before backward so small gradients survive fp16; gradients are divided by it before
/// clipping and the step; a step whose gradients overflowed is skipped and the scale halved, and
/// after `growth_interval` good steps in a row the scale doubles.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    pub scale: f64,
    good_steps: u64,
    growth_interval: u64,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            good_steps: 0,
            growth_interval: 2000,
        }
    }
}

impl LossScaler {
    /// The scaler of `precision` on `device`: only fp16 on CUDA needs one.
    pub fn for_precision(precision: Precision, device: Device) -> Option<Self> {
        (precision == Precision::Fp16 && device.is_cuda()).then(Self::default)
    }

    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides every defined gradient by the scale. Returns false when any gradient holds an
    /// inf or NaN: then the step must be skipped ([`Self::update`] is told so).
    pub fn unscale(&self, params: &[Tensor]) -> bool {
        let inv = 1.0 / self.scale;
        let mut finite = true;
        tch::no_grad(|| {
            for p in params {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = g.g_mul_scalar_(inv);
                if finite && !bool::try_from(g.isfinite().all()).unwrap_or(false) {
                    finite = false;
                }
            }
        });
        finite
    }

    /// Halves the scale after an overflow, doubles it after `growth_interval` clean steps.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn autocast_on_the_cpu_leaves_fp32() {
        let x = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        let y = autocast(Precision::Bf16, Device::Cpu, || x.matmul(&x));
        assert_eq!(y.kind(), Kind::Float);
        assert!(LossScaler::for_precision(Precision::Fp16, Device::Cpu).is_none());
    }

    #[test]
    fn the_loss_scaler_unscales_skips_overflows_and_adapts() {
        let mut s = LossScaler {
            scale: 8.0,
            good_steps: 0,
            growth_interval: 2,
        };
        let p = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        s.scale_loss(&(&p * 2.0).sum(Kind::Float)).backward();
        assert!(s.unscale(std::slice::from_ref(&p)));
        assert_eq!(Vec::<f32>::try_from(p.grad()).unwrap(), [2.0, 2.0, 2.0]);
        s.update(true);
        s.update(true);
        assert_eq!(s.scale, 16.0, "doubles after growth_interval clean steps");
        let _ = p.grad().zero_();
        (&p * f64::INFINITY).sum(Kind::Float).backward();
        assert!(!s.unscale(std::slice::from_ref(&p)));
        s.update(false);
        assert_eq!(s.scale, 8.0, "halves after an overflow");
    }
}
