//! End-to-end tests, built as one binary so libtorch is linked once.

mod backbone_sweep;
mod bad_samples;
mod checkpoint;
mod cli;
mod common;
mod config;
mod configs;
mod contrastive_e2e;
mod cuda;
mod datasets;
mod demo;
mod image_data;
mod import;
mod import_hostile;
mod linking;
mod loader;
mod logging;
mod media;
mod micro_batch;
mod model_fixtures;
mod mosi_frames;
mod ops_fixtures;
mod signal_resume;
mod step_failure;
mod train_e2e;
mod video_decode;
