//! Backbones (module `backbone`), selected by VIDEO.BACKBONE.META_ARCH.

pub mod convnext;
pub mod resnet3d;
pub mod s3dg;
pub mod slowfast;
pub mod tadaformer;
pub mod transformer;
pub mod vivit_fe;

use tch::nn;
use tch::Tensor;

use crate::config::schema::{BnConfig, MetaArch};
use crate::config::Config;
use crate::localization::{BackboneSpec, SimpleLocalizationConv};
use crate::models::{ModelError, Taps};

pub use convnext::ConvNeXt;
pub use resnet3d::ResNet3D;
pub use s3dg::Inception3D;
pub use slowfast::SlowFast;
pub use tadaformer::TAdaFormer;
pub use transformer::Transformer;
pub use vivit_fe::FactorizedTransformer;

/// A video backbone: (N, C, T, H, W) clips to feature maps.
#[derive(Debug)]
pub enum Backbone {
    ResNet3D(ResNet3D),
    ConvNeXt(ConvNeXt),
    VisionTransformer(Box<TAdaFormer>),
    /// ViViT (joint attention) or TimeSformer (divided attention).
    Transformer(Box<Transformer>),
    /// The ViViT factorised encoder.
    FactorizedTransformer(Box<FactorizedTransformer>),
    /// S3D-G.
    Inception3D(Box<Inception3D>),
    /// SlowFast: two pathways, handed to the head as [`Features::Pathways`].
    SlowFast(Box<SlowFast>),
    /// BMN's 1-D convolutions over feature sequences (crate::localization).
    LocalizationConv(SimpleLocalizationConv),
}

/// What a backbone hands its head.
#[derive(Debug)]
pub enum Features {
    /// One feature map (N, D, T, H, W) or pooled features (N, D).
    Map(Tensor),
    /// SlowFast's pathways, slow first: (N, D_p, T_p, H, W) each.
    Pathways(Vec<Tensor>),
}

/// BN.EPS and BN.MOMENTUM checked, with BN.FREEZE: what every convolutional backbone's
/// BatchNorms use.
pub(crate) fn checked_bn(bn: &BnConfig) -> Result<resnet3d::BnParams, ModelError> {
    if !(bn.eps.is_finite() && bn.eps > 0.0) {
        return Err(ModelError::invalid(
            "BN.EPS",
            format!("must be > 0, got {}", bn.eps),
        ));
    }
    if !(0.0..=1.0).contains(&bn.momentum) {
        return Err(ModelError::invalid(
            "BN.MOMENTUM",
            format!("must be in [0, 1], got {}", bn.momentum),
        ));
    }
    Ok(resnet3d::BnParams {
        eps: bn.eps,
        momentum: bn.momentum,
        freeze: bn.freeze,
    })
}

impl Backbone {
    /// Built from VIDEO.BACKBONE and BN; the ViViT / TimeSformer backbones also read the DATA
    /// keys that size their positional embeddings (TRAIN_CROP_SIZE, NUM_INPUT_FRAMES).
    pub fn new(path: &nn::Path, cfg: &Config) -> Result<Self, ModelError> {
        let (b, bn) = (&cfg.video.backbone, &cfg.bn);
        if b.width_divisor != 1 && b.meta_arch != MetaArch::Inception3D {
            return Err(ModelError::invalid(
                "VIDEO.BACKBONE.WIDTH_DIVISOR",
                format!(
                    "only Inception3D (S3D-G) reads it; {:?} takes its widths from its own keys",
                    b.meta_arch
                ),
            ));
        }
        Ok(match b.meta_arch {
            MetaArch::ResNet3D => Self::ResNet3D(ResNet3D::new(path, b, bn)?),
            MetaArch::ConvNeXt => Self::ConvNeXt(ConvNeXt::new(path, b)?),
            MetaArch::VisionTransformer => {
                Self::VisionTransformer(Box::new(TAdaFormer::new(path, b, bn)?))
            }
            MetaArch::Transformer => Self::Transformer(Box::new(Transformer::new(path, cfg)?)),
            MetaArch::FactorizedTransformer => {
                Self::FactorizedTransformer(Box::new(FactorizedTransformer::new(path, cfg)?))
            }
            MetaArch::Inception3D => Self::Inception3D(Box::new(Inception3D::new(path, cfg)?)),
            MetaArch::Slowfast => Self::SlowFast(Box::new(SlowFast::new(path, b, bn)?)),
            MetaArch::SimpleLocalizationConv => Self::LocalizationConv(
                SimpleLocalizationConv::new(path, &BackboneSpec::from_config(cfg)?),
            ),
        })
    }

    /// The value VIDEO.BACKBONE.NUM_OUT_FEATURES must have: [`Self::out_features`], except for
    /// SlowFast, where it is the slow pathway's width alone (the reference's head adds the fast
    /// pathway's, NUM_OUT_FEATURES / BETA).
    pub fn num_out_features(&self) -> i64 {
        match self {
            Self::SlowFast(m) => m.num_out_features(),
            other => other.out_features(),
        }
    }

    /// Fewest frames an input clip may have (SlowFast's slow pathway needs ALPHA).
    pub fn min_frames(&self) -> i64 {
        match self {
            Self::SlowFast(m) => m.min_frames(),
            _ => 1,
        }
    }

    /// Width of the features the head receives.
    pub fn out_features(&self) -> i64 {
        match self {
            Self::ResNet3D(m) => m.out_features(),
            Self::ConvNeXt(m) => m.out_features(),
            Self::VisionTransformer(m) => m.out_features(),
            Self::Transformer(m) => m.out_features(),
            Self::FactorizedTransformer(m) => m.out_features(),
            Self::Inception3D(m) => m.out_features(),
            Self::SlowFast(m) => m.out_features(),
            Self::LocalizationConv(m) => m.out_features(),
        }
    }

    /// Channels the backbone expects in its input.
    pub fn in_channels(&self) -> i64 {
        match self {
            Self::ResNet3D(m) => m.in_channels(),
            Self::ConvNeXt(m) => m.in_channels(),
            Self::VisionTransformer(m) => m.in_channels(),
            Self::Transformer(m) => m.in_channels(),
            Self::FactorizedTransformer(m) => m.in_channels(),
            Self::Inception3D(m) => m.in_channels(),
            Self::SlowFast(m) => m.in_channels(),
            Self::LocalizationConv(m) => m.in_channels(),
        }
    }

    /// Whether the backbone takes `h`×`w` frames: TAdaFormer's positional embedding fixes its
    /// patch grid; the others take any size their strides allow. The error is the expected
    /// input.
    pub fn check_side(&self, h: i64, w: i64) -> Result<(), String> {
        match self {
            Self::VisionTransformer(m) => m.check_side(h, w),
            _ => Ok(()),
        }
    }

    /// # Shapes
    /// (N, C, T, H, W) -> (N, D, T', H', W') feature maps, or (N, D) pooled features
    /// (ConvNeXt, VisionTransformer, Transformer, FactorizedTransformer: the class token),
    /// SlowFast's pathways, or for SimpleLocalizationConv (N, C, T) feature sequences ->
    /// (N, DIM1D, T).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Features {
        let map = match self {
            Self::ResNet3D(m) => m.forward_taps(xs, train, taps),
            Self::ConvNeXt(m) => m.forward_taps(xs, train, taps),
            Self::VisionTransformer(m) => m.forward_taps(xs, train, taps),
            Self::Transformer(m) => m.forward_taps(xs, train, taps),
            Self::FactorizedTransformer(m) => m.forward_taps(xs, train, taps),
            Self::Inception3D(m) => m.forward_taps(xs, train, taps),
            Self::SlowFast(m) => return Features::Pathways(m.forward_taps(xs, train, taps)),
            Self::LocalizationConv(m) => {
                let out = m.forward(xs);
                taps.record("backbone", &out);
                out
            }
        };
        Features::Map(map)
    }
}
