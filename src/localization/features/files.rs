//! Reading feature and classifier files: `torch.save` files through the safe importer
//! (DATA.LOAD_TYPE torch: `<clip>.pkl` holding a tensor, or a dict of them) or NumPy files
//! (numpy: `<clip>.npy`, classifier results `<clip>.npz`).

use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::checkpoint::import::{import_checkpoint, ImportOptions};
use crate::config::schema::LoadType;

use super::FeatureError;

/// The verb and noun entries of a classifier-results file.
pub const VERB_KEY: &str = "verb_class";
pub const NOUN_KEY: &str = "noun_class";

/// Where a split's files are and how they are stored.
#[derive(Debug, Clone)]
pub struct FeatureFiles {
    /// DATA.DATA_ROOT_DIR: each clip's rows are these folders' files side by side.
    pub roots: Vec<PathBuf>,
    /// DATA.CLASSIFIER_ROOT_DIR when DATA.LOAD_CLASSIFIER_RES is set.
    pub classifier_root: Option<PathBuf>,
    pub load_type: LoadType,
}

impl FeatureFiles {
    fn path(&self, dir: &Path, stem: &str, classifier: bool) -> PathBuf {
        let ext = match (self.load_type, classifier) {
            (LoadType::Torch, _) => "pkl",
            (LoadType::Numpy, false) => "npy",
            (LoadType::Numpy, true) => "npz",
        };
        dir.join(format!("{stem}.{ext}"))
    }

    /// A clip's (R, C) float rows: every root's file, concatenated channel-wise.
    pub fn rows(&self, stem: &str) -> Result<Tensor, FeatureError> {
        let parts = self
            .roots
            .iter()
            .map(|root| {
                let path = self.path(root, stem, false);
                let t = match self.load_type {
                    LoadType::Torch => only_tensor(&path)?,
                    LoadType::Numpy => super::npy::read_npy(&path).map_err(|e| bad(&path, e))?,
                };
                check_rows(&path, t)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<i64> = parts.iter().map(|t| t.size()[0]).collect();
        if rows.windows(2).any(|w| w[0] != w[1]) {
            return Err(FeatureError::File {
                path: self.path(&self.roots[0], stem, false),
                reason: format!(
                    "the DATA.DATA_ROOT_DIR folders hold {rows:?} rows for this clip; they must \
                     agree"
                ),
            });
        }
        Ok(Tensor::cat(&parts, 1))
    }

    /// A clip's classifier results: verb (R, V·K_verb) and noun (R, V·K_noun) scores.
    pub fn classifier(&self, stem: &str) -> Result<Option<(Tensor, Tensor)>, FeatureError> {
        let Some(root) = &self.classifier_root else {
            return Ok(None);
        };
        let path = self.path(root, stem, true);
        let named: Vec<(String, Tensor)> = match self.load_type {
            LoadType::Torch => {
                import_checkpoint(&path, ImportOptions::default())
                    .map_err(|e| FeatureError::File {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                    .tensors
            }
            LoadType::Numpy => super::npy::read_npz(&path).map_err(|e| bad(&path, e))?,
        };
        let get = |key: &str| {
            let t = named
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| FeatureError::File {
                    path: path.clone(),
                    reason: format!("no `{key}` entry"),
                })?;
            check_rows(&path, t)
        };
        let (verb, noun) = (get(VERB_KEY)?, get(NOUN_KEY)?);
        Ok(Some((verb, noun)))
    }
}

fn bad(path: &Path, e: String) -> FeatureError {
    let reason = match path.exists() {
        true => e,
        false => "no such file".into(),
    };
    FeatureError::File {
        path: path.to_path_buf(),
        reason,
    }
}

/// The importer's refusal, with the way out when the file pickles numpy arrays (which the
/// importer does not rebuild: only tensors).
fn import_reason(e: &str) -> String {
    match e.contains("forbidden global numpy") {
        true => format!(
            "{e}; this file holds numpy arrays: convert the folder with \
             scripts/convert_features.py (to .npy / .npz) and set DATA.LOAD_TYPE numpy"
        ),
        false => e.to_string(),
    }
}

/// The one tensor of a `torch.save` file (a bare tensor, or a dict holding one).
fn only_tensor(path: &Path) -> Result<Tensor, FeatureError> {
    let file_err = |reason: String| FeatureError::File {
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        return Err(file_err("no such file".into()));
    }
    let mut tensors = import_checkpoint(path, ImportOptions::default())
        .map_err(|e| file_err(import_reason(&e.to_string())))?
        .tensors;
    match tensors.len() {
        1 => Ok(tensors.remove(0).1),
        n => Err(file_err(format!(
            "holds {n} tensors ({}); a feature file holds one",
            tensors
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Feature rows are (R, C) floats.
fn check_rows(path: &Path, t: Tensor) -> Result<Tensor, FeatureError> {
    if t.dim() != 2 {
        return Err(FeatureError::File {
            path: path.to_path_buf(),
            reason: format!("shape {:?}; features are (rows, channels)", t.size()),
        });
    }
    Ok(t.to_kind(Kind::Float))
}
