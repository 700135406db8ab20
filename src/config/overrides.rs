//! `--set KEY=VALUE` overrides: dotted reference keys, values parsed as YAML scalars or lists.
//!
//! Unlike the reference (which stores command-line values as raw strings, TRAINING.md §1.3),
//! values are typed: `--set OPTIMIZER.BASE_LR=0.01` is a number and is type-checked like any
//! value read from a file.

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::keys::{lookup, Known};
use super::load::Layer;
use super::source::Source;

/// Applies one `KEY=VALUE` argument on top of `layer`.
pub(super) fn apply(
    arg: &str,
    defaults: &Map<String, Value>,
    layer: &mut Layer,
) -> Result<(), ConfigError> {
    let bad = |message: &str| ConfigError::BadOverride {
        arg: arg.into(),
        message: message.into(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(bad(
            "the key must be a dotted name such as TRAIN.BATCH_SIZE",
        ));
    }
    let value = match lookup(defaults, key) {
        Known::Unknown { suggestion } => {
            return Err(ConfigError::UnknownKey {
                key: key.into(),
                origin: Source::Override(arg.into()),
                suggestion,
            })
        }
        // A string-typed key keeps the text as written: `--set OUTPUT_DIR=2024` is a path.
        Known::Key {
            default: Value::String(_),
        } => Value::String(raw.to_string()),
        Known::Key { .. } | Known::Ignored => parse_value(raw),
    };
    insert(&mut layer.value, key, value);
    layer.sources.set(key, Source::Override(arg.into()));
    Ok(())
}

fn parse_value(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::String(String::new());
    }
    // Anything that is not valid YAML is taken as a plain string, as a shell user would expect.
    serde_saphyr::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            map.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let slot = map
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                insert(inner, rest, value);
            }
        }
    }
}
