//! Loading named weights into a model's `VarStore`, reporting what did not fit.

use std::fmt;
use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use super::{CheckpointError, NamedTensors};

/// A tensor whose shape differs between the model and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub name: String,
    pub model: Vec<i64>,
    pub file: Vec<i64>,
}

/// What happened when weights were loaded into a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: usize,
    /// Model parameters the file has no value for (they keep their initialisation).
    pub missing: Vec<String>,
    /// File tensors the model has no parameter for.
    pub unexpected: Vec<String>,
    pub mismatched: Vec<ShapeMismatch>,
}

impl LoadReport {
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tensor(s) loaded", self.loaded)?;
        if !self.missing.is_empty() {
            write!(f, "; missing from the file: {}", self.missing.join(", "))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; not in the model: {}", self.unexpected.join(", "))?;
        }
        for m in &self.mismatched {
            write!(
                f,
                "; shape mismatch for {}: model {:?}, file {:?}",
                m.name, m.model, m.file
            )?;
        }
        Ok(())
    }
}

/// Names that are stored beside weights but are not weights: `__…__` entries (inputs, outputs,
/// optimiser state) and BatchNorm's `num_batches_tracked`, which has no effect on the math.
pub fn is_non_weight(name: &str) -> bool {
    (name.starts_with("__") && name.ends_with("__")) || name.ends_with("num_batches_tracked")
}

/// Multi-GPU (DDP) checkpoints of the reference prefix every key with `module.`.
pub fn strip_module_prefix(name: &str) -> &str {
    name.strip_prefix("module.").unwrap_or(name)
}

/// Copies the file's tensors into `vs` by name. A shape mismatch is always an error; missing and
/// unexpected names are an error only when `strict`, and are reported either way.
pub fn load_into(
    vs: &VarStore,
    file: &NamedTensors,
    path: &Path,
    strict: bool,
) -> Result<LoadReport, CheckpointError> {
    let vars = vs.variables();
    let mut report = LoadReport::default();
    let mut seen = std::collections::HashSet::new();
    for (raw_name, src) in &file.tensors {
        if is_non_weight(raw_name) {
            continue;
        }
        let stripped = strip_module_prefix(raw_name);
        // S3D-G's state_dict holds each unit twice (`Conv_1a.…` and `block1.0.…`); the second
        // spelling loads the same parameter.
        let canonical = match vars.contains_key(stripped) {
            true => None,
            false => crate::models::backbones::s3dg::canonical_key(stripped),
        };
        let name = canonical.as_deref().unwrap_or(stripped);
        let Some(dst) = vars.get(name) else {
            report.unexpected.push(stripped.to_string());
            continue;
        };
        seen.insert(name.to_string());
        if dst.size() != src.size() {
            report.mismatched.push(ShapeMismatch {
                name: name.to_string(),
                model: dst.size(),
                file: src.size(),
            });
            continue;
        }
        copy_into(dst, src).map_err(|message| CheckpointError::Tensor {
            path: path.to_path_buf(),
            name: name.to_string(),
            message,
        })?;
        report.loaded += 1;
    }
    report.missing = vars
        .keys()
        .filter(|k| !seen.contains(*k))
        .cloned()
        .collect();
    report.missing.sort();
    if !report.mismatched.is_empty() || (strict && !report.is_complete()) {
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            report,
        });
    }
    Ok(report)
}

fn copy_into(dst: &Tensor, src: &Tensor) -> Result<(), String> {
    let src = src
        .f_to_kind(dst.kind())
        .map_err(|e| e.to_string())?
        .to_device(dst.device());
    tch::no_grad(|| {
        let mut dst = dst.shallow_clone();
        dst.f_copy_(&src).map_err(|e| e.to_string())
    })
}
