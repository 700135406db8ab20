//! Video models: a backbone and a head under the reference's module names, so that parameter
//! paths equal the reference's state_dict keys (`backbone.…`, `head.…`).

pub mod backbones;
mod error;
pub mod heads;
mod taps;

pub use error::ModelError;
pub use taps::Taps;

#[cfg(test)]
mod test_support;
