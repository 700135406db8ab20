//! UCF101's `ucfTrainTestlist`: `classInd.txt` ("1 ApplyEyeMakeup"), `trainlist0N.txt`
//! ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1", 1-based label) and `testlist0N.txt` (path
//! only; the label is the class folder's). Files in ANNO_DIR or ANNO_DIR/ucfTrainTestlist.

use std::collections::HashMap;
use std::path::Path;

use crate::config::schema::Dataset;
use crate::data::dataset::{DatasetError, Entry, EntryList, Split};

use super::text::{lines, parse_err, read as read_text};
use super::{lists, media, not_found, Dirs, Read};

fn candidates(name: &str) -> Vec<String> {
    vec![name.to_string(), format!("ucfTrainTestlist/{name}")]
}

pub fn read(dirs: &Dirs, split: Split) -> Result<Read, DatasetError> {
    let list_name = match split {
        Split::Train => format!("trainlist{:02}.txt", dirs.split_id),
        Split::Val | Split::Test => format!("testlist{:02}.txt", dirs.split_id),
    };
    let (Ok(class_file), Ok(list)) = (
        dirs.find_anno(&candidates("classInd.txt")),
        dirs.find_anno(&candidates(&list_name)),
    ) else {
        let reference = match split {
            Split::Train => "ucf101_train_list.txt",
            Split::Val | Split::Test => "ucf101_test_list.txt",
        };
        return match dirs.find_anno(&[reference.to_string()]) {
            Ok(p) => lists::read(&p, &dirs.root),
            Err(_) => Err(not_found(
                Dataset::Ucf101,
                format!(
                    "classInd.txt and {list_name} (or the reference's {reference}) in {}",
                    dirs.anno.display()
                ),
            )),
        };
    };
    let classes = class_index(&class_file)?;
    let by_name: HashMap<&str, i64> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as i64))
        .collect();
    let text = read_text(&list)?;
    let mut entries = Vec::new();
    for (n, line) in lines(&text) {
        let mut parts = line.split_whitespace();
        let rel = parts.next().unwrap_or_default();
        let label = match parts.next() {
            Some(l) => {
                let l: i64 = l
                    .parse()
                    .map_err(|_| parse_err(&list, n, format!("label `{l}` is not a number")))?;
                if l < 1 || l > classes.len() as i64 {
                    return Err(parse_err(
                        &list,
                        n,
                        format!("label {l} is outside classInd.txt's 1..={}", classes.len()),
                    ));
                }
                l - 1
            }
            None => {
                let class = rel.split('/').next().unwrap_or_default();
                *by_name.get(class).ok_or_else(|| {
                    parse_err(&list, n, format!("class `{class}` is not in classInd.txt"))
                })?
            }
        };
        entries.push(Entry {
            path: media(&dirs.root, rel),
            label,
            id: rel.to_string(),
        });
    }
    Ok(Read {
        list: EntryList { entries, classes },
        source: list,
    })
}

/// Class names by 0-based index from `classInd.txt`.
pub(super) fn class_index(path: &Path) -> Result<Vec<String>, DatasetError> {
    let text = read_text(path)?;
    let mut classes: Vec<(i64, String)> = Vec::new();
    for (n, line) in lines(&text) {
        let mut parts = line.split_whitespace();
        let (Some(i), Some(name)) = (parts.next(), parts.next()) else {
            return Err(parse_err(path, n, "expected `INDEX NAME`"));
        };
        let i: i64 = i
            .parse()
            .map_err(|_| parse_err(path, n, format!("index `{i}` is not a number")))?;
        classes.push((i, name.to_string()));
    }
    classes.sort_by_key(|(i, _)| *i);
    for (k, (i, _)) in classes.iter().enumerate() {
        if *i != k as i64 + 1 {
            return Err(DatasetError::Invalid {
                path: path.to_path_buf(),
                reason: format!(
                    "class indices must run 1..=N without gaps; {} is missing",
                    k + 1
                ),
            });
        }
    }
    Ok(classes.into_iter().map(|(_, n)| n).collect())
}
