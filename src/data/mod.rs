//! Data sources: video decoding (FFmpeg or frame folders), datasets and the parallel loader,
//! plus synthetic sources so the toolkit runs with no data on disk.

pub mod check;
pub mod dataset;
pub mod loader;
pub mod media_file;
pub mod pipeline;
pub mod sources;
pub mod video;
