//! Datasets: annotation files in each dataset's real published format, turned into a list of
//! labelled media files ([`Entry`]), plus the embedded synthetic sources.

pub mod annotations;
mod error;
mod names;

use std::path::PathBuf;

pub use error::DatasetError;
pub use names::{class_names, fill_class_names};

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    /// In-training validation: test files, one random view each (as the reference's "val").
    Val,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// One labelled media file: a video, a folder of frames, or an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    /// 0-based class index.
    pub label: i64,
    /// Stable id for reports and multi-view score fusion (the path relative to the data root,
    /// or the dataset's own video id).
    pub id: String,
}

/// A dataset's entries and class names.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryList {
    pub entries: Vec<Entry>,
    /// Class names by index (empty when the annotation format has none).
    pub classes: Vec<String>,
}
