//! Native import of the reference's PyTorch checkpoints (`torch.save` files: `.pyth`, `.pth`,
//! `.pt`) into tada's safetensors, without Python and without executing anything from the file.
//!
//! Everything is read from one open file handle, in this order:
//! 1. the container ([`container`]): a zip archive must be laid out as `torch.save` writes it
//!    (every entry stored, sizes and offsets within the file, no duplicates, see [`zip`]); a
//!    legacy file (`_use_new_zipfile_serialization=False`, PyTorch < 1.6) must start with
//!    torch's magic number;
//! 2. every pickle is pre-scanned opcode by opcode ([`scan`]): a global that is not on
//!    [`ALLOWED_GLOBALS`] is refused by name before anything is built or allocated for it;
//! 3. the pickle is unpickled by a strict interpreter ([`unpickle`]) that builds plain data
//!    and calls nothing; every storage a persistent id declares must match its zip entry (or
//!    the legacy layout) byte for byte in size, and every tensor view must lie within its
//!    storage;
//! 4. the state dict is chosen ([`select`]); no tensor may materialize more bytes than the
//!    file holds, nor all of them together more than [`MAX_EXPANSION`] times the file; storage
//!    bytes are CRC-checked when the zip recorded a CRC.
//!
//! The tensors come out in file order, named as in the file minus a leading `module.`.

mod container;
mod scan;
mod select;
mod unpickle;
mod value;
mod zip;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tch::Tensor;

pub use scan::ALLOWED_GLOBALS;

use super::{write_safetensors, CheckpointError};

/// The `format` metadata value of an imported file.
pub const IMPORT_FORMAT: &str = "tada-import-1";
/// Largest pickle (`data.pkl`, or a legacy file's header pickles) accepted. The reference's
/// checkpoints hold a few hundred bytes of pickle per tensor plus the config.
pub const MAX_PICKLE_BYTES: u64 = 16 << 20;
/// The tensors read from a file may not add up to more than this many times its size (views
/// of one storage, such as tied weights, legitimately exceed 1).
pub const MAX_EXPANSION: u64 = 4;

/// What to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Import `model_ema_state` (the EMA weights) instead of `model_state`.
    pub ema: bool,
}

/// Which part of the file the tensors came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportedFrom {
    /// The file is a bare state dict.
    StateDict,
    /// The reference's checkpoint dict, its `model_state`.
    ModelState,
    /// The reference's checkpoint dict, its `model_ema_state`.
    ModelEmaState,
    /// A dict whose `model` entry is the state dict (the official ConvNeXt image checkpoints).
    Model,
    /// `torch.save(tensor)`: one unnamed tensor (localisation feature files).
    Tensor,
}

impl ImportedFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StateDict => "state_dict",
            Self::ModelState => "model_state",
            Self::ModelEmaState => "model_ema_state",
            Self::Model => "model",
            Self::Tensor => "tensor",
        }
    }
}

/// A checkpoint's model tensors (CPU, dtype as saved), in file order with any leading
/// `module.` removed, plus the checkpoint's `epoch` and `cfg` when it has them.
#[derive(Debug)]
pub struct ImportedCheckpoint {
    pub tensors: Vec<(String, Tensor)>,
    pub epoch: Option<i64>,
    pub cfg: Option<String>,
    pub from: ImportedFrom,
    /// Whether the file also holds EMA weights (`model_ema_state`).
    pub has_ema: bool,
}

impl ImportedCheckpoint {
    /// Total number of values over all tensors (buffers included).
    pub fn num_values(&self) -> i64 {
        self.tensors.iter().map(|(_, t)| t.numel() as i64).sum()
    }

    /// The safetensors header metadata of the imported file.
    pub fn metadata(&self, source: &str) -> HashMap<String, String> {
        let mut meta = HashMap::from([
            ("format".to_string(), IMPORT_FORMAT.to_string()),
            ("source".to_string(), source.to_string()),
            ("weights".to_string(), self.from.as_str().to_string()),
        ]);
        if let Some(epoch) = self.epoch {
            meta.insert("epoch".to_string(), epoch.to_string());
        }
        if let Some(cfg) = &self.cfg {
            meta.insert("cfg".to_string(), cfg.clone());
        }
        meta
    }
}

/// What `import_to_safetensors` wrote.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub tensors: usize,
    pub values: i64,
    pub epoch: Option<i64>,
    pub from: ImportedFrom,
    pub has_ema: bool,
    pub output: PathBuf,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} tensors, {} parameters",
            self.tensors, self.values
        )?;
        if let Some(epoch) = self.epoch {
            write!(f, ", epoch {epoch}")?;
        }
        write!(f, " ({}", self.from.as_str())?;
        if self.has_ema && self.from == ImportedFrom::ModelState {
            write!(f, "; EMA weights also present: --ema")?;
        }
        write!(f, ") to {}", self.output.display())
    }
}

/// Reads `src` and writes its model tensors to `out` as safetensors (atomically), with the
/// metadata `format`, `source`, `weights`, and `epoch`/`cfg` when the file has them. `out` is
/// checked first: never `src` itself, a link or a device, and its folder must take a file.
pub fn import_to_safetensors(
    src: &Path,
    out: &Path,
    options: ImportOptions,
) -> Result<ImportSummary, CheckpointError> {
    crate::output_path::check_output_file(out, &[src])?;
    let imported = import_checkpoint(src, options)?;
    let source = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| src.display().to_string());
    let refs: Vec<(String, &Tensor)> = imported
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t))
        .collect();
    write_safetensors(out, &refs, &imported.metadata(&source))?;
    Ok(ImportSummary {
        tensors: imported.tensors.len(),
        values: imported.num_values(),
        epoch: imported.epoch,
        from: imported.from,
        has_ema: imported.has_ema,
        output: out.to_path_buf(),
    })
}

fn one_line(message: impl fmt::Display) -> String {
    message
        .to_string()
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads the model tensors of a `torch.save` file (see the module docs for what is checked).
pub fn import_checkpoint(
    path: &Path,
    options: ImportOptions,
) -> Result<ImportedCheckpoint, CheckpointError> {
    let fail = |message: String| CheckpointError::Import {
        path: path.to_path_buf(),
        message: one_line(message),
    };
    let read_err = |source: std::io::Error| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let file_len = file.metadata().map_err(read_err)?.len();
    let loaded = container::load(&mut file, file_len).map_err(fail)?;
    let (selected, epoch, cfg, from, has_ema) = match &loaded.root {
        value::Value::Tensor(t) if !options.ema => (
            vec![(Rc::<str>::from(""), t.clone())],
            None,
            None,
            ImportedFrom::Tensor,
            false,
        ),
        root => {
            let chosen = select::choose(root, options).map_err(fail)?;
            let selected = select::tensor_entries(&chosen, path).map_err(fail)?;
            (
                selected,
                chosen.epoch,
                chosen.cfg,
                chosen.from,
                chosen.has_ema,
            )
        }
    };
    select::check_sizes(&selected, file_len).map_err(fail)?;
    let tensors = read_tensors(&mut file, &loaded, &selected).map_err(fail)?;
    Ok(ImportedCheckpoint {
        tensors,
        epoch,
        cfg,
        from,
        has_ema,
    })
}

/// Reads the selected tensors' bytes out of their storages (each storage read once) into
/// CPU tensors named without their `module.` prefix.
fn read_tensors(
    file: &mut File,
    loaded: &container::Loaded,
    selected: &[select::TensorEntry],
) -> Result<Vec<(String, Tensor)>, String> {
    let mut cache: HashMap<String, Rc<Vec<u8>>> = HashMap::new();
    let mut tensors = Vec::with_capacity(selected.len());
    for (name, t) in selected {
        let region = loaded
            .regions
            .get(&t.storage.key)
            .ok_or_else(|| format!("tensor {name}: storage {} not found", t.storage.key))?;
        let bytes = container::tensor_bytes(file, t, region, &mut cache)
            .map_err(|e| format!("tensor {name}: {e}"))?;
        let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
        let tensor = Tensor::f_from_data_size(&bytes, &shape, t.storage.dtype.kind())
            .map_err(|e| format!("tensor {name}: {e}"))?;
        tensors.push((super::strip_module_prefix(name).to_string(), tensor));
    }
    Ok(tensors)
}
