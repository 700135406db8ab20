//! Training infrastructure: run folders, metrics, TensorBoard logs, progress reporting.

pub mod metrics;
pub mod optim;
pub mod progress;
pub mod run_dir;
pub mod tensorboard;
