//! `tada bench`: throughput measurements (benchmarks, not tests).

pub mod contrastive;
pub mod data;
pub mod loader;
pub mod model;
