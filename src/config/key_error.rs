//! The one error type for "this config value cannot be used", shared by every component that
//! reads a config section (models, optimiser, tasks, runs). It names the dotted key; the
//! command that loaded the config adds the file (or `--set`) the value came from
//! ([`KeyError::with_origin`]), which only the loaded config knows.

use std::fmt;

use super::source::{Source, Sources};

/// What is wrong with the value at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// The key is not set, and `needed_by` needs it.
    Missing { needed_by: String },
    /// The value cannot be used; the message says why.
    Invalid(String),
}

/// A config value a component cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct KeyError {
    /// Dotted key, e.g. `OPTIMIZER.LAYER_WISE_LR_DECAY`.
    pub key: String,
    pub problem: KeyProblem,
    /// Where the value came from, once a command has looked it up.
    pub origin: Option<Source>,
}

impl KeyError {
    pub fn missing(key: &str, needed_by: &str) -> Self {
        Self {
            key: key.into(),
            problem: KeyProblem::Missing {
                needed_by: needed_by.into(),
            },
            origin: None,
        }
    }

    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: KeyProblem::Invalid(message.into()),
            origin: None,
        }
    }

    /// The same error naming where the value came from (a file, `--set`); values left at the
    /// built-in defaults add nothing.
    pub fn with_origin(mut self, sources: &Sources) -> Self {
        self.set_origin(sources);
        self
    }

    /// [`KeyError::with_origin`] in place.
    pub fn set_origin(&mut self, sources: &Sources) {
        self.origin = match sources.of(&self.key) {
            Source::Default => None,
            s => Some(s),
        };
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self
            .origin
            .as_ref()
            .map(|o| format!(" (from {o})"))
            .unwrap_or_default();
        match &self.problem {
            KeyProblem::Missing { needed_by } => {
                write!(f, "{}{from} is not set, but {needed_by} needs it", self.key)
            }
            KeyProblem::Invalid(message) => write!(f, "{}{from}: {message}", self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_file_the_value_came_from() {
        let e = KeyError::invalid("OPTIMIZER.BASE_LR", "too big");
        assert_eq!(e.to_string(), "OPTIMIZER.BASE_LR: too big");
        let mut sources = Sources::default();
        sources.set("OPTIMIZER", Source::File("run.yaml".into()));
        assert_eq!(
            e.with_origin(&sources).to_string(),
            "OPTIMIZER.BASE_LR (from run.yaml): too big"
        );
        let m = KeyError::missing("VIDEO.BACKBONE.DEPTH", "the layer-wise decay");
        assert_eq!(
            m.with_origin(&Sources::default()).to_string(),
            "VIDEO.BACKBONE.DEPTH is not set, but the layer-wise decay needs it"
        );
    }
}
