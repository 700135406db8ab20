//! Training infrastructure: run folders, metrics, TensorBoard logs, progress reporting, and the
//! training loop with its tasks (MoSI and contrastive pretraining, fine-tuning, linear probe).

pub mod classify_task;
pub mod contrastive_task;
pub mod demo;
mod error;
pub mod evaluate;
pub mod metrics;
pub mod mosi_task;
pub mod optim;
pub mod precision;
pub mod progress;
pub mod run_dir;
pub mod run_lock;
pub mod runs;
pub mod signals;
pub mod step_guard;
pub mod task;
pub mod tensorboard;
pub mod trainer;

pub use error::TrainError;
pub use task::{Task, TaskLoss};
pub use trainer::{train, Session, Summary, TrainOptions};
