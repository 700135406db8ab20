//! VIDEO.HEAD.NUM_CLASSES as a list (`[97, 300]`: EPIC-Kitchens' verb and noun heads). The key
//! keeps its one-number type in the schema, which most of tada reads; a list is taken out of
//! the tree before deserialising, kept in `HeadConfig::num_classes_per_head`, and put back
//! when the config is shown; [`check`] validates the count(s) against the head.

use serde_json::{Map, Value};

use super::schema::HeadName;
use super::{Config, ConfigError, Sources};

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

/// VIDEO.HEAD.NUM_CLASSES: one number for a one-head model, a `[verb, noun]` list for the two
/// heads of BaseHeadx2 / TransformerHeadx2.
pub(super) fn check(cfg: &Config, sources: &Sources) -> Result<(), ConfigError> {
    let invalid = |message: String| {
        Err(ConfigError::Invalid {
            key: KEY.into(),
            origin: sources.of(KEY),
            message,
        })
    };
    let head = &cfg.video.head;
    let two_heads = matches!(
        head.name,
        HeadName::BaseHeadx2 | HeadName::TransformerHeadx2
    );
    match (&head.num_classes_per_head, head.num_classes) {
        (Some(list), _) if !two_heads => invalid(format!(
            "the list {list:?} gives one class count per head of a two-head model (BaseHeadx2, \
             TransformerHeadx2); {:?} takes one number",
            head.name
        )),
        (Some(list), _) if list.len() != 2 || list.contains(&0) => invalid(format!(
            "{:?} needs two class counts of at least 1 ([verb, noun]), got {list:?}",
            head.name
        )),
        (Some(_), _) => Ok(()),
        (None, Some(n)) if two_heads => invalid(format!(
            "{:?} has a verb and a noun head and needs two class counts ([verb, noun], e.g. \
             [97, 300]), got {n}",
            head.name
        )),
        (None, Some(0)) if head.name != HeadName::ContrastiveHead => {
            invalid("must be at least 1, got 0".into())
        }
        (None, Some(_)) => Ok(()),
        // The contrastive projection head is sized by PRETRAIN.CONTRASTIVE; it has no classes.
        // BaseBMN predicts maps, not classes.
        (None, None) if matches!(head.name, HeadName::ContrastiveHead | HeadName::BaseBmn) => {
            Ok(())
        }
        (None, None) => Err(ConfigError::Missing {
            key: KEY.into(),
            hint: format!("set it in the config file or with --set {KEY}=N"),
        }),
    }
}
