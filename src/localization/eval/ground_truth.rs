//! The ground-truth JSON of temporal action detection, read as the reference's `Epicdetection`
//! reads it (`_import_ground_truth` of tadaconv/utils/eval_tal/eval_epic_detection.py):
//!
//! ```json
//! {"version": …, "taxonomy": …, "database": {"P01_11": {"subset": "validation",
//!   "annotations": [{"label": "verb,noun", "segment": [start, end]}, …]}, …}}
//! ```
//!
//! All three top-level fields must be present. Only the videos of the requested subset are
//! read (the others need not have annotations). Actions are numbered in first-seen order over
//! the file's video order, and verbs / nouns, the two integers of a label, are listed in
//! first-seen order too: the order the reference averages classes in.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::error::EvalFileError;
use super::fields::{join, read_json, Fields};
use super::map::GroundTruth;

/// The top-level fields `Epicdetection` (and ActivityNet's evaluation) require.
pub const GROUND_TRUTH_FIELDS: [&str; 3] = ["database", "taxonomy", "version"];

/// One annotated action instance (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSegment {
    pub video: String,
    pub start: f64,
    pub end: f64,
    /// Index into [`EpicGroundTruth::actions`].
    pub action: usize,
    pub verb: usize,
    pub noun: usize,
}

/// The annotations of one subset, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct EpicGroundTruth {
    pub segments: Vec<ActionSegment>,
    /// Action labels ("verb,noun") by index, in first-seen order.
    pub actions: Vec<String>,
    /// Verb ids in first-seen order.
    pub verbs: Vec<usize>,
    /// Noun ids in first-seen order.
    pub nouns: Vec<usize>,
    index: HashMap<String, usize>,
}

/// Which class a segment counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassOf {
    Action,
    Verb,
    Noun,
}

impl EpicGroundTruth {
    /// Reads `path`, keeping the videos whose `subset` equals `subset` (the reference
    /// evaluates "validation").
    pub fn read(path: &Path, subset: &str) -> Result<Self, EvalFileError> {
        Self::from_json(&read_json(path)?, path, subset)
    }

    /// As [`read`](Self::read), from parsed JSON; `file` names the source in errors.
    pub fn from_json(v: &Value, file: &Path, subset: &str) -> Result<Self, EvalFileError> {
        let f = Fields::new(file);
        let top = f.object(v, "")?;
        for key in GROUND_TRUTH_FIELDS {
            f.get(top, "", key)?;
        }
        let mut gt = Self::empty();
        for (video, entry) in f.object(&top["database"], "database")? {
            let path = join("database", video);
            let entry = f.object(entry, &path)?;
            // A non-string subset never equals the requested one, as in the reference.
            if f.get(entry, &path, "subset")?.as_str() != Some(subset) {
                continue;
            }
            let anns_path = join(&path, "annotations");
            for (i, ann) in f
                .array(f.get(entry, &path, "annotations")?, &anns_path)?
                .iter()
                .enumerate()
            {
                let at = format!("{anns_path}[{i}]");
                let ann = f.object(ann, &at)?;
                let label = f.string(f.get(ann, &at, "label")?, &join(&at, "label"))?;
                let (verb, noun) = parse_action(label).ok_or_else(|| {
                    f.error(
                        &join(&at, "label"),
                        format!("must be \"verb,noun\" (two integers), got {label:?}"),
                    )
                })?;
                let (start, end) = f.segment(f.get(ann, &at, "segment")?, &join(&at, "segment"))?;
                gt.push(video, start, end, label, (verb, noun));
            }
        }
        Ok(gt)
    }

    /// Builds the ground truth from (video, start, end, "verb,noun") rows, as if read from a
    /// file holding them in that order.
    pub fn from_rows<'a>(
        rows: impl IntoIterator<Item = (&'a str, f64, f64, &'a str)>,
    ) -> Result<Self, EvalFileError> {
        let mut gt = Self::empty();
        for (video, start, end, label) in rows {
            let (verb, noun) = parse_action(label).ok_or_else(|| {
                EvalFileError::Undefined(format!(
                    "ground truth of {video}: label must be \"verb,noun\" (two integers), got {label:?}"
                ))
            })?;
            gt.push(video, start, end, label, (verb, noun));
        }
        Ok(gt)
    }

    /// Adds one segment of `label` (its parsed (verb, noun)), numbering a new action.
    fn push(
        &mut self,
        video: &str,
        start: f64,
        end: f64,
        label: &str,
        (verb, noun): (usize, usize),
    ) {
        let action = self.intern(label, verb, noun);
        self.segments.push(ActionSegment {
            video: video.to_string(),
            start,
            end,
            action,
            verb,
            noun,
        });
    }

    fn empty() -> Self {
        EpicGroundTruth {
            segments: Vec::new(),
            actions: Vec::new(),
            verbs: Vec::new(),
            nouns: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn intern(&mut self, label: &str, verb: usize, noun: usize) -> usize {
        if !self.verbs.contains(&verb) {
            self.verbs.push(verb);
        }
        if !self.nouns.contains(&noun) {
            self.nouns.push(noun);
        }
        if let Some(&i) = self.index.get(label) {
            return i;
        }
        self.actions.push(label.to_string());
        self.index.insert(label.to_string(), self.actions.len() - 1);
        self.actions.len() - 1
    }

    /// The index of an action label, `None` for one the ground truth does not hold.
    pub fn action_index(&self, label: &str) -> Option<usize> {
        self.index.get(label).copied()
    }

    /// The segments as [`GroundTruth`] rows labelled by action index, verb or noun.
    pub fn rows(&self, class: ClassOf) -> Vec<GroundTruth> {
        self.segments
            .iter()
            .map(|s| GroundTruth {
                video: s.video.clone(),
                start: s.start,
                end: s.end,
                label: match class {
                    ClassOf::Action => s.action,
                    ClassOf::Verb => s.verb,
                    ClassOf::Noun => s.noun,
                },
            })
            .collect()
    }
}

/// The verb and noun of a "verb,noun" label: its first two comma-separated fields as
/// integers, as the reference's `int(label.split(',')[k])`.
pub fn parse_action(label: &str) -> Option<(usize, usize)> {
    let mut parts = label.split(',');
    let verb = parts.next()?.trim().parse().ok()?;
    let noun = parts.next()?.trim().parse().ok()?;
    Some((verb, noun))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_file_give_the_same_ground_truth() {
        let json = serde_json::json!({"version": 1, "taxonomy": {}, "database": {
            "b": {"subset": "validation", "annotations": [
                {"label": "3,1", "segment": [0.5, 2.0]}, {"label": "0,1", "segment": [4.0, 9.0]}]},
            "t": {"subset": "training"},
            "a": {"subset": "validation", "annotations": [{"label": "3,1", "segment": [1.0, 3.0]}]}}});
        let read = EpicGroundTruth::from_json(&json, Path::new("gt.json"), "validation").unwrap();
        let rows = [
            ("b", 0.5, 2.0, "3,1"),
            ("b", 4.0, 9.0, "0,1"),
            ("a", 1.0, 3.0, "3,1"),
        ];
        assert_eq!(EpicGroundTruth::from_rows(rows).unwrap(), read);
        // File order, not sorted order, numbers the classes.
        assert_eq!(read.actions, vec!["3,1", "0,1"]);
        assert_eq!(
            (read.verbs.as_slice(), read.nouns.as_slice()),
            (&[3, 0][..], &[1][..])
        );
        assert_eq!(read.segments[2].action, 0);
        assert!(EpicGroundTruth::from_rows([("a", 0.0, 1.0, "31")]).is_err());
    }
}
