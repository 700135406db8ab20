//! Kinetics-400 as distributed: `train.csv`, `validate.csv`, `test.csv` (or
//! `kinetics400_{train,val,test}.csv`) with header `label,youtube_id,time_start,time_end,split`.
//! Class indices are the sorted label names of the train csv, so every split agrees. The test
//! split reads the validation csv (the usual evaluation set), or test.csv when there is none.
//!
//! A clip is the file `<youtube_id>_<time_start:06>_<time_end:06>.<mp4|mkv|webm>`, looked for in
//! DATA_ROOT_DIR/<split dir>/<label>/, DATA_ROOT_DIR/<label>/, then DATA_ROOT_DIR/ (labels also
//! with spaces as underscores); when none exists the first candidate is used, so the loader and
//! `tada data check` report it missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::schema::Dataset;
use crate::data::dataset::{DatasetError, Entry, EntryList, Split};

use super::text::parse_err;
use super::{lists, not_found, Dirs, Read};

struct Row {
    line: usize,
    label: String,
    id: String,
    start: u64,
    end: u64,
}

fn rows(path: &Path) -> Result<Vec<Row>, DatasetError> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let headers = r.headers().map_err(|e| DatasetError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| DatasetError::Invalid {
                path: path.to_path_buf(),
                reason: format!("no `{name}` column in the header"),
            })
    };
    let (l, y, s, e) = (
        col("label")?,
        col("youtube_id")?,
        col("time_start")?,
        col("time_end")?,
    );
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| DatasetError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let field = |i: usize| rec.get(i).unwrap_or_default().to_string();
        let time = |i: usize| -> Result<u64, DatasetError> {
            let v = field(i);
            v.parse::<f64>()
                .map(|t| t as u64)
                .map_err(|_| parse_err(path, line, format!("time `{v}` is not a number")))
        };
        if rec.iter().all(str::is_empty) {
            continue;
        }
        out.push(Row {
            line,
            label: field(l),
            id: field(y),
            start: time(s)?,
            end: time(e)?,
        });
    }
    Ok(out)
}

fn clip_path(root: &Path, split_dir: &str, row: &Row) -> PathBuf {
    let stem = format!("{}_{:06}_{:06}", row.id, row.start, row.end);
    let underscored = row.label.replace(' ', "_");
    let mut dirs = vec![
        root.join(split_dir).join(&row.label),
        root.join(split_dir).join(&underscored),
        root.join(&row.label),
        root.join(&underscored),
        root.to_path_buf(),
    ];
    dirs.dedup();
    let candidates: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| ["mp4", "mkv", "webm"].map(|ext| d.join(format!("{stem}.{ext}"))))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or(&candidates[0])
        .clone()
}

pub fn read(dirs: &Dirs, split: Split) -> Result<Read, DatasetError> {
    let names = |s: &[&str]| s.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let (files, split_dir, reference) = match split {
        Split::Train => (
            names(&["train.csv", "kinetics400_train.csv"]),
            "train",
            "kinetics400_train_list.txt",
        ),
        Split::Val => (
            names(&["validate.csv", "kinetics400_val.csv"]),
            "val",
            "kinetics400_val_list.txt",
        ),
        Split::Test => (
            names(&[
                "validate.csv",
                "kinetics400_val.csv",
                "test.csv",
                "kinetics400_test.csv",
            ]),
            "val",
            "kinetics400_test_list.txt",
        ),
    };
    let csv_path = match dirs.find_anno(&files) {
        Ok(p) => p,
        Err(looked) => {
            return match dirs.find_anno(&[reference.to_string()]) {
                Ok(p) => lists::read(&p, &dirs.root),
                Err(_) => Err(not_found(
                    Dataset::Kinetics400,
                    format!("{looked} (or the reference's {reference})"),
                )),
            }
        }
    };
    let rows = rows(&csv_path)?;
    let train_rows = match dirs.find_anno(&names(&["train.csv", "kinetics400_train.csv"])) {
        Ok(p) if p != csv_path => self::rows(&p)?,
        _ => Vec::new(),
    };
    let label_rows = if train_rows.is_empty() {
        &rows
    } else {
        &train_rows
    };
    let classes: Vec<String> = label_rows
        .iter()
        .map(|r| r.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let label = classes.binary_search(&row.label).map_err(|_| {
            parse_err(
                &csv_path,
                row.line,
                format!("label `{}` is not a class of the train csv", row.label),
            )
        })?;
        entries.push(Entry {
            path: clip_path(&dirs.root, split_dir, row),
            label: label as i64,
            id: format!("{}_{:06}_{:06}", row.id, row.start, row.end),
        });
    }
    Ok(Read {
        list: EntryList { entries, classes },
        source: csv_path,
    })
}
