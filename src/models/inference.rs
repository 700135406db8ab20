//! `tada forward`: run a configured model with given weights on a saved tensor — how a user
//! proves that converted weights reproduce the reference.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::heads::Predictions;
use super::{ModelError, VideoModel};
use crate::checkpoint::{ema_name, import_checkpoint, ImportOptions};
use crate::checkpoint::{
    load_into, read_safetensors, write_safetensors, CheckpointError, LoadReport, NamedTensors,
};
use crate::config::Config;
use crate::output_path::check_output_file;
use crate::step_guard::guarded;

/// Why `tada forward` failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path} has no `__input__` tensor")]
    NoInput { path: PathBuf },
    #[error("{path}: the model has parameters the file does not: {missing}")]
    MissingWeights { path: PathBuf, missing: String },
    #[error("{path}: `__input__` has shape {shape:?}; every dimension (batch and frames included) must be at least 1")]
    EmptyInput { path: PathBuf, shape: Vec<i64> },
    /// libtorch failed (out of memory, most likely); the message is its first line.
    #[error("{what} failed: {message}")]
    Torch { what: String, message: String },
    #[error(transparent)]
    Output(#[from] crate::output_path::OutputPathError),
}

/// Weights from a file: `.pyth`/`.pth`/`.pt` (the reference's `torch.save` files) through the
/// strict native importer, anything else as safetensors.
pub fn read_weights(path: &Path) -> Result<NamedTensors, CheckpointError> {
    match imported(path, ImportOptions::default()) {
        Some(file) => file,
        None => read_safetensors(path),
    }
}

/// A `.pyth`/`.pth`/`.pt` file through the native importer; `None` for any other file.
fn imported(path: &Path, options: ImportOptions) -> Option<Result<NamedTensors, CheckpointError>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(ext, "pyth" | "pth" | "pt").then(|| {
        import_checkpoint(path, options).map(|i| NamedTensors {
            tensors: i.tensors,
            metadata: HashMap::new(),
        })
    })
}

/// The EMA weights (MODEL.EMA) of a file: a tada checkpoint's `__ema.<name>__` tensors under
/// their model names, or the reference's `model_ema_state`. A file without any is an error
/// naming it, rather than a silent test of the plain weights.
pub fn read_ema_weights(path: &Path) -> Result<NamedTensors, CheckpointError> {
    if let Some(file) = imported(path, ImportOptions { ema: true }) {
        return file;
    }
    let file = read_safetensors(path)?;
    let tensors: Vec<(String, Tensor)> = file
        .tensors
        .into_iter()
        .filter_map(|(k, t)| ema_name(&k).map(|n| (n.to_string(), t)))
        .collect();
    if tensors.is_empty() {
        return Err(CheckpointError::NotACheckpoint {
            path: path.to_path_buf(),
            message: "--ema: it holds no EMA weights (`__ema.*__` tensors; the run had \
                      MODEL.EMA.ENABLE false)"
                .into(),
        });
    }
    Ok(NamedTensors {
        tensors,
        metadata: file.metadata,
    })
}

/// Loads `weights` into a new model of `cfg`, runs eval forward on `input`'s `__input__` and
/// writes `__output__` (and `__out_logits__`, the pooled features) to `output`, which is
/// checked first (see [`check_output_file`]).
pub fn forward_file(
    cfg: &Config,
    weights: &Path,
    input: &Path,
    output: &Path,
) -> Result<LoadReport, ForwardError> {
    check_output_file(output, &[weights, input])?;
    let vs = VarStore::new(Device::Cpu);
    // Building allocates every parameter; libtorch failing at that comes back as a panic.
    let model =
        guarded(|| VideoModel::new(&vs.root(), cfg)).map_err(|message| ForwardError::Torch {
            what: "building the model".into(),
            message,
        })??;
    let file = read_weights(weights)?;
    let report = load_into(&vs, &file, weights, false)?;
    if !report.missing.is_empty() {
        return Err(ForwardError::MissingWeights {
            path: weights.to_path_buf(),
            missing: report.missing.join(", "),
        });
    }
    let inputs = if input == weights {
        file
    } else {
        read_safetensors(input)?
    };
    let xs = inputs
        .get("__input__")
        .ok_or_else(|| ForwardError::NoInput {
            path: input.to_path_buf(),
        })?;
    if xs.size().contains(&0) {
        return Err(ForwardError::EmptyInput {
            path: input.to_path_buf(),
            shape: xs.size(),
        });
    }
    let xs = xs.to_kind(Kind::Float);
    model.check_input(&xs)?;
    // A shape the layers cannot take (frames fewer than a temporal kernel, a side smaller
    // than the strides) or memory running out panics inside tch.
    let out = guarded(|| tch::no_grad(|| model.forward_t(&xs, false))).map_err(|message| {
        ForwardError::Torch {
            what: format!("the forward pass on {} {:?}", input.display(), xs.size()),
            message,
        }
    })?;
    let pred = match out.predictions {
        Predictions::Tensor(t) => t,
        // MoSINet returns a dict; its first (usually only) entry is the output, as in the fixtures.
        Predictions::Named(mut v) => v.remove(0).1,
    };
    let tensors = [
        ("__output__".to_string(), &pred),
        ("__out_logits__".to_string(), &out.features),
    ];
    let meta = HashMap::from([("format".to_string(), "tada-forward-1".to_string())]);
    write_safetensors(output, &tensors, &meta)?;
    Ok(report)
}

/// Largest absolute difference between two tensors (for reports and tests).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}
