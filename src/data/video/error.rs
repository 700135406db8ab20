//! Why a video could not be read. Every variant names the file, so a loader can log and skip it
//! and `tada data check` can print it as is.

use std::path::PathBuf;

use crate::data::media_file::MediaFileError;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{}: missing", path.display())]
    Missing { path: PathBuf },
    #[error("{}: empty file", path.display())]
    Empty { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a regular file, or too large (a FIFO named `.mp4` would block FFmpeg forever).
    #[error(transparent)]
    File(MediaFileError),
    #[error("{}: not a readable video ({reason})", path.display())]
    Undecodable { path: PathBuf, reason: String },
    #[error("{}: not a video but {format} data (wrong extension?)", path.display())]
    NotAVideo { path: PathBuf, format: String },
    #[error("{}: no video stream", path.display())]
    NoVideoStream { path: PathBuf },
    #[error("{}: truncated: frame {wanted} was asked for but decoding stopped after {decoded} frames", path.display())]
    Truncated {
        path: PathBuf,
        wanted: usize,
        decoded: usize,
    },
    /// Frames decode again after a stretch that does not: the file is damaged inside, so frame
    /// positions after the damage cannot be trusted.
    #[error("{}: damaged inside: decoding fails at frame {frame} and resumes later ({reason})", path.display())]
    Corrupt {
        path: PathBuf,
        frame: usize,
        reason: String,
    },
    #[error("{}: too few frames ({frames}, need at least {needed})", path.display())]
    TooFewFrames {
        path: PathBuf,
        frames: usize,
        needed: usize,
    },
    #[error("{}: frame folder images differ in size ({first} vs {other} in {name})", path.display())]
    MixedFrameSizes {
        path: PathBuf,
        first: String,
        other: String,
        name: String,
    },
    #[error("{}: is a video file, but tada was built without the `video` feature (FFmpeg)", path.display())]
    NoVideoSupport { path: PathBuf },
}

impl DecodeError {
    /// A one-word kind for summaries (`tada data check` counts by it).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "missing",
            Self::Empty { .. } => "empty",
            Self::Io { .. } => "unreadable",
            Self::File(MediaFileError::Missing { .. }) => "missing",
            Self::File(MediaFileError::NotRegular { .. }) => "not a regular file",
            Self::File(MediaFileError::TooLarge { .. }) => "too large",
            Self::File(MediaFileError::Io { .. }) => "unreadable",
            Self::Corrupt { .. } => "corrupt",
            Self::Undecodable { .. } | Self::NoVideoStream { .. } => "undecodable",
            Self::NotAVideo { .. } => "not a video",
            Self::Truncated { .. } => "truncated",
            Self::TooFewFrames { .. } => "too few frames",
            Self::MixedFrameSizes { .. } => "undecodable",
            Self::NoVideoSupport { .. } => "unsupported",
        }
    }
}

impl From<MediaFileError> for DecodeError {
    fn from(e: MediaFileError) -> Self {
        match e {
            MediaFileError::Missing { path } => Self::Missing { path },
            MediaFileError::Io { path, source } => Self::Io { path, source },
            other => Self::File(other),
        }
    }
}
