//! Reading YAML files and resolving `_BASE`, `_BASE_RUN` and `_BASE_MODEL` inheritance.
//!
//! Semantics follow the reference loader (docs/config.md#precedence-and-inheritance): a file with
//! `_BASE` is merged over that base; otherwise it is merged over `_BASE_RUN`, and the result over
//! `_BASE_MODEL`, so the run recipe beats the backbone file. Mappings merge key by key, anything
//! else (lists included) replaces. One deliberate difference: every relative base path is resolved
//! against the directory of the file that names it (the reference resolves a leading `./` against
//! the top-level file instead; the shipped configs only use `../` paths, where both agree).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::source::{Source, Sources};

pub(super) const BASE_KEYS: [&str; 3] = ["_BASE", "_BASE_RUN", "_BASE_MODEL"];

/// A mapping of config keys plus where each value came from.
#[derive(Debug, Default, Clone)]
pub(super) struct Layer {
    pub value: Map<String, Value>,
    pub sources: Sources,
}

impl Layer {
    /// A layer whose every leaf is attributed to `source`; fails when a section of the
    /// schema is written as anything but a mapping.
    pub fn new(value: Map<String, Value>, source: &Source) -> Result<Self, ConfigError> {
        super::keys::check_sections(&super::defaults_tree(), &value, "", source)?;
        let mut sources = Sources::default();
        record_leaves(&value, "", source, &mut sources);
        Ok(Self { value, sources })
    }

    /// Deep-merges `top` over `self`: `top` wins on every key it has.
    pub fn merged_with(mut self, top: Layer) -> Layer {
        merge_maps(&mut self.value, top.value);
        self.sources.overlay(top.sources);
        self
    }
}

pub(super) fn record_leaves(
    map: &Map<String, Value>,
    prefix: &str,
    source: &Source,
    out: &mut Sources,
) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => record_leaves(inner, &key, source, out),
            _ => out.set(&key, source.clone()),
        }
    }
}

/// Reference merge: mappings merge recursively, every other value replaces.
pub(super) fn merge_maps(base: &mut Map<String, Value>, top: Map<String, Value>) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(t)) => merge_maps(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Parses a YAML document into a JSON-like tree (an empty document is an empty mapping).
pub(super) fn parse_yaml(text: &str, path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let (value, duplicates) = super::yaml::parse(text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: one_line(&e.to_string()),
    })?;
    for d in duplicates {
        tracing::warn!(
            "{}: {} is given twice (lines {} and {}); the later value counts, as in PyYAML",
            path.display(),
            d.key,
            d.first_line,
            d.line
        );
    }
    match without_nulls(value) {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(ConfigError::NotAMapping {
            path: path.to_path_buf(),
            found: super::keys::kind(&other),
        }),
    }
}

/// An empty value (`OUTPUT_DIR:`, `~`, `null`) means "not given here", as the reference's
/// configs use it: the key keeps the value of the bases or the defaults.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The parser's messages carry a multi-line source snippet; errors here are one line.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("parse error")
        .to_string()
}

/// Loads `path` and everything it inherits from, merged.
pub(super) fn load_file(path: &Path) -> Result<Layer, ConfigError> {
    load_rec(path, &mut Vec::new())
}

fn load_rec(path: &Path, stack: &mut Vec<(PathBuf, PathBuf)>) -> Result<Layer, ConfigError> {
    let canonical = path.canonicalize().map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(pos) = stack.iter().position(|(c, _)| *c == canonical) {
        let chain: Vec<String> = stack[pos..]
            .iter()
            .map(|(_, shown)| shown.display().to_string())
            .collect();
        return Err(ConfigError::IncludeCycle {
            chain: format!("{} -> {}", chain.join(" -> "), path.display()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut map = parse_yaml(&text, path)?;
    let [base, run, model] = BASE_KEYS.map(|k| map.remove(k));
    let this = Layer::new(map, &Source::File(path.to_path_buf()))?;

    stack.push((canonical, path.to_path_buf()));
    let mut load_base = |key: &str, v: Value| -> Result<Layer, ConfigError> {
        let base = resolve_base(path, key, v)?;
        load_rec(&base, stack)
    };
    let mut result = this;
    if let Some(b) = base {
        result = load_base("_BASE", b)?.merged_with(result);
    } else {
        if let Some(r) = run {
            result = load_base("_BASE_RUN", r)?.merged_with(result);
        }
        if let Some(m) = model {
            result = load_base("_BASE_MODEL", m)?.merged_with(result);
        }
    }
    stack.pop();
    Ok(result)
}

fn resolve_base(file: &Path, key: &str, v: Value) -> Result<PathBuf, ConfigError> {
    let Value::String(s) = v else {
        return Err(ConfigError::BadBaseKey {
            file: file.to_path_buf(),
            key: key.into(),
        });
    };
    let p = Path::new(&s);
    let resolved = if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    };
    if !resolved.is_file() {
        return Err(ConfigError::MissingBase {
            file: file.to_path_buf(),
            key: key.into(),
            base: resolved,
        });
    }
    Ok(resolved)
}
