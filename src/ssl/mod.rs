//! Pretext tasks: MoSI (and contrastive learning with ParamCrop, with the trainers issue).

pub mod crops;
pub mod mosi;
pub mod mosi_preview;
