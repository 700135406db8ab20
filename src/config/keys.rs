//! Which keys exist: checking user keys against the typed tree, suggesting the closest known key
//! for a typo, and setting aside the reference keys tada accepts but does not use.

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::source::{Source, Sources};

/// Reference keys (and whole sections) that tada accepts and ignores, with one warning:
/// cluster, storage and logging settings of the Python code base, and features tada replaces.
pub const IGNORED_KEYS: &[&str] = &[
    "NUM_SHARDS",
    "SHARD_ID",
    "DIST_BACKEND",
    "PAI",
    "OSS",
    "OUTPUT_CFG_FILE",
    "LOG_MODEL_INFO",
    "LOG_CONFIG_INFO",
    "USE_MULTISEG_VAL_DIST",
    "VISUALIZATION",
    "TRAIN.LOG_FILE",
    "TRAIN.CHECKPOINT_TYPE",
    "TRAIN.CHECKPOINT_INFLATE",
    "TRAIN.TRAIN_VAL_COMBINE",
    "TEST.LOG_FILE",
    "TEST.CHECKPOINT_TYPE",
    "TEST.SPATIAL_CROPS",
    "TEST.AUTOMATIC_MULTI_SCALE_TEST_SPATIAL",
    "DATA.MULTI_LABEL",
    "DATA_LOADER.ENABLE_MULTI_THREAD_DECODE",
    "DATA_LOADER.COLLATE_FN",
    "AUGMENTATION.USE_GPU",
    "AUGMENTATION.IS_SPLIT",
    "OPTIMIZER.TEXT_LR_MULT",
    "OPTIMIZER.TEXT_WEIGHT_DECAY",
    "VIDEO.BACKBONE.NUM_STREAMS",
    "VIDEO.BACKBONE.NONLOCAL",
    "VIDEO.BACKBONE.ATTN_MASK_ENABLE",
    // Localisation keys the reference's configs set and its code never reads (SOLVER is a
    // second optimiser section the recipe carries beside OPTIMIZER; LOCALIZATION's OSS output
    // folder; PROP_NUM, where EPIC keeps int(duration / PROP_NUM_RATIO) + 1 proposals instead).
    "SOLVER",
    "DEBUG_MODE",
    "BN.USE_BN",
    "DATA.NORM_FEATURE",
    "DATA.TEMPORAL_INTERVAL",
    "DATA.TEMPORAL_MODE",
    "LOCALIZATION.TEST_OUTPUT_DIR",
    "LOCALIZATION.PROPS_REGRESSION_LOSS",
    "LOCALIZATION.CLASSIFIER_FILE",
    "LOCALIZATION.POST_PROCESS.THREAD",
    "LOCALIZATION.POST_PROCESS.PROP_NUM",
    "LOCALIZATION.POST_PROCESS.TCA_POWER",
    "LOCALIZATION.POST_PROCESS.VIDEO_SCORES_WEIGHT",
    "TEST.FORCE_FORWARD",
    "TEST.OUTPUT_TEST",
    "TEST.SAVE_RESULTS_PATH",
    "TEST.TEST_CHECKPOINT",
    // The pool ViViT / TimeSformer files set these, and the reference reads neither: heads are
    // NUM_FEATURES / NUM_HEADS wide, and PRE_LOGITS is the head's key (VIDEO.HEAD.PRE_LOGITS).
    "VIDEO.BACKBONE.DIM_HEAD",
    "VIDEO.BACKBONE.PRE_LOGITS",
];

pub(super) fn is_ignored(key: &str) -> bool {
    IGNORED_KEYS
        .iter()
        .any(|k| key == *k || key.starts_with(&format!("{k}.")))
}

/// Why an ignored reference key cannot be ignored with this value: the reference would train
/// on other data than tada, so a run would silently differ from the one the file asks for.
fn refused_value(key: &str, v: &Value) -> Option<String> {
    match (key, v) {
        ("TRAIN.TRAIN_VAL_COMBINE", Value::Bool(true)) => Some(
            "true asks to train on the train and val lists together, which tada does not do (it \
             would train on the train list alone); write both lists into one annotation file, \
             or set false"
                .into(),
        ),
        _ => None,
    }
}

/// What the schema says about a dotted key.
pub(super) enum Known<'a> {
    /// A key of the schema; `default` is its built-in value.
    Key {
        default: &'a Value,
    },
    Ignored,
    Unknown {
        suggestion: Option<String>,
    },
}

/// Looks `key` up in the tree of built-in defaults (the serialised default config).
pub(super) fn lookup<'a>(defaults: &'a Map<String, Value>, key: &str) -> Known<'a> {
    if is_ignored(key) {
        return Known::Ignored;
    }
    let mut node = defaults;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        match node.get(*part) {
            Some(Value::Object(inner)) if i + 1 < parts.len() => node = inner,
            // A non-mapping default (null, list, scalar) is a leaf: nothing below it is a key.
            Some(_) if i + 1 < parts.len() => {
                return Known::Unknown {
                    suggestion: suggest(defaults, key),
                }
            }
            Some(v) => return Known::Key { default: v },
            None => {
                return Known::Unknown {
                    suggestion: suggest(defaults, key),
                }
            }
        }
    }
    Known::Unknown { suggestion: None }
}

/// Checks every key of the user's tree; removes the ignored ones and returns their names.
pub(super) fn check_tree(
    defaults: &Map<String, Value>,
    user: &mut Map<String, Value>,
    sources: &Sources,
) -> Result<Vec<String>, ConfigError> {
    let mut ignored = Vec::new();
    check_rec(defaults, user, "", sources, &mut ignored)?;
    Ok(ignored)
}

fn check_rec(
    defaults: &Map<String, Value>,
    map: &mut Map<String, Value>,
    prefix: &str,
    sources: &Sources,
    ignored: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match lookup(defaults, &key) {
            Known::Ignored => {
                if let Some(message) = map.get(&k).and_then(|v| refused_value(&key, v)) {
                    return Err(ConfigError::Invalid {
                        origin: sources.of(&key),
                        key,
                        message,
                    });
                }
                map.remove(&k);
                ignored.push(key);
            }
            Known::Unknown { suggestion } => {
                return Err(ConfigError::UnknownKey {
                    origin: sources.of(&key),
                    key,
                    suggestion,
                })
            }
            Known::Key { default } => {
                if let (Value::Object(_), Some(Value::Object(inner))) = (default, map.get_mut(&k)) {
                    check_rec(defaults, inner, &key, sources, ignored)?;
                }
            }
        }
    }
    Ok(())
}

/// Checks that every section of a layer's `map` (a key whose default is a mapping, such as
/// `TRAIN` or `VIDEO.HEAD`) is written as a mapping. A list would otherwise fill the section's
/// fields by position and a scalar would replace the section of every base underneath, both
/// silently. Unknown and ignored keys are left to [`check_tree`].
pub(super) fn check_sections(
    defaults: &Map<String, Value>,
    map: &Map<String, Value>,
    prefix: &str,
    origin: &Source,
) -> Result<(), ConfigError> {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Known::Key {
            default: Value::Object(_),
        } = lookup(defaults, &key)
        {
            match v {
                Value::Object(inner) => check_sections(defaults, inner, &key, origin)?,
                other => return Err(not_a_section(&key, other, origin)),
            }
        }
    }
    Ok(())
}

/// The error for a section written as something other than a mapping.
pub(super) fn not_a_section(key: &str, found: &Value, origin: &Source) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_string(),
        origin: origin.clone(),
        message: format!(
            "{key} is a section: expected a mapping of its keys, found {}",
            kind(found)
        ),
    }
}

/// All dotted keys of the schema (sections included), for suggestions.
fn all_keys(map: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Value::Object(inner) = v {
            all_keys(inner, &key, out);
        }
        out.push(key);
    }
}

/// The known key closest to `key`: by edit distance on the full dotted path, and by the last
/// segment alone so a key put in the wrong section (`TRAIN.BASE_LR`) still finds its home.
fn suggest(defaults: &Map<String, Value>, key: &str) -> Option<String> {
    let mut keys = Vec::new();
    all_keys(defaults, "", &mut keys);
    let leaf = key.rsplit('.').next().unwrap_or(key);
    keys.into_iter()
        .map(|k| {
            let full = strsim::normalized_damerau_levenshtein(key, &k);
            let k_leaf = k.rsplit('.').next().unwrap_or(&k);
            let tail = strsim::normalized_damerau_levenshtein(leaf, k_leaf) * 0.9;
            (full.max(tail), k)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// PyYAML reads `1e-4` (no dot) as a string and the reference converts such strings later;
/// its configs and checkpoints therefore carry numbers as strings. Turn them back into numbers
/// wherever the schema does not expect a string.
pub(super) fn coerce_numbers(
    defaults: &Map<String, Value>,
    map: &mut Map<String, Value>,
    prefix: &str,
) {
    for (k, v) in map.iter_mut() {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => coerce_numbers(defaults, inner, &key),
            Value::String(_) => {
                let wants_string = matches!(
                    lookup(defaults, &key),
                    Known::Key {
                        default: Value::String(_)
                    }
                );
                if !wants_string {
                    coerce_scientific(v);
                }
            }
            // `LRS: [1, 1.0e30]`: PyYAML leaves `1.0e30` a string inside lists too.
            Value::Array(items) => {
                let wants_strings = matches!(
                    lookup(defaults, &key),
                    Known::Key { default: Value::Array(d) } if d.iter().any(Value::is_string)
                );
                if !wants_strings {
                    items.iter_mut().for_each(coerce_scientific);
                }
            }
            _ => {}
        }
    }
}

/// A string such as `1e-4` becomes the number it spells.
fn coerce_scientific(v: &mut Value) {
    let Value::String(s) = v else {
        return;
    };
    if !looks_scientific(s) {
        return;
    }
    if let Some(n) = s
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        *v = Value::Number(n);
    }
}

fn looks_scientific(s: &str) -> bool {
    let s = s.trim();
    s.contains(['e', 'E']) && s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Map<String, Value> {
        match serde_json::to_value(crate::config::Config::default()) {
            Ok(Value::Object(m)) => m,
            _ => unreachable!(),
        }
    }

    /// An ignored key whose value would make the reference train on other data is refused in
    /// one line, naming the key; the harmless value is ignored as before.
    #[test]
    fn train_val_combine_true_is_refused() {
        let d = defaults();
        let tree = |v: bool| match serde_json::json!({"TRAIN": {"TRAIN_VAL_COMBINE": v}}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let e = check_tree(&d, &mut tree(true), &Sources::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid value for config key TRAIN.TRAIN_VAL_COMBINE")
                && e.contains("train list alone")
                && !e.contains('\n'),
            "{e}"
        );
        let ignored = check_tree(&d, &mut tree(false), &Sources::default()).unwrap();
        assert_eq!(ignored, ["TRAIN.TRAIN_VAL_COMBINE"]);
    }

    #[test]
    fn lookup_classifies_keys() {
        let d = defaults();
        assert!(matches!(lookup(&d, "TRAIN.BATCH_SIZE"), Known::Key { .. }));
        assert!(matches!(lookup(&d, "OSS.KEY"), Known::Ignored));
        assert!(matches!(
            lookup(&d, "VIDEO.BACKBONE.NONLOCAL.ENABLE"),
            Known::Ignored
        ));
        // Nothing lives below a leaf.
        assert!(matches!(
            lookup(&d, "TRAIN.BATCH_SIZE.X"),
            Known::Unknown { .. }
        ));
        match lookup(&d, "DATA.SAMPLNG_RATE") {
            Known::Unknown { suggestion } => {
                assert_eq!(suggestion.as_deref(), Some("DATA.SAMPLING_RATE"))
            }
            _ => panic!("typo must be unknown"),
        }
        match lookup(&d, "COMPLETELY_DIFFERENT_THING") {
            Known::Unknown { suggestion } => assert_eq!(suggestion, None),
            _ => panic!(),
        }
    }

    #[test]
    fn scientific_strings_become_numbers_except_for_string_keys() {
        let d = defaults();
        let mut m: Map<String, Value> = serde_json::from_str(
            r#"{"OPTIMIZER": {"BASE_LR": "5e-4", "WEIGHT_DECAY": "abc"}, "OUTPUT_DIR": "1e-3"}"#,
        )
        .unwrap();
        coerce_numbers(&d, &mut m, "");
        assert_eq!(m["OPTIMIZER"]["BASE_LR"], 5e-4);
        assert_eq!(m["OPTIMIZER"]["WEIGHT_DECAY"], "abc");
        assert_eq!(m["OUTPUT_DIR"], "1e-3");
    }
}
