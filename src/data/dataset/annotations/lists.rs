//! The reference's own lists (docs/datasets.md#the-references-own-lists): `relative/path LABEL` per
//! line, 0-based labels.

use std::path::Path;

use crate::data::dataset::{DatasetError, Entry, EntryList};

use super::text::{lines, parse_err, read as read_text};
use super::{media, Read};

pub fn read(path: &Path, root: &Path) -> Result<Read, DatasetError> {
    let text = read_text(path)?;
    let mut entries = Vec::new();
    for (n, line) in lines(&text) {
        let Some((rel, label)) = line.rsplit_once(char::is_whitespace) else {
            return Err(parse_err(path, n, "expected `PATH LABEL`"));
        };
        let label: i64 = label
            .trim()
            .parse()
            .map_err(|_| parse_err(path, n, format!("label `{}` is not a number", label.trim())))?;
        if label < 0 {
            return Err(parse_err(
                path,
                n,
                "labels are 0-based and cannot be negative",
            ));
        }
        let rel = rel.trim();
        entries.push(Entry {
            path: media(root, rel),
            label,
            id: rel.to_string(),
        });
    }
    Ok(Read {
        list: EntryList {
            entries,
            classes: Vec::new(),
        },
        source: path.to_path_buf(),
    })
}
