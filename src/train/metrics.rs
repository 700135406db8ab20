//! `metrics.jsonl`: one JSON object per logged step, appended and flushed line by line so a
//! crash loses nothing and a resumed run continues the same file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// File name of the metrics log in a run folder.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Appends metric records to a JSON-lines file.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `{"time": …, "phase": …, "epoch": …, "step": …, <values>}` as one line.
    pub fn log(
        &mut self,
        phase: &str,
        epoch: u64,
        step: u64,
        values: &[(&str, f64)],
    ) -> io::Result<()> {
        let mut rec = Map::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        rec.insert("time".into(), Value::from(now));
        rec.insert("phase".into(), Value::from(phase));
        rec.insert("epoch".into(), Value::from(epoch));
        rec.insert("step".into(), Value::from(step));
        for (k, v) in values {
            // JSON has no NaN/inf; keep the record and say so explicitly.
            let v = if v.is_finite() {
                Value::from(*v)
            } else {
                Value::from(v.to_string())
            };
            rec.insert((*k).to_string(), v);
        }
        let mut line = Value::Object(rec).to_string();
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

/// Reads a metrics file back (for tests and tools); a torn last line is skipped.
pub fn read_metrics(path: &Path) -> io::Result<Vec<Map<String, Value>>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect())
}
