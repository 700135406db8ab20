//! Why a model could not be built or run.

/// A model could not be built from its config, or was given an input it cannot take. Config
/// errors name the dotted config key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{key} is not set, but {needed_by} needs it")]
    Missing { key: String, needed_by: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// Something the reference has but tada does not build yet; the message starts with the
    /// component's name and names the key that selected it.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    #[error("model input has shape {got:?}, expected {expected}")]
    Input { expected: String, got: Vec<i64> },
}

impl ModelError {
    pub(crate) fn missing(key: &str, needed_by: &str) -> Self {
        Self::Missing {
            key: key.into(),
            needed_by: needed_by.into(),
        }
    }

    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The config key at fault, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Missing { key, .. } | Self::Invalid { key, .. } => Some(key),
            Self::Unsupported(_) | Self::Input { .. } => None,
        }
    }
}
