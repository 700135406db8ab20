//! Residual branches (module `conv_branch`), selected by VIDEO.BACKBONE.BRANCH.NAME.
//!
//! [`ConvBranch`] is the extension point: one variant per branch name. The TAda2D bottleneck
//! (`TAda2DBlock`) lives in its own module, `tada2d_branch`.

use tch::nn;
use tch::Tensor;

use super::layers::{ConvBn, ConvSpec};
use super::stems::r2plus1d_mid_width;
use super::tada2d_branch::{TAda2DBranch, KEY_ROUTE_FUNC_R};
use super::{BlockParams, ResNetSpec, Transformation, KEY_BRANCH, KEY_EXPANSION, KEY_FILTERS};
use crate::config::schema::BranchName;
use crate::models::{ModelError, Taps};

/// The residual branch of one block. No activation after the last BN: the block adds the
/// shortcut first and applies ReLU to the sum.
#[derive(Debug)]
pub enum ConvBranch {
    R2D3D(R2D3DBranch),
    R2Plus1D(R2Plus1DBranch),
    Csn(CsnBranch),
    /// Boxed: it holds many more modules than the plain branches.
    TAda2D(Box<TAda2DBranch>),
}

impl ConvBranch {
    /// Fails for branch names that exist in the config schema but cannot be built here.
    pub fn check_supported(name: BranchName) -> Result<(), ModelError> {
        match name {
            BranchName::R2D3DBranch
            | BranchName::R2Plus1DBranch
            | BranchName::TAda2DBlock
            | BranchName::CSNBranch => Ok(()),
            other => Err(not_buildable(other)),
        }
    }

    /// The branch `spec.branch` for one block.
    pub fn new(path: &nn::Path, spec: &ResNetSpec, p: &BlockParams) -> Result<Self, ModelError> {
        match spec.branch {
            // SlowfastBranch is R2D3DBranch with a (3,1,1) bottleneck `a` where the stage
            // asks for one (`p.temporal_a`).
            BranchName::R2D3DBranch | BranchName::SlowfastBranch => {
                Ok(Self::R2D3D(R2D3DBranch::new(path, p)?))
            }
            BranchName::R2Plus1DBranch => Ok(Self::R2Plus1D(R2Plus1DBranch::new(path, p)?)),
            BranchName::CSNBranch => Ok(Self::Csn(CsnBranch::new(path, p)?)),
            BranchName::TAda2DBlock => {
                // ResNetSpec::from_config fills this in for TAda2DBlock; only a hand-made
                // spec can lack it.
                let tada = spec.tada.as_ref().ok_or_else(|| {
                    ModelError::missing(KEY_ROUTE_FUNC_R, "the TAda2DBlock branch")
                })?;
                Ok(Self::TAda2D(Box::new(TAda2DBranch::new(path, tada, p)?)))
            }
            other => Err(not_buildable(other)),
        }
    }

    /// # Shapes
    /// (N, dim_in, T, H, W) -> (N, num_filters, T/s_t, H/s, W/s) for block stride (s_t, s, s).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording the intermediates a branch exposes (TAda2D: `b_rf`, `b`).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        match self {
            Self::R2D3D(b) => b.forward_t(xs, train),
            Self::R2Plus1D(b) => b.forward_t(xs, train),
            Self::Csn(b) => b.0.forward_t(xs, train),
            Self::TAda2D(b) => b.forward_taps(xs, train, taps),
        }
    }
}

fn not_buildable(name: BranchName) -> ModelError {
    ModelError::invalid(
        KEY_BRANCH,
        format!(
            "{name:?} is not a ResNet3D branch; use R2D3DBranch, R2Plus1DBranch, TAda2DBlock or \
             CSNBranch (SlowfastBranch is built by META_ARCH Slowfast)"
        ),
    )
}

fn bottleneck_width(p: &BlockParams) -> Result<i64, ModelError> {
    p.bottleneck_width
        .ok_or_else(|| ModelError::missing(KEY_EXPANSION, "bottleneck blocks (DEPTH >= 50)"))
}

/// Conv+BN units with a ReLU between consecutive units and none after the last, which is how
/// every non-TAda branch is laid out.
#[derive(Debug)]
struct ConvChain(Vec<ConvBn>);

impl ConvChain {
    /// # Shapes
    /// (N, C_in, T, H, W) -> (N, C_out, T', H', W'), set by the units' strides.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.0.len().saturating_sub(1);
        self.0
            .iter()
            .enumerate()
            .fold(xs.shallow_clone(), |x, (i, unit)| {
                let y = unit.forward_t(&x, train);
                if i < last {
                    y.relu()
                } else {
                    y
                }
            })
    }
}

/// `R2D3DBranch` (MCx of Tran et al.): full k_t×k_h×k_w convs; also SlowFast's
/// `SlowfastBranch`, whose bottleneck `a` is (3,1,1) in the stages TEMPORAL_CONV_BOTTLENECK
/// names.
/// Simple: `a` (k, block stride) → `a_bn` → ReLU → `b` (k) → `b_bn`.
/// Bottleneck: `a` 1×1×1 → ReLU → `b` (k, block stride) → ReLU → `c` 1×1×1, each with its BN.
#[derive(Debug)]
pub struct R2D3DBranch(ConvChain);

impl R2D3DBranch {
    pub fn new(path: &nn::Path, p: &BlockParams) -> Result<Self, ModelError> {
        let (init, bn, f) = (p.conv_init, p.bn, p.num_filters);
        let pointwise = ConvSpec::centred([1, 1, 1], [1, 1, 1]);
        let first = match p.temporal_a {
            true => ConvSpec::centred([3, 1, 1], [1, 1, 1]),
            false => pointwise,
        };
        let strided = ConvSpec::centred(p.kernel, p.stride);
        let mut units = match p.transformation {
            Transformation::Simple => vec![
                ConvBn::new(path, "a", (p.dim_in, f), strided, init, bn),
                ConvBn::new(
                    path,
                    "b",
                    (f, f),
                    ConvSpec::centred(p.kernel, [1, 1, 1]),
                    init,
                    bn,
                ),
            ],
            Transformation::Bottleneck => {
                let m = bottleneck_width(p)?;
                vec![
                    ConvBn::new(path, "a", (p.dim_in, m), first, init, bn),
                    ConvBn::new(path, "b", (m, m), strided, init, bn),
                    ConvBn::new(path, "c", (m, f), pointwise, init, bn),
                ]
            }
        };
        if p.zero_final_bn {
            if let Some(last) = units.pop() {
                units.push(last.with_zero_bn());
            }
        }
        Ok(Self(ConvChain(units)))
    }

    /// # Shapes
    /// (N, dim_in, T, H, W) -> (N, num_filters, T/s_t, H/s, W/s).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.0.forward_t(xs, train)
    }
}

/// `R2Plus1DBranch`: every k_t×k_h×k_w conv factorised into (1,k_h,k_w) then (k_t,1,1); the
/// spatial stride sits on the first, the temporal stride on the second.
/// Simple: `a1` → `a2` → `b1` → `b2`; bottleneck: `a` 1×1×1 → `b1` → `b2` → `c` 1×1×1; each
/// conv with its BN, ReLU after all but the last.
#[derive(Debug)]
pub struct R2Plus1DBranch(ConvChain);

impl R2Plus1DBranch {
    pub fn new(path: &nn::Path, p: &BlockParams) -> Result<Self, ModelError> {
        let (init, bn, f) = (p.conv_init, p.bn, p.num_filters);
        let [kt, kh, kw] = p.kernel;
        let [st, s, _] = p.stride;
        let spatial = |stride| ConvSpec::centred([1, kh, kw], [1, stride, stride]);
        let temporal = |stride| ConvSpec::centred([kt, 1, 1], [stride, 1, 1]);
        let units = match p.transformation {
            Transformation::Simple => {
                let mid_a = r2plus1d_mid_width(p.kernel, p.dim_in, f);
                let mid_b = r2plus1d_mid_width(p.kernel, f, f);
                if mid_a < 1 || mid_b < 1 {
                    return Err(ModelError::invalid(
                        KEY_FILTERS,
                        format!(
                            "{} -> {f} filters leave an R(2+1)D block no mid channels",
                            p.dim_in
                        ),
                    ));
                }
                vec![
                    ConvBn::new(path, "a1", (p.dim_in, mid_a), spatial(s), init, bn),
                    ConvBn::new(path, "a2", (mid_a, f), temporal(st), init, bn),
                    ConvBn::new(path, "b1", (f, mid_b), spatial(1), init, bn),
                    ConvBn::new(path, "b2", (mid_b, f), temporal(1), init, bn),
                ]
            }
            Transformation::Bottleneck => {
                let m = bottleneck_width(p)?;
                let pointwise = ConvSpec::centred([1, 1, 1], [1, 1, 1]);
                vec![
                    ConvBn::new(path, "a", (p.dim_in, m), pointwise, init, bn),
                    ConvBn::new(path, "b1", (m, m), spatial(s), init, bn),
                    ConvBn::new(path, "b2", (m, m), temporal(st), init, bn),
                    ConvBn::new(path, "c", (m, f), pointwise, init, bn),
                ]
            }
        };
        Ok(Self(ConvChain(units)))
    }

    /// # Shapes
    /// (N, dim_in, T, H, W) -> (N, num_filters, T/s_t, H/s, W/s).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.0.forward_t(xs, train)
    }
}

/// `CSNBranch` (ir-CSN of Tran et al.: interaction-reduced channel-separated bottleneck):
/// `a` 1×1×1 → ReLU → `b` k_t×k_h×k_w depthwise (one group per channel, block stride) → ReLU →
/// `c` 1×1×1, each with its BN. The reference builds only the bottleneck form (DEPTH >= 50).
#[derive(Debug)]
pub struct CsnBranch(ConvChain);

impl CsnBranch {
    pub fn new(path: &nn::Path, p: &BlockParams) -> Result<Self, ModelError> {
        if p.transformation != Transformation::Bottleneck {
            return Err(ModelError::invalid(
                KEY_BRANCH,
                "CSNBranch is a bottleneck branch: VIDEO.BACKBONE.DEPTH must be 50 or more",
            ));
        }
        let (init, bn, f) = (p.conv_init, p.bn, p.num_filters);
        let m = bottleneck_width(p)?;
        let pointwise = ConvSpec::centred([1, 1, 1], [1, 1, 1]);
        let depthwise = ConvSpec::centred(p.kernel, p.stride).grouped(m);
        Ok(Self(ConvChain(vec![
            ConvBn::new(path, "a", (p.dim_in, m), pointwise, init, bn),
            ConvBn::new(path, "b", (m, m), depthwise, init, bn),
            ConvBn::new(path, "c", (m, f), pointwise, init, bn),
        ])))
    }
}
