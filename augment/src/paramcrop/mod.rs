//! ParamCrop: a differentiable parametric 3-D cubic crop (docs/paramcrop.md). A cube per sample and
//! view becomes a 3-D affine warp; trilinear `grid_sample` cuts and resizes the view in one op,
//! so the contrastive loss has gradients with respect to the cube. A gradient-reversal layer
//! lets the same backward pass train the crop to *raise* the loss while the backbone lowers it.

pub mod cube;
mod grl;
mod net;

pub use cube::{centre_distance, iou, Cube, CubeOverlap};
pub use grl::gradient_reversal;
pub use net::{ParamCropConfig, ParamNet};

/// Why a crop could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ParamCropError {
    #[error("ParamCrop needs a (B, C, T, H, W) float clip, got {0:?}")]
    BadClip(Vec<i64>),
    #[error("cube batch {cubes} does not match clip batch {clips}")]
    BatchMismatch { cubes: i64, clips: i64 },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
