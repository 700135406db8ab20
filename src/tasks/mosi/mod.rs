//! MoSI: pseudo-motion clips made from static images; the network classifies the motion.
//! This folder owns the step from tada's config to the generator of `tada-augment`
//! ([`config`]), the training task ([`task`]) and `tada mosi-preview` ([`preview`]); the
//! generator itself lives in the `tada-augment` crate and the image source in
//! `data::sources::mosi_images`.

pub mod config;
pub mod pictures;
pub mod preview;
pub mod task;

pub use config::{clips_per_item, generator_config, speed_config, MosiConfigError};
pub use task::MosiTask;
