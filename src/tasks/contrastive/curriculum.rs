//! `paramcrop_curriculum.png`: how a contrastive run's views evolved — the views' 3-D IoU,
//! their centre distance and the gradient-reversal strength λ over the logged steps, read back
//! from the run's `metrics.jsonl`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::train::metrics::{read_metrics, METRICS_FILE};
use crate::viz::plot::{LinePlot, Series};
use crate::viz::{write_png, VizError};

/// File name of the plot in the run folder.
pub const CURRICULUM_PNG: &str = "paramcrop_curriculum.png";

/// The metrics plotted: `(metrics.jsonl key, legend name)`.
const CURVES: [(&str, &str); 3] = [
    ("iou", "IoU"),
    ("centre_distance", "centre distance"),
    ("grl_lambda", "\u{3bb} (gradient reversal)"),
];

/// Why the plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CurriculumError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Viz(#[from] VizError),
}

/// The curves of the `train` records, one point per logged step (a step logged twice, as
/// by a resumed run, keeps its last value); curves without any value are left out.
pub fn curriculum_series(records: &[Map<String, Value>]) -> Vec<Series> {
    CURVES
        .iter()
        .filter_map(|(key, name)| {
            let mut points = BTreeMap::new();
            for r in records {
                let train = r.get("phase").and_then(Value::as_str) == Some("train");
                let step = r.get("step").and_then(Value::as_u64);
                let value = r.get(*key).and_then(Value::as_f64);
                if let (true, Some(step), Some(value)) = (train, step, value) {
                    points.insert(step, value);
                }
            }
            (!points.is_empty()).then(|| Series {
                name: (*name).to_string(),
                points: points.into_iter().map(|(s, v)| (s as f64, v)).collect(),
            })
        })
        .collect()
}

/// Writes [`CURRICULUM_PNG`] into `run` from its `metrics.jsonl`; `Ok(None)` when the run
/// logged no view overlap (not a contrastive run, or stopped before its first log line).
pub fn write_curriculum_plot(run: &Path) -> Result<Option<PathBuf>, CurriculumError> {
    let metrics = run.join(METRICS_FILE);
    if !metrics.exists() {
        return Ok(None);
    }
    let records = read_metrics(&metrics).map_err(|source| CurriculumError::Read {
        path: metrics.clone(),
        source,
    })?;
    let series = curriculum_series(&records);
    if !series.iter().any(|s| s.name == CURVES[0].1) {
        return Ok(None);
    }
    let plot = LinePlot {
        title: "ParamCrop curriculum: view overlap and reversal strength".into(),
        x_label: "step".into(),
        series,
    };
    let path = run.join(CURRICULUM_PNG);
    write_png(&path, &plot.render(720, 400)?)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn series_keep_train_steps_once_and_skip_absent_curves() {
        let records = [
            record(json!({"phase": "train", "step": 2, "iou": 0.5, "centre_distance": 0.1})),
            record(json!({"phase": "train", "step": 1, "iou": 0.6, "centre_distance": 0.0})),
            record(json!({"phase": "val", "step": 2, "iou": 0.9})),
            record(json!({"phase": "train", "step": 2, "iou": 0.4, "centre_distance": 0.2})),
        ];
        let s = curriculum_series(&records);
        assert_eq!(s.len(), 2, "no grl_lambda logged");
        assert_eq!(s[0].points, [(1.0, 0.6), (2.0, 0.4)]);
        assert_eq!(s[1].name, "centre distance");
    }

    #[test]
    fn a_run_without_overlap_metrics_gets_no_plot() {
        let d = tempfile::TempDir::new().unwrap();
        assert!(write_curriculum_plot(d.path()).unwrap().is_none());
        std::fs::write(
            d.path().join("metrics.jsonl"),
            "{\"phase\":\"train\",\"step\":1,\"loss\":2.0}\n",
        )
        .unwrap();
        assert!(write_curriculum_plot(d.path()).unwrap().is_none());
        assert!(!d.path().join(CURRICULUM_PNG).exists());
    }
}
