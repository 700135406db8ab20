//! Errors of reading and writing evaluation files: each names the file and, for a malformed
//! file, the JSON path of the field at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalFileError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not valid JSON: {source}")]
    Json {
        file: PathBuf,
        source: serde_json::Error,
    },
    /// A field that is missing or holds the wrong kind of value; `field` is its JSON path,
    /// e.g. `database.P01_11.annotations[2].segment`.
    #[error("{file}: {field}: {problem}")]
    Field {
        file: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{file}: cannot write: {source}")]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Inputs a metric is undefined on (no ground truth, no proposal kept).
    #[error("{0}")]
    Undefined(String),
}
