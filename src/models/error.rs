//! Why a model could not be built or run.

use crate::config::KeyError;

/// A model could not be built from its config, or was given an input it cannot take. Config
/// errors name the dotted config key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Something the reference has but tada does not build yet; the message starts with the
    /// component's name and names the key that selected it.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    #[error("model input has shape {got:?}, expected {expected}")]
    Input { expected: String, got: Vec<i64> },
}

impl ModelError {
    pub(crate) fn missing(key: &str, needed_by: &str) -> Self {
        Self::Key(KeyError::missing(key, needed_by))
    }

    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Key(KeyError::invalid(key, message))
    }

    /// A size key that must be set (by `needed_by`) and at least 1, as an i64.
    pub(crate) fn positive(key: &str, v: Option<usize>, needed_by: &str) -> Result<i64, Self> {
        let v = v.ok_or_else(|| Self::missing(key, needed_by))?;
        if v == 0 {
            return Err(Self::invalid(key, "must be at least 1"));
        }
        i64::try_from(v).map_err(|_| Self::invalid(key, format!("{v} is too large")))
    }

    /// A dropout-like rate key, in [0, 1).
    pub(crate) fn rate(key: &str, v: f64) -> Result<f64, Self> {
        match (0.0..1.0).contains(&v) {
            true => Ok(v),
            false => Err(Self::invalid(key, format!("must be in [0, 1), got {v}"))),
        }
    }

    /// The config key at fault, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Key(k) => Some(&k.key),
            Self::Unsupported(_) | Self::Input { .. } => None,
        }
    }
}
