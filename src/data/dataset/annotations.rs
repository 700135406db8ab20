//! Placeholder until the annotation readers land (UCF101, HMDB51, Kinetics-400, SSv2, images).

use crate::config::schema::{DataConfig, Dataset};

use super::{DatasetError, EntryList, Split};

pub fn read_entries(
    dataset: Dataset,
    _data: &DataConfig,
    _split: Split,
) -> Result<EntryList, DatasetError> {
    Err(DatasetError::NotFound {
        dataset: dataset.name().to_string(),
        looked: "(readers not built yet)".into(),
    })
}
