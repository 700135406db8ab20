//! Why a task could not be built or could not run a step.

use crate::config::KeyError;
use crate::models::ModelError;

/// A task's failure; the loop reports it as the run's error.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A config value the task cannot use.
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Something the reference has but tada does not build; the message names the key.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A batch or model output the task cannot use.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// A collective across the ranks of a distributed run failed.
    #[error("distributed run: {0}")]
    Dist(#[from] crate::dist::DistError),
}

impl TaskError {
    pub fn config(key: &str, message: impl Into<String>) -> Self {
        Self::Key(KeyError::invalid(key, message))
    }
}
