//! VIDEO.HEAD.NUM_CLASSES as a list (`[97, 300]`: EPIC-Kitchens' verb and noun heads). The key
//! keeps its one-number type in the schema, which most of tada reads; a list is taken out of
//! the tree before deserialising, kept in `HeadConfig::num_classes_per_head`, and put back
//! when the config is shown.

use serde_json::{Map, Value};

use super::{ConfigError, Sources};

pub const KEY: &str = "VIDEO.HEAD.NUM_CLASSES";

/// Takes a list-valued NUM_CLASSES out of `tree` and returns its counts; a number (or no key)
/// stays and gives `None`. An element that is not a whole number is an error naming the key.
pub(super) fn take(
    tree: &mut Map<String, Value>,
    sources: &Sources,
) -> Result<Option<Vec<usize>>, ConfigError> {
    let Some(head) = tree
        .get_mut("VIDEO")
        .and_then(|v| v.get_mut("HEAD"))
        .and_then(Value::as_object_mut)
    else {
        return Ok(None);
    };
    if !head.get("NUM_CLASSES").is_some_and(Value::is_array) {
        return Ok(None);
    }
    let Some(Value::Array(items)) = head.remove("NUM_CLASSES") else {
        return Ok(None);
    };
    items
        .iter()
        .map(|v| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| ConfigError::WrongType {
                    key: KEY.to_string(),
                    origin: sources.of(KEY),
                    message: format!("a list of class counts holds {v}, not a whole number"),
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Puts the list back into a serialised config, for `config show`.
pub(super) fn restore(tree: &mut Map<String, Value>, counts: &[usize]) {
    if let Some(head) = tree
        .get_mut("VIDEO")
        .and_then(|v| v.get_mut("HEAD"))
        .and_then(Value::as_object_mut)
    {
        head.insert("NUM_CLASSES".to_string(), Value::from(counts.to_vec()));
    }
}
