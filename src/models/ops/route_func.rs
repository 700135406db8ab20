//! `RouteFuncMLP`: the V1 routing function that turns a clip into per-frame calibration factors.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::{
    avgpool_hw, check_clip, check_temporal_kernels, ensure, temporal_conv, ConvInit, OpError,
};

const OP: &str = "RouteFuncMLP";

/// Parameters of a [`RouteFuncMLP`] (the reference's constructor arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteFuncMLPConfig {
    /// Channels of the input, and of the calibration factors it produces.
    pub c_in: i64,
    /// Reduction of the hidden width: C_r = c_in / ratio (integer division).
    pub ratio: i64,
    /// Temporal kernels of the convs `a` and `b` (odd).
    pub kernels: [i64; 2],
    /// eps of `bn`. TAda2D never passes `cfg.BN.EPS` here, so it is 1e-5 in every shipped model;
    /// do not wire the config's BN eps to it.
    pub bn_eps: f64,
    /// Momentum of `bn` (torch convention: weight of the new batch statistic), 0.1 in TAda2D.
    pub bn_mmt: f64,
}

impl RouteFuncMLPConfig {
    /// TAda2D's routing function: ratio 4, kernels [3, 3], BN eps 1e-5, momentum 0.1.
    pub fn new(c_in: i64) -> Self {
        Self {
            c_in,
            ratio: 4,
            kernels: [3, 3],
            bn_eps: 1e-5,
            bn_mmt: 0.1,
        }
    }

    /// The hidden width C_r = floor(c_in / ratio).
    pub fn reduced(&self) -> i64 {
        super::reduced_width(self.c_in, self.ratio)
    }
}

/// The V1 routing function (reference `RouteFuncMLP`):
/// alpha = b(relu(bn(a(avgpool_HW(x) + g(avgpool_THW(x)))))) + 1.
///
/// `g` adds a clip-level context to every frame before the temporal conv `a`. `b` starts at zero,
/// so alpha starts at exactly 1 and the TAdaConv reduces to its static kernel; `b.weight` is
/// therefore listed by [`skip_init`](Self::skip_init). The other layers get PyTorch's default
/// init here; TAda2D re-initialises them (Kaiming-normal fan-out convs, BN weight 1 / bias 0).
///
/// Variables (relative to the path): `g.{weight,bias}`, `a.{weight,bias}`,
/// `bn.{weight,bias,running_mean,running_var}`, `b.weight`.
///
/// # Shapes
/// - input x: (B, c_in, T, H, W)
/// - output alpha: (B, c_in, T, 1, 1)
#[derive(Debug)]
pub struct RouteFuncMLP {
    pub g: nn::Conv3D,
    pub a: nn::Conv3D,
    pub bn: nn::BatchNorm,
    /// `bn`'s eps and momentum, which SyncBatchNorm needs (tch keeps them private).
    bn_eps: f64,
    bn_mmt: f64,
    pub b: nn::Conv3D,
    c_in: i64,
    skip_init: Vec<String>,
}

impl RouteFuncMLP {
    /// Creates the routing function's variables under `path`.
    pub fn new(path: &nn::Path, cfg: &RouteFuncMLPConfig) -> Result<Self, OpError> {
        let c_r = cfg.reduced();
        ensure(cfg.c_in > 0 && cfg.ratio > 0 && c_r > 0, OP, || {
            format!(
                "c_in {} / ratio {} must give a hidden width of at least 1",
                cfg.c_in, cfg.ratio
            )
        })?;
        check_temporal_kernels(OP, cfg.kernels)?;
        let [k_a, k_b] = cfg.kernels;
        let g = temporal_conv(
            path / "g",
            cfg.c_in,
            cfg.c_in,
            1,
            true,
            ConvInit::TorchDefault,
        );
        let a = temporal_conv(path / "a", cfg.c_in, c_r, k_a, true, ConvInit::TorchDefault);
        let bn_cfg = nn::BatchNormConfig {
            eps: cfg.bn_eps,
            momentum: cfg.bn_mmt,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let bn = nn::batch_norm3d(path / "bn", c_r, bn_cfg);
        let b = temporal_conv(path / "b", c_r, cfg.c_in, k_b, false, ConvInit::Zeros);
        Ok(Self {
            g,
            a,
            bn,
            bn_eps: cfg.bn_eps,
            bn_mmt: cfg.bn_mmt,
            b,
            c_in: cfg.c_in,
            skip_init: vec![(path / "b").path("weight")],
        })
    }

    /// Full VarStore names of the parameters that model-wide initialisers must leave alone (the
    /// reference's `skip_init` modules): `<path>.b.weight`.
    pub fn skip_init(&self) -> &[String] {
        &self.skip_init
    }

    /// Checks that `xs` is a (B, c_in, T, H, W) clip.
    pub fn check_input(&self, xs: &Tensor) -> Result<(), OpError> {
        check_clip(OP, xs, self.c_in)
    }

    /// alpha for `xs`, or an error when `xs` has the wrong shape. `train` switches `bn` to batch
    /// statistics (and updates its running statistics).
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, OpError> {
        self.check_input(xs)?;
        // (B, C, T, H, W) -> (B, C, 1, 1, 1): clip-level context.
        let ctx = xs.adaptive_avg_pool3d([1, 1, 1]);
        let frames = avgpool_hw(xs);
        // g(ctx) broadcasts over T, so every frame sees the same clip context.
        let hidden = self.a.forward(&(frames + self.g.forward(&ctx)));
        let hidden =
            crate::dist::sync_bn::forward(&self.bn, &hidden, train, self.bn_eps, self.bn_mmt)
                .relu();
        Ok(self.b.forward(&hidden) + 1.0)
    }
}

impl ModuleT for RouteFuncMLP {
    /// # Panics
    /// When `xs` is not (B, c_in, T, H, W); use [`RouteFuncMLP::f_forward_t`] to get an error.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.f_forward_t(xs, train)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ops::test_util::{assert_grads_reach_all, randn};
    use tch::Device;

    #[test]
    fn names_shapes_and_identity_start() {
        let vs = nn::VarStore::new(Device::Cpu);
        let rf = RouteFuncMLP::new(&(vs.root() / "b_rf"), &RouteFuncMLPConfig::new(8))
            .expect("valid config");
        let vars = vs.variables();
        let shape = |n: &str| vars.get(n).map(|t| t.size());
        assert_eq!(shape("b_rf.g.weight"), Some(vec![8, 8, 1, 1, 1]));
        assert_eq!(shape("b_rf.a.weight"), Some(vec![2, 8, 3, 1, 1]));
        assert_eq!(shape("b_rf.bn.running_var"), Some(vec![2]));
        assert_eq!(shape("b_rf.b.weight"), Some(vec![8, 2, 3, 1, 1]));
        assert_eq!(vars.len(), 9);
        assert_eq!(rf.skip_init(), ["b_rf.b.weight".to_string()]);
        let alpha = rf.forward_t(&randn(&[2, 8, 5, 6, 7]), false);
        assert_eq!(alpha.size(), [2, 8, 5, 1, 1]);
        assert_eq!((alpha - 1.0).abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn rejects_bad_config_and_input() {
        let vs = nn::VarStore::new(Device::Cpu);
        let tiny = RouteFuncMLPConfig::new(3);
        assert!(RouteFuncMLP::new(&vs.root(), &tiny).is_err());
        let even = RouteFuncMLPConfig {
            kernels: [2, 3],
            ..RouteFuncMLPConfig::new(8)
        };
        assert!(RouteFuncMLP::new(&vs.root(), &even).is_err());
        let rf = RouteFuncMLP::new(&(vs.root() / "ok"), &RouteFuncMLPConfig::new(8))
            .expect("valid config");
        assert!(rf.f_forward_t(&randn(&[2, 4, 5, 6, 7]), false).is_err());
        assert!(rf.f_forward_t(&randn(&[2, 8, 5, 6]), false).is_err());
    }

    #[test]
    fn train_mode_gradients_reach_every_parameter() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let rf = RouteFuncMLP::new(&vs.root(), &RouteFuncMLPConfig::new(8)).expect("valid config");
        let x = randn(&[2, 8, 5, 4, 4]);
        let target = randn(&[2, 8, 5, 1, 1]);
        assert_grads_reach_all(&vs, &["b.weight"], || {
            (rf.forward_t(&x, true) - &target).square().mean(None)
        });
    }
}
