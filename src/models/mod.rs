//! Video models: a backbone and a head under the reference's module names, so that parameter
//! paths equal the reference's state_dict keys (`backbone.…`, `head.…`).

pub mod backbones;
mod error;
pub mod heads;
pub mod inference;
pub mod ops;
mod session;
pub mod summary;
mod taps;
pub mod video_model;

pub use error::ModelError;
pub use session::{device_for, Session};
pub use taps::Taps;
pub use video_model::{ModelOutput, VideoModel};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
