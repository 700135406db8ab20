//! Backbones (module `backbone`), selected by VIDEO.BACKBONE.META_ARCH.

pub mod convnext;
pub mod resnet3d;
pub mod tadaformer;

use tch::nn;
use tch::Tensor;

use crate::config::schema::{BackboneConfig, BnConfig, MetaArch};
use crate::models::{ModelError, Taps};

pub use convnext::ConvNeXt;
pub use resnet3d::ResNet3D;
pub use tadaformer::TAdaFormer;

/// A video backbone: (N, C, T, H, W) clips to feature maps.
#[derive(Debug)]
pub enum Backbone {
    ResNet3D(ResNet3D),
    ConvNeXt(ConvNeXt),
    VisionTransformer(Box<TAdaFormer>),
}

impl Backbone {
    pub fn new(path: &nn::Path, b: &BackboneConfig, bn: &BnConfig) -> Result<Self, ModelError> {
        match b.meta_arch {
            MetaArch::ResNet3D => Ok(Self::ResNet3D(ResNet3D::new(path, b, bn)?)),
            MetaArch::ConvNeXt => Ok(Self::ConvNeXt(ConvNeXt::new(path, b)?)),
            MetaArch::VisionTransformer => Ok(Self::VisionTransformer(Box::new(TAdaFormer::new(
                path, b, bn,
            )?))),
        }
    }

    /// Width of the features the head receives.
    pub fn out_features(&self) -> i64 {
        match self {
            Self::ResNet3D(m) => m.out_features(),
            Self::ConvNeXt(m) => m.out_features(),
            Self::VisionTransformer(m) => m.out_features(),
        }
    }

    /// Channels the backbone expects in its input.
    pub fn in_channels(&self) -> i64 {
        match self {
            Self::ResNet3D(m) => m.in_channels(),
            Self::ConvNeXt(m) => m.in_channels(),
            Self::VisionTransformer(m) => m.in_channels(),
        }
    }

    /// # Shapes
    /// (N, C, T, H, W) -> (N, D, T', H', W') feature maps, or (N, D) pooled features
    /// (ConvNeXt, VisionTransformer).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        match self {
            Self::ResNet3D(m) => m.forward_taps(xs, train, taps),
            Self::ConvNeXt(m) => m.forward_taps(xs, train, taps),
            Self::VisionTransformer(m) => m.forward_taps(xs, train, taps),
        }
    }
}
