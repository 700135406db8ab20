//! `--set KEY=VALUE` overrides: dotted reference keys, values parsed as YAML scalars or lists.
//!
//! Unlike the reference (which stores command-line values as raw strings,
//! docs/config.md#overrides), values are typed: `--set OPTIMIZER.BASE_LR=0.01` is a number and is
//! type-checked like any value read from a file.

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::keys::{check_sections, lookup, not_a_section, Known};
use super::load::{merge_maps, record_leaves, Layer};
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
    let origin = Source::Override(arg.into());
    let value = match lookup(defaults, key) {
        Known::Unknown { suggestion } => {
            return Err(ConfigError::UnknownKey {
                key: key.into(),
                origin,
                suggestion,
            })
        }
        // A key that also takes a list: `--set DATA.DATA_ROOT_DIR=[/a, /b]`.
        Known::Key {
            default: Value::String(_),
        } if super::schema::STRING_OR_LIST_KEYS.contains(&key)
            && raw.trim_start().starts_with('[') =>
        {
            parse_value(raw)
        }
        // A string-typed key keeps the text as written: `--set OUTPUT_DIR=2024` is a path.
        Known::Key {
            default: Value::String(_),
        } => Value::String(raw.to_string()),
        Known::Key {
            default: Value::Object(_),
        } => {
            // `--set TRAIN={BATCH_SIZE: 8}` sets keys of the section, like a file would.
            let value = parse_value(raw);
            let Value::Object(inner) = &value else {
                return Err(not_a_section(key, &value, &origin));
            };
            let prefix = key.to_string();
            check_sections(defaults, inner, &prefix, &origin)?;
            value
        }
        Known::Key { .. } | Known::Ignored => parse_value(raw),
    };
    match &value {
        Value::Object(inner) if !inner.is_empty() => {
            record_leaves(inner, key, &origin, &mut layer.sources)
        }
        _ => layer.sources.set(key, origin.clone()),
    }
    insert(&mut layer.value, key, value, &origin)
}

fn parse_value(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::String(String::new());
    }
    // Read as a file's value would be (PyYAML's scalars); anything that is not valid YAML is
    // taken as a plain string, as a shell user would expect.
    super::yaml::parse(raw).map_or_else(|_| Value::String(raw.to_string()), |(v, _)| v)
}

/// Puts `value` at the dotted `key`; a mapping is merged into the section already there.
fn insert(
    map: &mut Map<String, Value>,
    key: &str,
    value: Value,
    origin: &Source,
) -> Result<(), ConfigError> {
    insert_at(map, key, key, value, origin)
}

fn insert_at(
    map: &mut Map<String, Value>,
    full_key: &str,
    rest: &str,
    value: Value,
    origin: &Source,
) -> Result<(), ConfigError> {
    match rest.split_once('.') {
        None => {
            match (map.get_mut(rest), value) {
                (Some(Value::Object(old)), Value::Object(new)) => merge_maps(old, new),
                (_, value) => {
                    map.insert(rest.to_string(), value);
                }
            }
            Ok(())
        }
        Some((head, tail)) => {
            let slot = map
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(inner) = slot else {
                // Layers are checked when read, so this is a key below a leaf that was set
                // earlier on the command line; never replace it silently.
                let section = &full_key[..full_key.len() - rest.len() + head.len()];
                return Err(not_a_section(section, slot, origin));
            };
            insert_at(inner, full_key, tail, value, origin)
        }
    }
}
