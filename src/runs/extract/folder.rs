//! The output folder of `tada extract-features`: its metadata, its clip files (each written
//! atomically) and the two list files, rewritten after every finished video, so that a run
//! stopped at any point leaves only finished videos listed and a rerun skips them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::Tensor;

use super::layout::{
    clip_lines, clip_spans, length_line, parse_lists, ClipSpan, RowGrid, VideoRecord, CLIPS_LIST,
    CLS_DIR, LENGTHS_LIST, METADATA,
};
use super::rows::VideoRows;
use super::ExtractError;
use crate::atomic_write;

/// Metadata entries that may change between two runs into one folder: the same weights can be
/// moved, a newer tada writes the same layout, and logits can be added by a later run (which
/// then redoes the videos that lack them).
const FREE_METADATA: [&str; 4] = ["tada_version", "config", "weights", "classifier"];

/// An output folder opened for writing.
pub struct Folder {
    dir: PathBuf,
    classifier: bool,
    /// Every finished video, from earlier runs and this one.
    records: Vec<VideoRecord>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The text of `path`, empty when it does not exist.
fn read_or_empty(path: &Path) -> Result<String, ExtractError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// `meta` without the entries that may differ between runs.
fn fixed(meta: &Value) -> Value {
    let mut m = meta.clone();
    if let Some(o) = m.as_object_mut() {
        for k in FREE_METADATA {
            o.remove(k);
        }
    }
    m
}

impl Folder {
    /// Creates or reopens `dir`. A folder holding features made otherwise (another model,
    /// grid or crops: its features.json differs) is refused unless `overwrite`; otherwise its
    /// finished videos are read from the list files.
    pub fn open(
        dir: &Path,
        meta: &Value,
        overwrite: bool,
        classifier: bool,
    ) -> Result<Self, ExtractError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        if classifier {
            let cls = dir.join(CLS_DIR);
            std::fs::create_dir_all(&cls).map_err(io_error(&cls))?;
        }
        let meta_path = dir.join(METADATA);
        let old = read_or_empty(&meta_path)?;
        if !old.is_empty() && !overwrite {
            let old: Value = serde_json::from_str(&old).unwrap_or(Value::Null);
            if fixed(&old) != fixed(meta) {
                return Err(ExtractError::Invalid(format!(
                    "{} holds features made otherwise (its {METADATA} differs from this run's: \
                     model, weights, grid or crops); use another -o folder, or --overwrite",
                    dir.display()
                )));
            }
        }
        let text = serde_json::to_string_pretty(meta).unwrap_or_default();
        atomic_write::write(&meta_path, text.as_bytes()).map_err(io_error(&meta_path))?;
        let lengths = read_or_empty(&dir.join(LENGTHS_LIST))?;
        let clips = read_or_empty(&dir.join(CLIPS_LIST))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            classifier,
            records: parse_lists(&lengths, &clips),
        })
    }

    pub fn features_path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.npy"))
    }

    pub fn logits_path(&self, stem: &str) -> PathBuf {
        self.dir.join(CLS_DIR).join(format!("{stem}.npz"))
    }

    /// Whether `video` is listed as finished with the clips `grid` gives its listed duration,
    /// and every one of their files (logits included, when asked for) is there.
    pub fn is_done(&self, video: &str, grid: &RowGrid) -> bool {
        let Some(r) = self.records.iter().find(|r| r.name == video) else {
            return false;
        };
        let spans = clip_spans(grid, r.duration);
        let listed: Vec<(u64, u64)> = spans.iter().map(|s| (s.start_ms, s.end_ms)).collect();
        listed == r.clips
            && spans.iter().all(|s| {
                let stem = s.stem(video);
                self.features_path(&stem).is_file()
                    && (!self.classifier || self.logits_path(&stem).is_file())
            })
    }

    /// Writes the files of clip `span` of `video` from its `rows`, each atomically.
    pub fn write_clip(
        &self,
        video: &str,
        span: &ClipSpan,
        rows: &VideoRows,
    ) -> Result<(), ExtractError> {
        let stem = span.stem(video);
        let features = rows.features.contiguous();
        write_atomic(&self.features_path(&stem), |p| features.write_npy(p))?;
        if self.classifier {
            let logits: Vec<(&str, Tensor)> = rows
                .logits
                .iter()
                .map(|(n, t)| (n.as_str(), t.contiguous()))
                .collect();
            write_atomic(&self.logits_path(&stem), |p| Tensor::write_npz(&logits, p))?;
        }
        Ok(())
    }

    /// Removes the files of the clips `spans` of `video` (those of a video that failed part
    /// way), so that no unlisted file stays behind.
    pub fn remove_clips(&self, video: &str, spans: &[ClipSpan]) {
        for s in spans {
            let stem = s.stem(video);
            let _ = std::fs::remove_file(self.features_path(&stem));
            let _ = std::fs::remove_file(self.logits_path(&stem));
        }
    }

    /// Lists `record` as finished and rewrites both list files: videos of earlier runs that
    /// are not in this run's `order` first, as they were, then this run's in `order`.
    pub fn finish(&mut self, record: VideoRecord, order: &[String]) -> Result<(), ExtractError> {
        match self.records.iter_mut().find(|r| r.name == record.name) {
            Some(r) => *r = record,
            None => self.records.push(record),
        }
        let pos: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i + 1))
            .collect();
        self.records
            .sort_by_key(|r| pos.get(r.name.as_str()).copied().unwrap_or(0));
        let lengths: String = self.records.iter().map(|r| length_line(r) + "\n").collect();
        let clips: String = self
            .records
            .iter()
            .flat_map(clip_lines)
            .map(|l| l + "\n")
            .collect();
        for (name, text) in [(CLIPS_LIST, clips), (LENGTHS_LIST, lengths)] {
            let path = self.dir.join(name);
            atomic_write::write(&path, text.as_bytes()).map_err(io_error(&path))?;
        }
        Ok(())
    }
}

/// Writes `path` through `write` into a temporary file beside it, then renames it into place,
/// so that a stopped run never leaves a truncated file under a final name.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), tch::TchError>,
) -> Result<(), ExtractError> {
    let tmp = atomic_write::temp_path(path);
    let wrap = |source| ExtractError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(wrap(e));
    }
    std::fs::rename(&tmp, path).map_err(io_error(path))
}
