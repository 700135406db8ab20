//! Which tensors of an unpickled `torch.save` root are imported: the root itself when it is a
//! bare state dict, else the reference's checkpoint dict's `model_state` (or, on request, its
//! `model_ema_state`), checked to hold tensors that the file can back before any is read.

use std::collections::HashSet;
use std::path::Path;
use std::rc::Rc;

use super::value::{Dict, Key, TensorRef, Value};
use super::{ImportOptions, ImportedFrom, MAX_EXPANSION};
use crate::checkpoint::strip_module_prefix;

/// A tensor of the state dict: its name as saved, and where it lies.
pub type TensorEntry = (Rc<str>, Rc<TensorRef>);

/// The state dict chosen from the root, and what the root says about it.
pub struct Chosen<'a> {
    /// The root dict (the state dict itself, or the checkpoint dict holding it).
    pub root: &'a Dict,
    pub state: &'a Dict,
    pub from: ImportedFrom,
    pub epoch: Option<i64>,
    pub cfg: Option<String>,
    pub has_ema: bool,
}

/// Picks the state dict to import; `epoch` and `cfg` are only read off a checkpoint dict
/// (a state dict may hold tensors by those names).
pub fn choose(root: &Value, options: ImportOptions) -> Result<Chosen<'_>, String> {
    let Value::Dict(root) = root else {
        return Err(format!(
            "the file holds a {}, not a state dict or checkpoint dict",
            root.type_name()
        ));
    };
    let has_ema = root.get("model_ema_state").is_some();
    let is_checkpoint = root.get("model_state").is_some();
    // The official ConvNeXt files the TAdaConvNeXtV2 configs start from wrap their state dict
    // in `model` (beside nothing but, at most, optimiser and epoch entries).
    let wrapped = !is_checkpoint && matches!(root.get("model"), Some(Value::Dict(_)));
    let (key, from) = match (is_checkpoint, options.ema) {
        (false, false) if wrapped => (Some("model"), ImportedFrom::Model),
        (true, false) => (Some("model_state"), ImportedFrom::ModelState),
        (true, true) if has_ema => (Some("model_ema_state"), ImportedFrom::ModelEmaState),
        (true, true) => return Err("the checkpoint holds no model_ema_state".into()),
        (false, true) => {
            return Err("the file is a bare state dict, with no model_ema_state".into())
        }
        (false, false) => (None, ImportedFrom::StateDict),
    };
    let epoch = match root.get("epoch") {
        Some(Value::Int(e)) if is_checkpoint => Some(*e),
        _ => None,
    };
    let cfg = match root.get("cfg") {
        Some(Value::Str(s)) if is_checkpoint => Some(s.to_string()),
        _ => None,
    };
    let state = match key.map(|k| (k, root.get(k))) {
        None => root,
        Some((_, Some(Value::Dict(d)))) => d,
        Some((k, other)) => {
            return Err(format!(
                "{k} holds a {}, not a state dict",
                other.map_or("nothing", Value::type_name)
            ))
        }
    };
    Ok(Chosen {
        root,
        state,
        from,
        epoch,
        cfg,
        has_ema,
    })
}

/// The state dict's tensor entries, in file order. Other entries are skipped with a warning
/// naming them; none at all means the file is not what it was taken for, and the error lists
/// the root's keys to say what it is instead.
pub fn tensor_entries(chosen: &Chosen<'_>, path: &Path) -> Result<Vec<TensorEntry>, String> {
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for (k, v) in &chosen.state.items {
        match (k, v) {
            (Key::Str(name), Value::Tensor(t)) => selected.push((name.clone(), t.clone())),
            (Key::Str(name), _) => skipped.push(name.to_string()),
            (Key::Int(i), _) => skipped.push(i.to_string()),
        }
    }
    if selected.is_empty() {
        let keys: Vec<String> = chosen
            .root
            .items
            .iter()
            .take(20)
            .map(|(k, _)| key_text(k))
            .collect();
        return Err(format!(
            "no tensors found (not a state dict; top-level keys: {})",
            keys.join(", ")
        ));
    }
    if !skipped.is_empty() {
        tracing::warn!(
            "{}: skipped {} entries that are not tensors: {}",
            path.display(),
            skipped.len(),
            skipped.join(", ")
        );
    }
    Ok(selected)
}

fn key_text(k: &Key) -> String {
    match k {
        Key::Str(s) => s.to_string(),
        Key::Int(i) => i.to_string(),
    }
}

/// Refuses tensors the file cannot back before any is allocated: one larger than the whole
/// file, all of them together more than [`MAX_EXPANSION`] times it, or two that are one
/// tensor once the `module.` prefix is stripped.
pub fn check_sizes(selected: &[TensorEntry], file_len: u64) -> Result<(), String> {
    let mut total = 0u64;
    let mut seen = HashSet::new();
    for (name, t) in selected {
        let bytes = t.byte_len();
        if bytes > file_len {
            return Err(format!(
                "tensor {name} of shape {:?} would take {bytes} bytes, more than the whole \
                 file ({file_len})",
                t.shape
            ));
        }
        total += bytes;
        if total > MAX_EXPANSION.saturating_mul(file_len) {
            return Err(format!(
                "the tensors would take more than {MAX_EXPANSION} times the file's size"
            ));
        }
        if !seen.insert(strip_module_prefix(name)) {
            return Err(format!(
                "tensor {} appears both with and without the module. prefix",
                strip_module_prefix(name)
            ));
        }
    }
    Ok(())
}
