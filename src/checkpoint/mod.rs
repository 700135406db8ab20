//! Checkpoints that cannot execute code: safetensors files holding the model's weights under the
//! reference's state_dict keys, optimiser state, and the run state (epoch, step, seed, config) in
//! the header metadata. Every write is atomic (temporary file + rename).
//!
//! Native import of the reference's PyTorch `.pyth`/`.pth` files is in [`import`]: it reads them
//! without Python or code execution and writes them out in tada's format.

mod export;
pub mod image_init;
pub mod import;
mod run;
mod state_dict;
mod tensors;

pub use export::{export_weights, ExportSummary};
pub use import::{
    import_checkpoint, import_to_safetensors, ImportOptions, ImportSummary, ImportedCheckpoint,
};
pub use run::{
    checkpoints_newest_first, ema_key, ema_name, latest_checkpoint, Checkpoint, RunState,
    CHECKPOINT_FORMAT,
};
pub use state_dict::{is_non_weight, load_into, strip_module_prefix, LoadReport};
pub use tensors::{read_safetensors, write_safetensors, NamedTensors};

use std::path::PathBuf;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: tensor {name} has dtype {dtype}, which tada cannot load")]
    UnsupportedDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error("{path}: tensor {name}: {message}")]
    Tensor {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error("{path} is not a tada checkpoint: {message}")]
    NotACheckpoint { path: PathBuf, message: String },
    /// A PyTorch checkpoint that cannot (or may not) be imported.
    #[error("cannot import {path}: {message}")]
    Import { path: PathBuf, message: String },
    #[error("{path}: {report}")]
    Mismatch { path: PathBuf, report: LoadReport },
    /// Weights of which not one tensor fits the model: using them would silently train or
    /// test from the initialisation. The message leaves the path to the caller's context.
    #[error(
        "none of its {tensors} tensor(s) is a parameter of the model ({})",
        names_hint(.file_names, .model_names)
    )]
    NothingLoaded {
        path: PathBuf,
        tensors: usize,
        /// A few names of the file and of the model, to show how they differ.
        file_names: Vec<String>,
        model_names: Vec<String>,
    },
    #[error(transparent)]
    Output(#[from] crate::output_path::OutputPathError),
}

fn names_hint(file: &[String], model: &[String]) -> String {
    let few = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!("file: {}; model: {}", few(file), few(model))
}
