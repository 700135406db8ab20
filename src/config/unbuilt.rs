//! The reference's tasks and data that tada does not run yet (BMN localisation's task and its
//! EPIC-Kitchens features dataset, whose network src/localization builds): their configs load
//! (`tada config show` prints them, their keys listed in one warning), and building one fails in
//! one line naming the part that is not built (docs/config.md#models-tada-does-not-build). A
//! config whose only unbuilt parts are its task or data still builds its network
//! ([`Unbuilt::is_model_part`]).

use serde_json::{Map, Value};

/// Keys only those models and tasks read; accepted and listed with the unused reference keys.
pub const UNBUILT_KEYS: &[&str] = &[
    // BMN temporal action localisation's task and data (configs/pool/run/training/
    // localization.yaml, bmn_epic); the network's keys are typed.
    "SOLVER",
    "DEBUG_MODE",
    "BN.USE_BN",
    "DATA.ANNO_NAME",
    "DATA.CLASSIFIER_ROOT_DIR",
    "DATA.CLIPS_LIST_FILE",
    "DATA.CLIP_INTERVAL",
    "DATA.LABELS_TYPE",
    "DATA.LOAD_CLASSIFIER_RES",
    "DATA.LOAD_TYPE",
    "DATA.NORM_FEATURE",
    "DATA.TEMPORAL_INTERVAL",
    "DATA.TEMPORAL_MODE",
    "DATA.VIDEO_LENGTH_FILE",
    "LOCALIZATION.TEST_OUTPUT_DIR",
    "LOCALIZATION.PROPS_DIR",
    "LOCALIZATION.PROPS_REGRESSION_LOSS",
    "LOCALIZATION.RESULT_FILE",
    "LOCALIZATION.CLASSIFIER_FILE",
    "LOCALIZATION.POST_PROCESS.THREAD",
    // The recipe's PROP_NUM: EPIC keeps int(duration / PROP_NUM_RATIO) + 1 proposals instead.
    "LOCALIZATION.POST_PROCESS.PROP_NUM",
    "LOCALIZATION.POST_PROCESS.TCA_POWER",
    "LOCALIZATION.POST_PROCESS.ACTION_SCORE_POWER",
    "LOCALIZATION.POST_PROCESS.VIDEO_SCORES_WEIGHT",
    "TEST.FORCE_FORWARD",
    "TEST.OUTPUT_TEST",
    "TEST.SAVE_RESULTS_PATH",
    "TEST.TEST_CHECKPOINT",
    "TEST.TEST_SET",
    // The pool ViViT / TimeSformer files set these, and the reference reads neither: heads are
    // NUM_FEATURES / NUM_HEADS wide, and PRE_LOGITS is the head's key (VIDEO.HEAD.PRE_LOGITS).
    "VIDEO.BACKBONE.DIM_HEAD",
    "VIDEO.BACKBONE.PRE_LOGITS",
];

/// Values of component keys that name a part tada does not build.
const UNBUILT_NAMES: &[(&str, &[&str])] = &[
    ("TASK_TYPE", &["localization"]),
    ("TRAIN.DATASET", &["Epickitchen100Localization"]),
    ("TEST.DATASET", &["Epickitchen100Localization"]),
];

/// Keys whose list value belongs to an unbuilt model or task, and what the list asks for.
const LIST_KEYS: &[(&str, &str)] = &[(
    "DATA.DATA_ROOT_DIR",
    "several data folders (BMN's features)",
)];

/// A component key whose value names a part tada does not build.
#[derive(Debug, Clone, PartialEq)]
pub struct Unbuilt {
    pub key: String,
    /// The value as written: a name, or a list of class counts.
    pub value: Value,
}

impl Unbuilt {
    /// Whether this part is in the network (VIDEO.…) rather than in the task or the data, so
    /// that the network cannot be built without it.
    pub fn is_model_part(&self) -> bool {
        self.key.starts_with("VIDEO.")
    }
}

impl std::fmt::Display for Unbuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Value::String(s) => write!(f, "{} {s}", self.key),
            v => {
                let what = LIST_KEYS
                    .iter()
                    .find(|(k, _)| *k == self.key)
                    .map_or("localisation features", |(_, w)| w);
                write!(f, "{} {v} ({what})", self.key)
            }
        }
    }
}

/// Takes the component keys that name unbuilt parts out of `tree` (so the rest deserialises
/// with the default in their place) and returns them.
pub(super) fn take(tree: &mut Map<String, Value>) -> Vec<Unbuilt> {
    let mut found = Vec::new();
    for (key, names) in UNBUILT_NAMES {
        let unbuilt_name = |v: &Value| {
            v.as_str()
                .is_some_and(|s| names.iter().any(|n| n.eq_ignore_ascii_case(s.trim())))
        };
        found.extend(take_if(tree, key, unbuilt_name));
    }
    for (key, _) in LIST_KEYS {
        found.extend(take_if(tree, key, Value::is_array));
    }
    found
}

/// Removes `key` from `tree` when its value passes `pred`.
fn take_if(
    tree: &mut Map<String, Value>,
    key: &str,
    pred: impl Fn(&Value) -> bool,
) -> Option<Unbuilt> {
    let (parent, leaf) = parent_of(tree, key)?;
    if !parent.get(leaf).is_some_and(pred) {
        return None;
    }
    let value = parent.remove(leaf)?;
    Some(Unbuilt {
        key: key.to_string(),
        value,
    })
}

/// Puts the names [`take`] took back into a serialised config, for `config show`.
pub(super) fn restore(tree: &mut Map<String, Value>, unbuilt: &[Unbuilt]) {
    for u in unbuilt {
        if let Some((parent, leaf)) = parent_of(tree, &u.key) {
            parent.insert(leaf.to_string(), u.value.clone());
        }
    }
}

fn parent_of<'a, 'k>(
    tree: &'a mut Map<String, Value>,
    key: &'k str,
) -> Option<(&'a mut Map<String, Value>, &'k str)> {
    let (path, leaf) = match key.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, key),
    };
    let mut node = tree;
    for part in path.into_iter().flat_map(|p| p.split('.')) {
        node = node.get_mut(part)?.as_object_mut()?;
    }
    Some((node, leaf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbuilt_names_are_taken_out_and_put_back() {
        let mut tree: Map<String, Value> = serde_json::from_str(
            r#"{"TASK_TYPE": "localization",
              "VIDEO": {"HEAD": {"NAME": "BaseHead", "NUM_CLASSES": 3}},
              "DATA": {"DATA_ROOT_DIR": ["a", "b"]}}"#,
        )
        .unwrap();
        let before = tree.clone();
        let found = take(&mut tree);
        assert_eq!(
            found,
            [
                Unbuilt {
                    key: "TASK_TYPE".into(),
                    value: "localization".into()
                },
                Unbuilt {
                    key: "DATA.DATA_ROOT_DIR".into(),
                    value: serde_json::json!(["a", "b"])
                }
            ]
        );
        assert!(tree.get("TASK_TYPE").is_none());
        assert!(tree["DATA"].get("DATA_ROOT_DIR").is_none());
        assert_eq!(tree["VIDEO"]["HEAD"]["NUM_CLASSES"], 3);
        restore(&mut tree, &found);
        assert_eq!(tree, before);
        assert_eq!(found[0].to_string(), "TASK_TYPE localization");
        // Neither is in the network: a network part would be under VIDEO.
        assert!(!found[0].is_model_part() && !found[1].is_model_part());
        let net = Unbuilt {
            key: "VIDEO.HEAD.NAME".into(),
            value: "SomeHead".into(),
        };
        assert!(net.is_model_part());
    }
}
