//! The localisation metrics of one evaluation as a serialisable record (`metrics.json`):
//! action / verb / noun mAP per tIoU threshold and their averages, and optionally AR@AN and
//! AUC of the class-agnostic proposals.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::epic_detection::EpicDetectionMaps;
use super::error::EvalFileError;
use super::map::MeanAp;
use super::proposals::RecallCurve;

/// mAP per threshold and its mean over thresholds ("Average-mAP").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapSummary {
    pub map: Vec<f64>,
    pub average: f64,
}

impl From<&MeanAp> for MapSummary {
    fn from(m: &MeanAp) -> Self {
        Self {
            map: m.map.clone(),
            average: m.average(),
        }
    }
}

/// AR at chosen AN values, and the area under the AR-AN curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalSummary {
    pub tiou_thresholds: Vec<f64>,
    pub max_avg_proposals: f64,
    /// (AN, AR) pairs; an AN that is not a point of the curve is left out.
    pub ar_at: Vec<(f64, f64)>,
    /// ActivityNet's AUC in percent (100 · area / max AN).
    pub auc: f64,
}

impl ProposalSummary {
    /// The curve's AR at each of `ans` (e.g. [1, 5, 10, 100]) and its AUC.
    pub fn from_curve(c: &RecallCurve, ans: &[f64]) -> Self {
        Self {
            tiou_thresholds: c.tious.clone(),
            max_avg_proposals: c.max_avg_proposals,
            ar_at: ans
                .iter()
                .filter_map(|&an| c.ar_at(an).map(|ar| (an, ar)))
                .collect(),
            auc: c.auc,
        }
    }
}

/// Everything one localisation evaluation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalizationMetrics {
    pub tiou_thresholds: Vec<f64>,
    pub action: MapSummary,
    pub verb: MapSummary,
    pub noun: MapSummary,
    /// One entry per proposal evaluation (e.g. tIoU 0.5:0.95 and 0.1:0.5); empty when none ran.
    #[serde(default)]
    pub proposals: Vec<ProposalSummary>,
}

impl LocalizationMetrics {
    pub fn new(maps: &EpicDetectionMaps, proposals: Vec<ProposalSummary>) -> Self {
        Self {
            tiou_thresholds: maps.tious.clone(),
            action: (&maps.action).into(),
            verb: (&maps.verb).into(),
            noun: (&maps.noun).into(),
            proposals,
        }
    }

    /// Writes the record as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<(), EvalFileError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| EvalFileError::Write {
            file: path.to_path_buf(),
            source: e.into(),
        })?;
        crate::atomic_write::write(path, format!("{text}\n").as_bytes()).map_err(|source| {
            EvalFileError::Write {
                file: path.to_path_buf(),
                source,
            }
        })
    }
}
