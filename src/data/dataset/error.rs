//! Errors reading a dataset's annotations. Each names the file and, where it applies, the line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{dataset}: no annotation file found; looked for {looked}")]
    NotFound { dataset: String, looked: String },
    #[error("{dataset} {split}: the annotation lists no samples ({})", path.display())]
    NoSamples {
        dataset: String,
        split: String,
        path: PathBuf,
    },
}
