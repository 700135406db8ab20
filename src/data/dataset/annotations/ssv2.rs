//! Something-Something v2 as distributed: `something-something-v2-labels.json` (template ->
//! index string) and `something-something-v2-{train,validation}.json` (lists of `{id, label,
//! template, placeholders}`); the class is the template with its brackets removed. The test split
//! reads the validation list (the official test list has no labels). Media DATA_ROOT_DIR/<id>.webm,
//! or <id>.mp4 when that exists (the reference converts to mp4). The reference's pre-processed
//! `*-with-label.json` (with `label_idx`) is read when the published files are absent.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::config::schema::Dataset;
use crate::data::dataset::{DatasetError, Entry, EntryList, Split};

use super::text::{parse_err, read as read_text};
use super::{not_found, Dirs, Read};

fn json(path: &Path) -> Result<Value, DatasetError> {
    serde_json::from_str(&read_text(path)?).map_err(|e| parse_err(path, e.line(), e.to_string()))
}

fn media(root: &Path, id: &str) -> std::path::PathBuf {
    let mp4 = root.join(format!("{id}.mp4"));
    if mp4.is_file() {
        mp4
    } else {
        root.join(format!("{id}.webm"))
    }
}

fn id_of(v: &Value) -> Option<String> {
    match &v["id"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

const LABELS_NAME: &str = "something-something-v2-labels.json";

/// The published list of `split`, and the reference's pre-processed one.
fn list_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => (
            "something-something-v2-train.json",
            "something-something-v2-train-with-label.json",
        ),
        Split::Val | Split::Test => (
            "something-something-v2-validation.json",
            "something-something-v2-validation-with-label.json",
        ),
    }
}

pub fn read(dirs: &Dirs, split: Split) -> Result<Read, DatasetError> {
    let (list_name, reference) = list_names(split);
    let (Ok(labels_path), Ok(list_path)) = (
        dirs.find_anno(&[LABELS_NAME.into()]),
        dirs.find_anno(&[list_name.into()]),
    ) else {
        return match dirs.find_anno(&[reference.into()]) {
            Ok(p) => read_reference(&p, &dirs.root),
            Err(_) => Err(not_found(
                Dataset::Ssv2,
                format!(
                    "{LABELS_NAME} and {list_name} (or the reference's {reference}) in {}",
                    dirs.anno.display()
                ),
            )),
        };
    };
    let (by_template, classes) = read_labels(&labels_path)?;
    let entries = read_list(&list_path, &by_template, &dirs.root)?;
    Ok(Read {
        list: EntryList { entries, classes },
        source: list_path,
    })
}

/// The labels file: the class index of each template, and the templates by index.
fn read_labels(path: &Path) -> Result<(HashMap<String, i64>, Vec<String>), DatasetError> {
    let Value::Object(map) = json(path)? else {
        return Err(DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: "expected an object of template -> index".into(),
        });
    };
    let mut by_template = HashMap::new();
    let mut classes = vec![String::new(); map.len()];
    for (template, index) in &map {
        let i: usize = match index {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            _ => None,
        }
        .filter(|i| *i < map.len())
        .ok_or_else(|| DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: format!(
                "`{template}`: index {index} is not a number below {}",
                map.len()
            ),
        })?;
        classes[i] = template.clone();
        by_template.insert(template.clone(), i as i64);
    }
    Ok((by_template, classes))
}

/// A published list: each video is labelled by its template, brackets removed.
fn read_list(
    path: &Path,
    by_template: &HashMap<String, i64>,
    root: &Path,
) -> Result<Vec<Entry>, DatasetError> {
    let Value::Array(items) = json(path)? else {
        return Err(DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: "expected a list of videos".into(),
        });
    };
    let mut entries = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let bad = |why: String| DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: format!("entry {k}: {why}"),
        };
        let id = id_of(item).ok_or_else(|| bad("no `id`".into()))?;
        let template = item["template"]
            .as_str()
            .ok_or_else(|| bad(format!("video {id} has no `template`")))?
            .replace(['[', ']'], "");
        let label = *by_template.get(&template).ok_or_else(|| {
            bad(format!(
                "video {id}: template `{template}` is not in {LABELS_NAME}"
            ))
        })?;
        entries.push(Entry {
            path: media(root, &id),
            label,
            id,
        });
    }
    Ok(entries)
}

/// The reference's `*-with-label.json`: `{id, label_idx}` objects.
fn read_reference(path: &Path, root: &Path) -> Result<Read, DatasetError> {
    let Value::Array(items) = json(path)? else {
        return Err(DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: "expected a list of videos".into(),
        });
    };
    let mut entries = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let (Some(id), Some(label)) = (id_of(item), item["label_idx"].as_i64()) else {
            return Err(DatasetError::Invalid {
                path: path.to_path_buf(),
                reason: format!("entry {k}: needs `id` and an integer `label_idx`"),
            });
        };
        entries.push(Entry {
            path: media(root, &id),
            label,
            id,
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
