//! Pretext tasks: MoSI, and contrastive learning with random cubic crops or ParamCrop.

pub mod contrastive;
pub mod crops;
pub mod mosi;
pub mod mosi_preview;
