//! The training loop and what runs around it. [`train`] takes a model (`models::Session`), a task, an
//! optimiser, a schedule and a loader that the caller built, and owns the rest: where the run
//! starts ([`resumes`]), how one step runs, checkpoints, reporting (progress, metrics.jsonl,
//! TensorBoard), stopping on signals, and the run folder with its lock.

mod data_parallel;
mod ema;
mod error;
mod fit;
pub mod metrics;
pub mod precision;
pub mod progress;
mod resume;
pub mod run_dir;
pub mod run_lock;
mod saver;
mod settings;
pub mod signals;
mod step;
mod step_log;
pub mod tensorboard;
pub mod validate;

pub use ema::ModelEma;
pub use error::{describe_checkpoint, TrainError};
pub use fit::{train, Training};
pub use resume::resumes;
pub use saver::BEST_CHECKPOINT;
pub use settings::{LoopSettings, Summary, TrainOptions};
pub use validate::Validation;
