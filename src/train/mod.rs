//! Training infrastructure: run folders, metrics, TensorBoard logs, progress reporting, and the
//! training loop with its tasks (MoSI and contrastive pretraining, fine-tuning, linear probe).

mod error;
pub mod metrics;
pub mod precision;
pub mod progress;
pub mod run_dir;
pub mod run_lock;
pub mod signals;
pub mod step_guard;
pub mod tensorboard;
pub mod trainer;

pub use error::TrainError;
pub use trainer::{train, Session, Summary, TrainOptions};
