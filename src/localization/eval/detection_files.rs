//! The detection JSON of temporal action localisation: written in the reference's layout
//! (`epic_localization_post_processing` of tadaconv/utils/tal_tools.py, `json.dump(…,
//! indent=4)`) and read as its `Epicdetection._import_prediction` reads it:
//!
//! ```json
//! {"version": "0.2", "challenge": "action_detection", "sls_pt": 2, "sls_tl": 3, "sls_td": 3,
//!  "results": {"P01_11": [{"score": 0.41, "label": "2,3", "verb": 2, "noun": 3,
//!                          "segment": [12.5, 17.0]}, …]}}
//! ```
//!
//! The reader needs only `results`, reads each detection's action from `label` and drops a
//! detection whose action the ground truth does not hold before looking at its other fields;
//! verb and noun come from the `verb` / `noun` fields, not from the label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::error::EvalFileError;
use super::fields::{join, read_json, Fields};
use super::ground_truth::EpicGroundTruth;
use super::py_json::{py_float, py_string};

/// One detection of a video, as the runner produces it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionDetection {
    pub score: f64,
    pub verb: usize,
    pub noun: usize,
    /// [start, end] in seconds.
    pub segment: [f64; 2],
}

/// The key the reference writes the "verb,noun" action under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKey {
    /// `"label"`: the key the evaluation reads.
    Label,
    /// `"action"`: the EPIC-Kitchens challenge server's key, unreadable by the evaluation.
    Action,
}

impl ActionKey {
    /// The reference's choice: `"label"` when the test set's name contains "val".
    pub fn for_test_set(test_set: &str) -> Self {
        if test_set.contains("val") {
            ActionKey::Label
        } else {
            ActionKey::Action
        }
    }

    fn name(self) -> &'static str {
        match self {
            ActionKey::Label => "label",
            ActionKey::Action => "action",
        }
    }
}

/// The detection file's text, byte for byte what the reference's `json.dump(…, indent=4)`
/// writes for the same results (videos in the map's order).
///
/// A non-finite score or segment bound is refused: Python would write `NaN`, which is not JSON.
pub fn detections_json(
    results: &BTreeMap<String, Vec<ActionDetection>>,
    key: ActionKey,
) -> Result<String, EvalFileError> {
    let mut s = String::from(
        "{\n    \"version\": \"0.2\",\n    \"challenge\": \"action_detection\",\n    \
         \"sls_pt\": 2,\n    \"sls_tl\": 3,\n    \"sls_td\": 3,\n    \"results\": ",
    );
    if results.is_empty() {
        s.push_str("{}\n}");
        return Ok(s);
    }
    s.push_str("{\n");
    for (v, (video, dets)) in results.iter().enumerate() {
        let _ = write!(s, "        {}: ", py_string(video));
        if dets.is_empty() {
            s.push_str("[]");
        } else {
            s.push_str("[\n");
            for (i, d) in dets.iter().enumerate() {
                let finite = [d.score, d.segment[0], d.segment[1]]
                    .iter()
                    .all(|x| x.is_finite());
                if !finite {
                    return Err(EvalFileError::Undefined(format!(
                        "detection {i} of video {video} has a non-finite score or segment ({d:?})"
                    )));
                }
                let _ = write!(
                    s,
                    "            {{\n                \"score\": {},\n                \"{}\": \"{},{}\",\n                \
                     \"verb\": {},\n                \"noun\": {},\n                \"segment\": [\n                    \
                     {},\n                    {}\n                ]\n            }}",
                    py_float(d.score),
                    key.name(),
                    d.verb,
                    d.noun,
                    d.verb,
                    d.noun,
                    py_float(d.segment[0]),
                    py_float(d.segment[1]),
                );
                s.push_str(if i + 1 < dets.len() { ",\n" } else { "\n" });
            }
            s.push_str("        ]");
        }
        s.push_str(if v + 1 < results.len() { ",\n" } else { "\n" });
    }
    s.push_str("    }\n}");
    Ok(s)
}

/// Writes [`detections_json`] to `path` (atomically: a crash leaves no half-written file).
pub fn write_detections(
    path: &Path,
    results: &BTreeMap<String, Vec<ActionDetection>>,
    key: ActionKey,
) -> Result<(), EvalFileError> {
    let text = detections_json(results, key)?;
    crate::atomic_write::write(path, text.as_bytes()).map_err(|source| EvalFileError::Write {
        file: path.to_path_buf(),
        source,
    })
}

/// One detection kept for evaluation: its action is one of the ground truth's.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredAction {
    pub video: String,
    pub start: f64,
    pub end: f64,
    pub score: f64,
    /// Index into [`EpicGroundTruth::actions`].
    pub action: usize,
    pub verb: usize,
    pub noun: usize,
}

/// Reads a detection file, keeping (in file order) the detections whose `label` is an action
/// of `gt`.
pub fn read_detections(
    path: &Path,
    gt: &EpicGroundTruth,
) -> Result<Vec<ScoredAction>, EvalFileError> {
    let v = read_json(path)?;
    let f = Fields::new(path);
    let top = f.object(&v, "")?;
    let mut out = Vec::new();
    for (video, dets) in f.object(f.get(top, "", "results")?, "results")? {
        let path = join("results", video);
        for (i, d) in f.array(dets, &path)?.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let d = f.object(d, &at)?;
            let label = d.get("label").ok_or_else(|| {
                let hint = if d.contains_key("action") {
                    " (this file names actions \"action\", as the reference writes a test set's; the evaluation reads \"label\")"
                } else {
                    ""
                };
                f.error(&join(&at, "label"), format!("is missing{hint}"))
            })?;
            // Any label that is not one of the ground truth's actions is dropped, whatever it is.
            let Some(action) = label.as_str().and_then(|l| gt.action_index(l)) else {
                continue;
            };
            let (start, end) = f.segment(f.get(d, &at, "segment")?, &join(&at, "segment"))?;
            out.push(ScoredAction {
                video: video.clone(),
                start,
                end,
                score: f.number(f.get(d, &at, "score")?, &join(&at, "score"))?,
                action,
                verb: f.class_id(f.get(d, &at, "verb")?, &join(&at, "verb"))?,
                noun: f.class_id(f.get(d, &at, "noun")?, &join(&at, "noun"))?,
            });
        }
    }
    Ok(out)
}
