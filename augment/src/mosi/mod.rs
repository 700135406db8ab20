//! MoSI (Self-supervised Motion Learning from Static Images, CVPR'21): pseudo-motion clips made
//! by sliding a crop window across one image at class-specific speeds.

mod assemble;
mod generator;
mod source;
mod speeds;

pub use generator::{
    AxisMotion, FlipMode, GeneratorConfig, MosiGenerator, MosiSample, Split, Standardize,
};
pub use speeds::{head_num_classes, Axes, LabelMode, Labels, MosiHead, SpeedConfig, SpeedSet};

/// Why a MoSI configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MosiError {
    /// A coupled speed set (every (x, y) pair) needs both axes; the reference raises
    /// NotImplementedError here too (with a message that says the opposite of the cause).
    #[error(
        "PRETRAIN.DATA_MODE {0} with PRETRAIN.DECOUPLE false is not supported: a coupled speed set \
         moves along both axes (use DATA_MODE xy, or DECOUPLE true)"
    )]
    CoupledSingleAxis(&'static str),
    #[error("VIDEO.HEAD.NUM_CLASSES must be at least 2 speeds per axis for MoSI, got {0}")]
    TooFewClasses(usize),
    #[error(
        "image side {len} leaves no room for a moving {crop}-pixel window (DATA.TRAIN_CROP_SIZE)"
    )]
    ImageTooSmall { len: usize, crop: usize },
    #[error("MoSI needs an (H, W, 3) uint8 image, got {0}")]
    BadImage(String),
}
