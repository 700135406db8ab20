//! Image datasets (the MoSI source): the reference's list files `imagenet_train.txt` /
//! `imagenet_val.txt` in ANNO_DIR (`relative/path LABEL`, media under DATA_ROOT_DIR), or else an
//! ImageNet-style folder: DATA_ROOT_DIR/{train|val}/<class>/*.{jpeg,jpg,png} when that split
//! folder exists, DATA_ROOT_DIR/<class>/… otherwise, classes sorted by name.

use std::path::{Path, PathBuf};

use crate::config::schema::Dataset;
use crate::data::dataset::{DatasetError, Entry, EntryList, Split};

use super::{lists, not_found, Dirs, Read};

const EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    v
}

pub fn read(dirs: &Dirs, split: Split) -> Result<Read, DatasetError> {
    let list = match split {
        Split::Train => "imagenet_train.txt",
        Split::Val | Split::Test => "imagenet_val.txt",
    };
    if let Ok(p) = dirs.find_anno(&[list.to_string()]) {
        return lists::read(&p, &dirs.root);
    }
    let split_dir = dirs.root.join(match split {
        Split::Train => "train",
        Split::Val | Split::Test => "val",
    });
    let base = if split_dir.is_dir() {
        split_dir
    } else {
        dirs.root.clone()
    };
    let class_dirs: Vec<PathBuf> = sorted_dir(&base)
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    let mut entries = Vec::new();
    let mut classes = Vec::new();
    for (label, dir) in class_dirs.iter().enumerate() {
        let class = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for file in sorted_dir(dir) {
            let image = file
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if image {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                entries.push(Entry {
                    id: format!("{class}/{}", name.unwrap_or_default()),
                    path: file,
                    label: label as i64,
                });
            }
        }
        classes.push(class);
    }
    if class_dirs.is_empty() {
        return Err(not_found(
            Dataset::Imagenet,
            format!(
                "{} in {}, or class folders in {}",
                list,
                dirs.anno.display(),
                base.display()
            ),
        ));
    }
    Ok(Read {
        list: EntryList { entries, classes },
        source: base,
    })
}
