//! HMDB51's `testTrainMulti_7030_splits`: one `<class>_test_split<N>.txt` per class and split,
//! lines `<video>.avi <tag>` with tag 1 = train, 2 = test, 0 = unused. Classes are the sorted
//! class names; media at DATA_ROOT_DIR/<class>/<video>. Files in ANNO_DIR or
//! ANNO_DIR/testTrainMulti_7030_splits.

use std::path::PathBuf;

use crate::config::schema::Dataset;
use crate::data::dataset::{DatasetError, Entry, EntryList, Split};

use super::text::{lines, parse_err, read as read_text};
use super::{lists, not_found, Dirs, Read};

const SUBDIR: &str = "testTrainMulti_7030_splits";

/// `(class, file)` for every split file of split `id` in `dir`, sorted by class.
fn split_files(dir: &std::path::Path, id: usize) -> Vec<(String, PathBuf)> {
    let suffix = format!("_test_split{id}.txt");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let class = name.strip_suffix(&suffix)?.to_string();
            Some((class, e.path()))
        })
        .collect();
    v.sort();
    v
}

pub fn read(dirs: &Dirs, split: Split) -> Result<Read, DatasetError> {
    let mut files = split_files(&dirs.anno, dirs.split_id);
    if files.is_empty() {
        files = split_files(&dirs.anno.join(SUBDIR), dirs.split_id);
    }
    if files.is_empty() {
        let reference = match split {
            Split::Train => "hmdb51_train_list.txt",
            Split::Val | Split::Test => "hmdb51_test_list.txt",
        };
        return match dirs.find_anno(&[reference.to_string()]) {
            Ok(p) => lists::read(&p, &dirs.root),
            Err(_) => Err(not_found(
                Dataset::Hmdb51,
                format!(
                    "*_test_split{}.txt in {} or {} (or the reference's {reference})",
                    dirs.split_id,
                    dirs.anno.display(),
                    dirs.anno.join(SUBDIR).display()
                ),
            )),
        };
    }
    let want = match split {
        Split::Train => "1",
        Split::Val | Split::Test => "2",
    };
    let mut entries = Vec::new();
    let classes: Vec<String> = files.iter().map(|(c, _)| c.clone()).collect();
    for (label, (class, file)) in files.iter().enumerate() {
        let text = read_text(file)?;
        for (n, line) in lines(&text) {
            let mut parts = line.split_whitespace();
            let (Some(video), Some(tag)) = (parts.next(), parts.next()) else {
                return Err(parse_err(file, n, "expected `VIDEO TAG`"));
            };
            if !matches!(tag, "0" | "1" | "2") {
                return Err(parse_err(file, n, format!("tag `{tag}` is not 0, 1 or 2")));
            }
            if tag == want {
                let rel = format!("{class}/{video}");
                entries.push(Entry {
                    path: dirs.root.join(class).join(video),
                    label: label as i64,
                    id: rel,
                });
            }
        }
    }
    Ok(Read {
        list: EntryList { entries, classes },
        source: files[0].1.parent().map(PathBuf::from).unwrap_or_default(),
    })
}
