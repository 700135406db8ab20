//! Training views for tada: MoSI pseudo-motion, clip transforms, ParamCrop and crop
//! visualisation. This crate depends on tch and small imaging crates only; tada's config types
//! are mapped onto the plain configuration structs defined here.

pub mod mosi;
pub mod paramcrop;
pub mod transforms;
pub mod visualize;
