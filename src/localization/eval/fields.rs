//! Typed reads of JSON fields for the evaluation files; a field that is missing or of the
//! wrong kind becomes an [`EvalFileError::Field`] naming the file and the field's JSON path.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::EvalFileError;

/// Reads and parses a JSON file (object key order kept: serde_json's `preserve_order`).
pub(super) fn read_json(path: &Path) -> Result<Value, EvalFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalFileError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| EvalFileError::Json {
        file: path.to_path_buf(),
        source,
    })
}

/// The file being read, for error messages.
pub(super) struct Fields {
    pub file: PathBuf,
}

impl Fields {
    pub fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
        }
    }

    pub fn error(&self, field: &str, problem: impl Into<String>) -> EvalFileError {
        EvalFileError::Field {
            file: self.file.clone(),
            field: if field.is_empty() {
                "(top level)"
            } else {
                field
            }
            .to_string(),
            problem: problem.into(),
        }
    }

    pub fn object<'v>(
        &self,
        v: &'v Value,
        field: &str,
    ) -> Result<&'v Map<String, Value>, EvalFileError> {
        v.as_object()
            .ok_or_else(|| self.error(field, format!("must be an object, got {}", kind(v))))
    }

    pub fn array<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Vec<Value>, EvalFileError> {
        v.as_array()
            .ok_or_else(|| self.error(field, format!("must be a list, got {}", kind(v))))
    }

    /// `obj[key]`, whose path is `parent.key`.
    pub fn get<'v>(
        &self,
        obj: &'v Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Result<&'v Value, EvalFileError> {
        obj.get(key)
            .ok_or_else(|| self.error(&join(parent, key), "is missing"))
    }

    pub fn number(&self, v: &Value, field: &str) -> Result<f64, EvalFileError> {
        v.as_f64()
            .ok_or_else(|| self.error(field, format!("must be a number, got {}", kind(v))))
    }

    pub fn string<'v>(&self, v: &'v Value, field: &str) -> Result<&'v str, EvalFileError> {
        v.as_str()
            .ok_or_else(|| self.error(field, format!("must be a string, got {}", kind(v))))
    }

    /// A class id as Python's `int()` reads it (an integer, a float truncated toward zero, or a
    /// string of digits); ids index classes, so a negative one is refused.
    pub fn class_id(&self, v: &Value, field: &str) -> Result<usize, EvalFileError> {
        let id = match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|x| x.is_finite())
                    .map(|x| x.trunc() as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match id {
            Some(id) if id >= 0 => Ok(id as usize),
            _ => Err(self.error(
                field,
                format!("must be a class id (an integer >= 0), got {v}"),
            )),
        }
    }

    /// A `[start, end]` pair of numbers.
    pub fn segment(&self, v: &Value, field: &str) -> Result<(f64, f64), EvalFileError> {
        match v.as_array().map(|a| a.as_slice()) {
            Some([s, e]) if s.is_number() && e.is_number() => Ok((
                s.as_f64().unwrap_or(f64::NAN),
                e.as_f64().unwrap_or(f64::NAN),
            )),
            _ => Err(self.error(field, format!("must be two numbers [start, end], got {v}"))),
        }
    }
}

/// `parent.key`, or `key` at the top level.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
