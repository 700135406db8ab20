//! The projection MLP of contrastive pretraining (docs/paramcrop.md#contrastive-recipe; the group's
//! `MLP` in `heads/contrastive_head.py`): global average pool → Linear(D → MID) → BN → ReLU →
//! Linear(MID → MID) → BN → ReLU → Linear(MID → OUT) (→ BN) → L2-normalise.

use tch::nn::{self, Module};
use tch::Tensor;

use super::{linear_pytorch_default, to_i64};
use crate::config::schema::{BnConfig, ContrastiveSection};
use crate::models::ModelError;

const KEY_MID: &str = "PRETRAIN.CONTRASTIVE.HEAD_MID_DIM";
const KEY_OUT: &str = "PRETRAIN.CONTRASTIVE.HEAD_OUT_DIM";

/// The eps of every BN of the MLP. The reference hard-wires it (it reads only BN.MOMENTUM), and
/// 1e-3 is also the BN.EPS of its contrastive recipes.
pub const PROJECTION_BN_EPS: f64 = 1e-3;

/// Parameters of a [`ProjectionMlp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectionConfig {
    /// Width of the backbone features (VIDEO.BACKBONE.NUM_OUT_FEATURES).
    pub in_dim: i64,
    /// Width of both hidden layers (HEAD_MID_DIM).
    pub mid_dim: i64,
    /// Width of the embedding (HEAD_OUT_DIM).
    pub out_dim: i64,
    /// BN after each hidden Linear (HEAD_BN).
    pub mid_bn: bool,
    /// BN after the output Linear (FINAL_BN).
    pub final_bn: bool,
    pub bn_eps: f64,
    pub bn_momentum: f64,
    /// BN.FREEZE: the BNs keep their running statistics in training.
    pub bn_freeze: bool,
}

impl ProjectionConfig {
    /// The reference recipe on `in_dim` features: 1024 → 1024 → 128, hidden BNs, no final BN,
    /// BN eps 1e-3 and momentum 0.1.
    pub fn new(in_dim: i64) -> Self {
        Self {
            in_dim,
            mid_dim: 1024,
            out_dim: 128,
            mid_bn: true,
            final_bn: false,
            bn_eps: PROJECTION_BN_EPS,
            bn_momentum: 0.1,
            bn_freeze: false,
        }
    }

    /// From PRETRAIN.CONTRASTIVE and the BN section (momentum and freeze; the eps stays 1e-3 as
    /// in the reference), on `in_dim` backbone features.
    pub fn from_config(
        in_dim: i64,
        c: &ContrastiveSection,
        bn: &BnConfig,
    ) -> Result<Self, ModelError> {
        let positive = |key: &str, v: usize| {
            if v == 0 {
                Err(ModelError::invalid(key, "must be at least 1"))
            } else {
                to_i64(key, v)
            }
        };
        if !(0.0..=1.0).contains(&bn.momentum) {
            return Err(ModelError::invalid(
                "BN.MOMENTUM",
                format!("must be in [0, 1], got {}", bn.momentum),
            ));
        }
        Ok(Self {
            in_dim,
            mid_dim: positive(KEY_MID, c.head_mid_dim)?,
            out_dim: positive(KEY_OUT, c.head_out_dim)?,
            mid_bn: c.head_bn,
            final_bn: c.final_bn,
            bn_eps: PROJECTION_BN_EPS,
            bn_momentum: bn.momentum,
            bn_freeze: bn.freeze,
        })
    }
}

/// The projection MLP. Build it on `head / "mlp"` to get the reference's state_dict keys
/// (`head.mlp.linear_a.weight`, …).
///
/// Variables (relative to the path): `linear_a.{weight (MID, D), bias}`, `linear_a_bn.*`,
/// `linear_b.{weight (MID, MID), bias}`, `linear_b_bn.*`, `logits_out_b2.{weight (OUT, MID),
/// bias}`, and with FINAL_BN `final_bn.*`; the BNs hold running statistics. Linear layers keep
/// PyTorch's default initialisation, BNs weight 1 / bias 0, as in the reference.
#[derive(Debug)]
pub struct ProjectionMlp {
    linear_a: nn::Linear,
    linear_a_bn: Option<nn::BatchNorm>,
    linear_b: nn::Linear,
    linear_b_bn: Option<nn::BatchNorm>,
    logits_out_b2: nn::Linear,
    final_bn: Option<nn::BatchNorm>,
    in_dim: i64,
    out_dim: i64,
    bn_freeze: bool,
    /// (eps, momentum) of the BNs, for SyncBatchNorm (tch keeps them private).
    bn_params: (f64, f64),
}

impl ProjectionMlp {
    pub fn new(path: &nn::Path, cfg: &ProjectionConfig) -> Result<Self, ModelError> {
        for (key, v) in [
            ("VIDEO.BACKBONE.NUM_OUT_FEATURES", cfg.in_dim),
            (KEY_MID, cfg.mid_dim),
            (KEY_OUT, cfg.out_dim),
        ] {
            if v <= 0 {
                return Err(ModelError::invalid(
                    key,
                    format!("must be at least 1, got {v}"),
                ));
            }
        }
        if !(cfg.bn_eps.is_finite() && cfg.bn_eps > 0.0) {
            return Err(ModelError::invalid(
                "BN.EPS",
                format!("the projection BNs need an eps > 0, got {}", cfg.bn_eps),
            ));
        }
        let bn = |name: &str, c: i64| {
            let bn_cfg = nn::BatchNormConfig {
                eps: cfg.bn_eps,
                momentum: cfg.bn_momentum,
                ws_init: nn::Init::Const(1.0),
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            };
            nn::batch_norm3d(path / name, c, bn_cfg)
        };
        Ok(Self {
            linear_a: linear_pytorch_default(path / "linear_a", cfg.in_dim, cfg.mid_dim),
            linear_a_bn: cfg.mid_bn.then(|| bn("linear_a_bn", cfg.mid_dim)),
            linear_b: linear_pytorch_default(path / "linear_b", cfg.mid_dim, cfg.mid_dim),
            linear_b_bn: cfg.mid_bn.then(|| bn("linear_b_bn", cfg.mid_dim)),
            logits_out_b2: linear_pytorch_default(path / "logits_out_b2", cfg.mid_dim, cfg.out_dim),
            final_bn: cfg.final_bn.then(|| bn("final_bn", cfg.out_dim)),
            in_dim: cfg.in_dim,
            out_dim: cfg.out_dim,
            bn_freeze: cfg.bn_freeze,
            bn_params: (cfg.bn_eps, cfg.bn_momentum),
        })
    }

    /// Width of the embedding.
    pub fn out_dim(&self) -> i64 {
        self.out_dim
    }

    fn has_bn(&self) -> bool {
        self.linear_a_bn.is_some() || self.final_bn.is_some()
    }

    /// Checks that `xs` is something [`Self::forward_t`] can take: (N, D, T, H, W) or (N, D)
    /// with D = in_dim, and at least 2 samples when BNs use batch statistics (training).
    pub fn check_input(&self, xs: &Tensor, train: bool) -> Result<(), ModelError> {
        let size = xs.size();
        let ok_rank = matches!(size.len(), 2 | 5);
        if !ok_rank || size[1] != self.in_dim || size.contains(&0) {
            return Err(ModelError::Input {
                expected: format!("(N, {0}, T, H, W) or (N, {0})", self.in_dim),
                got: size,
            });
        }
        if train && !self.bn_freeze && self.has_bn() && size[0] < 2 {
            return Err(ModelError::Input {
                expected: "at least 2 samples: training BatchNorm needs batch statistics".into(),
                got: size,
            });
        }
        Ok(())
    }

    /// The L2-normalised embedding (only that: the pooled features the reference returns beside
    /// it are the caller's own mean of the backbone output).
    ///
    /// # Shapes
    /// (N, D, T, H, W) (averaged over T, H, W first) or (N, D) -> (N, OUT), every row of unit
    /// L2 norm (a zero row stays zero).
    ///
    /// # Panics
    /// On an input [`Self::check_input`] rejects, like any tch layer given a wrong shape.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let n = xs.size()[0];
        let x = if xs.dim() == 5 {
            // (N, D, T, H, W) -> (N, D, 1, 1, 1) -> (N, 1, 1, 1, D)
            xs.adaptive_avg_pool3d([1, 1, 1]).permute([0, 2, 3, 4, 1])
        } else {
            // (N, D) -> (N, 1, 1, 1, D)
            xs.reshape([n, 1, 1, 1, -1])
        };
        let bn_train = train && !self.bn_freeze;
        let x = self.linear_a.forward(&x);
        let x = batch_norm_channels_last(self.linear_a_bn.as_ref(), &x, bn_train, self.bn_params)
            .relu();
        let x = self.linear_b.forward(&x);
        let x = batch_norm_channels_last(self.linear_b_bn.as_ref(), &x, bn_train, self.bn_params)
            .relu();
        let x = self.logits_out_b2.forward(&x);
        let x = batch_norm_channels_last(self.final_bn.as_ref(), &x, bn_train, self.bn_params);
        // (N, 1, 1, 1, OUT) -> (N, OUT)
        let x = x.reshape([n, -1]);
        // F.normalize: x / max(‖x‖₂, 1e-12).
        let norm = x
            .norm_scalaropt_dim(2, [-1i64].as_slice(), true)
            .clamp_min(1e-12);
        x / norm
    }
}

/// BatchNorm3d over the channels of a channels-last tensor, as the reference applies it.
///
/// # Shapes
/// (N, 1, 1, 1, C) -> (N, 1, 1, 1, C)
fn batch_norm_channels_last(
    bn: Option<&nn::BatchNorm>,
    xs: &Tensor,
    train: bool,
    (eps, momentum): (f64, f64),
) -> Tensor {
    match bn {
        // (N, 1, 1, 1, C) -> (N, C, 1, 1, 1) -> BN (synchronised under BN.SYNC) -> (N, 1, 1, 1, C)
        Some(bn) => {
            crate::dist::sync_bn::forward(bn, &xs.permute([0, 4, 1, 2, 3]), train, eps, momentum)
                .permute([0, 2, 3, 4, 1])
        }
        None => xs.shallow_clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::truthy;
    use tch::{Device, Kind};

    fn build(cfg: &ProjectionConfig) -> (nn::VarStore, ProjectionMlp) {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = ProjectionMlp::new(&(vs.root() / "head" / "mlp"), cfg).expect("valid config");
        (vs, m)
    }

    fn small(final_bn: bool) -> ProjectionConfig {
        ProjectionConfig {
            mid_dim: 16,
            out_dim: 8,
            final_bn,
            ..ProjectionConfig::new(12)
        }
    }

    fn randn(shape: &[i64]) -> Tensor {
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    fn assert_unit_rows(y: &Tensor) {
        let norms = y.norm_scalaropt_dim(2, [-1i64].as_slice(), false);
        let err = (norms - 1.0).abs().max().double_value(&[]);
        assert!(err < 1e-5, "row norms off by {err}");
    }

    #[test]
    fn reference_keys_and_shapes() {
        let (vs, _) = build(&ProjectionConfig::new(768));
        let v = vs.variables();
        assert_eq!(v["head.mlp.linear_a.weight"].size(), [1024, 768]);
        assert_eq!(v["head.mlp.linear_a_bn.running_var"].size(), [1024]);
        assert_eq!(v["head.mlp.linear_b.weight"].size(), [1024, 1024]);
        assert_eq!(v["head.mlp.linear_b_bn.weight"].size(), [1024]);
        assert_eq!(v["head.mlp.logits_out_b2.weight"].size(), [128, 1024]);
        assert!(!v.contains_key("head.mlp.final_bn.weight"));
        assert!(truthy(&v["head.mlp.linear_a_bn.weight"].eq(1.0).all()));
        // 3 Linears (2 tensors) + 2 BNs (weight, bias, running mean and var).
        assert_eq!(v.len(), 6 + 8);
        let (vs, _) = build(&ProjectionConfig {
            mid_bn: false,
            final_bn: true,
            ..ProjectionConfig::new(8)
        });
        let v = vs.variables();
        assert!(!v.contains_key("head.mlp.linear_a_bn.weight"));
        assert_eq!(v["head.mlp.final_bn.running_mean"].size(), [128]);
    }

    #[test]
    fn output_shape_and_unit_norm() {
        tch::manual_seed(1);
        for final_bn in [false, true] {
            let (_vs, m) = build(&small(final_bn));
            for train in [true, false] {
                let clips = randn(&[4, 12, 2, 3, 3]);
                m.check_input(&clips, train).expect("valid input");
                let y = m.forward_t(&clips, train);
                assert_eq!(y.size(), [4, 8]);
                assert_unit_rows(&y);
                let pooled = randn(&[3, 12]);
                let y = m.forward_t(&pooled, train);
                assert_eq!(y.size(), [3, 8]);
                assert_unit_rows(&y);
            }
        }
    }

    #[test]
    fn clips_are_pooled_before_the_mlp() {
        tch::manual_seed(2);
        let (_vs, m) = build(&small(false));
        let clips = randn(&[3, 12, 2, 3, 3]);
        // (N, D, T, H, W) -> (N, D)
        let pooled = clips.mean_dim([2i64, 3, 4].as_slice(), false, None::<Kind>);
        let a = m.forward_t(&clips, false);
        let b = m.forward_t(&pooled, false);
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "max |diff| {diff}");
    }

    #[test]
    fn training_uses_batch_statistics_and_updates_running_ones() {
        tch::manual_seed(3);
        let (vs, m) = build(&small(false));
        let x = randn(&[6, 12]) * 3.0 + 2.0;
        let eval_before = m.forward_t(&x, false);
        let train = m.forward_t(&x, true);
        assert!(!train.allclose(&eval_before, 1e-4, 1e-4, false));
        let mean = &vs.variables()["head.mlp.linear_a_bn.running_mean"];
        assert!(mean.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        // With BN.FREEZE the BNs stay in evaluation mode while training.
        let (_vs, frozen) = build(&ProjectionConfig {
            bn_freeze: true,
            ..small(false)
        });
        assert!(frozen
            .forward_t(&x, true)
            .equal(&frozen.forward_t(&x, false)));
    }

    #[test]
    fn gradients_reach_every_parameter() {
        tch::manual_seed(4);
        for final_bn in [false, true] {
            let (vs, m) = build(&small(final_bn));
            let x = randn(&[5, 12, 2, 2, 2]).set_requires_grad(true);
            let y = m.forward_t(&x, true);
            (y * randn(&[5, 8])).sum(Kind::Float).backward();
            let mut trainable = 0;
            for (name, t) in vs.variables() {
                if !t.requires_grad() {
                    continue;
                }
                trainable += 1;
                let g = t.grad();
                assert!(g.defined(), "{name}: no gradient");
                assert!(truthy(&g.isfinite().all()), "{name}: non-finite gradient");
                let total = g.abs().sum(Kind::Float).double_value(&[]);
                assert!(total > 0.0, "{name}: gradient is all zero");
            }
            assert_eq!(trainable, if final_bn { 12 } else { 10 });
            assert!(x.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
        }
    }

    #[test]
    fn config_keys_and_input_checks() {
        let c = ContrastiveSection::default();
        let bn = BnConfig::default();
        let cfg = ProjectionConfig::from_config(768, &c, &bn).expect("defaults are valid");
        assert_eq!(cfg, ProjectionConfig::new(768));
        let bad = ContrastiveSection {
            head_out_dim: 0,
            ..c.clone()
        };
        let e = ProjectionConfig::from_config(768, &bad, &bn).expect_err("zero width");
        assert_eq!(e.key(), Some(KEY_OUT), "{e}");
        let bad = ContrastiveSection {
            head_mid_dim: 0,
            ..c
        };
        let e = ProjectionConfig::from_config(768, &bad, &bn).expect_err("zero width");
        assert_eq!(e.key(), Some(KEY_MID), "{e}");

        // The keys load from YAML under PRETRAIN.CONTRASTIVE.
        let yaml = "PRETRAIN: {CONTRASTIVE: {HEAD_MID_DIM: 512, FINAL_BN: true}}\nBN: {MOMENTUM: 0.01}\nVIDEO: {HEAD: {NUM_CLASSES: 2}}";
        let full =
            crate::models::test_support::config(yaml, &["PRETRAIN.CONTRASTIVE.HEAD_OUT_DIM=64"]);
        let cfg = ProjectionConfig::from_config(256, &full.pretrain.contrastive, &full.bn)
            .expect("valid");
        assert_eq!(
            (cfg.mid_dim, cfg.out_dim, cfg.mid_bn, cfg.final_bn),
            (512, 64, true, true)
        );
        assert_eq!((cfg.bn_eps, cfg.bn_momentum), (1e-3, 0.01));

        let (_vs, m) = build(&small(false));
        assert!(m.check_input(&randn(&[2, 11]), false).is_err());
        assert!(m.check_input(&randn(&[2, 12, 3]), false).is_err());
        assert!(m.check_input(&randn(&[1, 12]), false).is_ok());
        assert!(m.check_input(&randn(&[1, 12]), true).is_err());
    }
}
