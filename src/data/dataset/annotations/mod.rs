//! Annotation files in each dataset's own published format (docs/datasets.md), read into
//! [`EntryList`]s. The reference's pre-processed `path label` lists
//! (docs/datasets.md#the-references-own-lists) are accepted too, when the published files are
//! absent.

pub mod epic;
mod hmdb51;
mod images;
mod kinetics;
mod lists;
mod ssv2;
mod text;
mod ucf101;

use std::path::{Path, PathBuf};

use crate::config::schema::{DataConfig, Dataset};

use super::{DatasetError, EntryList, Split};

/// The entries of `split` of `dataset`, media under DATA.DATA_ROOT_DIR, annotations under
/// DATA.ANNO_DIR.
pub fn read_entries(
    dataset: Dataset,
    data: &DataConfig,
    split: Split,
) -> Result<EntryList, DatasetError> {
    let dirs = Dirs {
        root: PathBuf::from(data.data_root_dir.first()),
        anno: PathBuf::from(&data.anno_dir),
        split_id: data.split,
    };
    let list = match dataset {
        Dataset::Ucf101 => ucf101::read(&dirs, split)?,
        Dataset::Hmdb51 => hmdb51::read(&dirs, split)?,
        Dataset::Kinetics400 => kinetics::read(&dirs, split)?,
        Dataset::Ssv2 => ssv2::read(&dirs, split)?,
        Dataset::Imagenet => images::read(&dirs, split)?,
        Dataset::Epickitchen100 => epic::read(&dirs, split)?,
        Dataset::SyntheticImages | Dataset::SyntheticVideos => {
            return Err(DatasetError::Invalid {
                path: PathBuf::from(dataset.name()),
                reason: "embedded synthetic data has no annotation files".into(),
            })
        }
        Dataset::Epickitchen100Localization => {
            return Err(DatasetError::Invalid {
                path: PathBuf::from(dataset.name()),
                reason: "holds feature windows for TASK_TYPE localization, not video clips \
                         (docs/localization.md#data)"
                    .into(),
            })
        }
    };
    if list.list.entries.is_empty() {
        return Err(DatasetError::NoSamples {
            dataset: dataset.name().into(),
            split: split.name().into(),
            path: list.source,
        });
    }
    Ok(list.list)
}

/// Where a dataset's files are.
pub(crate) struct Dirs {
    pub root: PathBuf,
    pub anno: PathBuf,
    /// DATA.SPLIT: which official split (UCF101 / HMDB51: 1-3).
    pub split_id: usize,
}

impl Dirs {
    /// The first of `names` that exists in ANNO_DIR (or `None`, with the candidates listed).
    pub fn find_anno(&self, names: &[String]) -> Result<PathBuf, String> {
        names
            .iter()
            .map(|n| self.anno.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                names
                    .iter()
                    .map(|n| self.anno.join(n).display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
    }
}

/// Entries plus the file they came from (for "no samples" errors).
pub(crate) struct Read {
    pub list: EntryList,
    pub source: PathBuf,
}

pub(crate) fn not_found(dataset: Dataset, looked: String) -> DatasetError {
    DatasetError::NotFound {
        dataset: dataset.name().into(),
        looked,
    }
}

/// `root/rel`, with `rel` as written in the annotation (forward slashes).
pub(crate) fn media(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}
