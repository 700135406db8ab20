//! Temporal action localisation: the reference's BMN baseline on pre-extracted features
//! (configs/projects/epic-kitchen-tal). The network (SimpleLocalizationConv + BaseBMN) is
//! built through [`crate::models::VideoModel`]; the losses, the proposal post-processing and
//! the detection metrics are plain functions over tensors and lists. See docs/localization.md.

pub mod actions;
pub mod backbone;
pub mod bm_layer;
pub mod bmn;
pub mod detect;
pub mod eval;
pub mod features;
pub mod fuse;
pub mod labels;
pub mod loss;
pub mod post;
pub mod spec;
pub mod synthetic;
pub mod tiny;

pub use backbone::SimpleLocalizationConv;
pub use bmn::{BaseBmn, BmnOutput};
pub use spec::{BackboneSpec, HeadSpec, MapSpec};
