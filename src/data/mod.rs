//! Data sources: video decoding (FFmpeg or frame folders), datasets and the parallel loader,
//! plus synthetic sources so the toolkit runs with no data on disk.

pub mod check;
pub mod clips;
pub mod dataset;
pub mod loader;
pub mod media_file;
pub mod mosi_images;
pub mod pipeline;
pub mod synthetic;
pub mod synthetic_video;
pub mod video;
