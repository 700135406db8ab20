//! Configuration errors. Each renders as one line naming the file and the key at fault.

use std::path::PathBuf;

use super::source::Source;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid YAML in {path}: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: the top level must be a mapping of keys, found {found}")]
    NotAMapping { path: PathBuf, found: &'static str },
    #[error("{file}: {key} names a base file that does not exist: {base}")]
    MissingBase {
        file: PathBuf,
        key: String,
        base: PathBuf,
    },
    #[error("{file}: {key} must be a path string")]
    BadBaseKey { file: PathBuf, key: String },
    #[error("{file}: {key} is not allowed in a config given as text (there is no folder to resolve it against)")]
    BaseWithoutFolder { file: PathBuf, key: String },
    #[error("config include cycle: {chain}")]
    IncludeCycle { chain: String },
    #[error("unknown config key {key} in {origin}{}", suggestion_text(.suggestion))]
    UnknownKey {
        key: String,
        origin: Source,
        suggestion: Option<String>,
    },
    #[error("wrong type for config key {key} (from {origin}): {message}")]
    WrongType {
        key: String,
        origin: Source,
        message: String,
    },
    #[error("missing required config key {key}: {hint}")]
    Missing { key: String, hint: String },
    #[error("invalid value for config key {key} (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: Source,
        message: String,
    },
    #[error("bad --set {arg:?}: {message}")]
    BadOverride { arg: String, message: String },
}

fn suggestion_text(s: &Option<String>) -> String {
    s.as_ref()
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default()
}
