//! Backbones (module `backbone`), selected by VIDEO.BACKBONE.META_ARCH.

pub mod convnext;
pub mod resnet3d;
pub mod tadaformer;
pub mod transformer;
pub mod vivit_fe;

use tch::nn;
use tch::Tensor;

use crate::config::schema::MetaArch;
use crate::config::Config;
use crate::localization::{BackboneSpec, SimpleLocalizationConv};
use crate::models::{ModelError, Taps};

pub use convnext::ConvNeXt;
pub use resnet3d::ResNet3D;
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
    /// BMN's 1-D convolutions over feature sequences (crate::localization).
    LocalizationConv(SimpleLocalizationConv),
}

impl Backbone {
    /// Built from VIDEO.BACKBONE and BN; the ViViT / TimeSformer backbones also read the DATA
    /// keys that size their positional embeddings (TRAIN_CROP_SIZE, NUM_INPUT_FRAMES).
    pub fn new(path: &nn::Path, cfg: &Config) -> Result<Self, ModelError> {
        let (b, bn) = (&cfg.video.backbone, &cfg.bn);
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
            MetaArch::SimpleLocalizationConv => Self::LocalizationConv(
                SimpleLocalizationConv::new(path, &BackboneSpec::from_config(cfg)?),
            ),
        })
    }

    /// Width of the features the head receives.
    pub fn out_features(&self) -> i64 {
        match self {
            Self::ResNet3D(m) => m.out_features(),
            Self::ConvNeXt(m) => m.out_features(),
            Self::VisionTransformer(m) => m.out_features(),
            Self::Transformer(m) => m.out_features(),
            Self::FactorizedTransformer(m) => m.out_features(),
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
    /// (ConvNeXt, VisionTransformer, Transformer, FactorizedTransformer: the class token);
    /// SimpleLocalizationConv: (N, C, T) feature sequences -> (N, DIM1D, T).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        match self {
            Self::ResNet3D(m) => m.forward_taps(xs, train, taps),
            Self::ConvNeXt(m) => m.forward_taps(xs, train, taps),
            Self::VisionTransformer(m) => m.forward_taps(xs, train, taps),
            Self::Transformer(m) => m.forward_taps(xs, train, taps),
            Self::FactorizedTransformer(m) => m.forward_taps(xs, train, taps),
            Self::LocalizationConv(m) => {
                let out = m.forward(xs);
                taps.record("backbone", &out);
                out
            }
        }
    }
}
