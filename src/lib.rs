//! tada: self-supervised video pretraining (MoSI, ParamCrop) of TAdaConv backbones on libtorch.
//!
//! Data flows one way: config -> dataset -> augment -> loader -> model -> pretext loss ->
//! optimizer -> checkpoint/logs. The `tada` binary only parses arguments and calls this library.

pub mod atomic_write;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod cuda_shim;
pub mod data;
pub mod dist;
pub mod info;
pub mod localization;
pub mod logging;
pub mod models;
pub mod optim;
pub mod output_path;
pub mod runs;
pub mod step_guard;
pub mod tasks;
pub mod train;
pub mod viz;
