//! A training checkpoint: weights + optimiser state + run state in one safetensors file.
//!
//! Model tensors keep the reference's state_dict keys, so a checkpoint is also a plain weights
//! file (`tada forward --weights`). Optimiser tensors are stored as `__optim.<slot>.<param>__`:
//! names wrapped in `__` are by convention not weights and are skipped by weight loading. The
//! EMA weights (MODEL.EMA) are stored the same way, as `__ema.<param>__`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{read_safetensors, write_safetensors, CheckpointError};

/// Value of the `format` metadata entry of tada checkpoints.
pub const CHECKPOINT_FORMAT: &str = "tada-checkpoint-1";

/// Where a run stands: enough to continue it exactly. All randomness of a run derives from
/// `(seed, epoch, index)`, so no generator state needs saving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Completed epochs.
    pub epoch: u64,
    /// Completed optimiser steps.
    pub step: u64,
    pub seed: u64,
    /// Trainer-specific state (e.g. a MoCo queue position).
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// Everything a training checkpoint holds.
#[derive(Debug)]
pub struct Checkpoint {
    pub model: Vec<(String, Tensor)>,
    /// Optimiser slots keyed `<slot>.<param>`, e.g. `exp_avg.backbone.conv1.a.weight`.
    pub optimizer: Vec<(String, Tensor)>,
    /// Optimiser hyper-parameters and counters that are not tensors.
    pub optimizer_meta: serde_json::Value,
    /// MODEL.EMA's averaged weights by model name; empty without EMA. Stored as
    /// `__ema.<name>__`, which weight loading skips.
    pub ema: Vec<(String, Tensor)>,
    pub run: RunState,
    /// The resolved config of the run, as YAML.
    pub config_yaml: String,
}

fn optim_name(key: &str) -> String {
    format!("__optim.{key}__")
}

/// The key a checkpoint stores EMA tensor `name` under.
pub fn ema_key(name: &str) -> String {
    format!("__ema.{name}__")
}

/// The model name of a checkpoint key written by [`ema_key`], if it is one.
pub fn ema_name(key: &str) -> Option<&str> {
    key.strip_prefix("__ema.")?.strip_suffix("__")
}

impl Checkpoint {
    /// File name of the checkpoint written after `epoch` completed epochs.
    pub fn file_name(epoch: u64) -> String {
        format!("checkpoint_epoch_{epoch:05}.safetensors")
    }

    /// File name of a checkpoint written inside an epoch (stop signal, step limit, failed
    /// step) after `step` steps, `epoch` epochs complete. It sorts after that epoch's
    /// checkpoint and before the next epoch's, so [`latest_checkpoint`] finds the newest, and
    /// it leaves the epoch-end checkpoint in place.
    pub fn mid_epoch_file_name(epoch: u64, step: u64) -> String {
        format!("checkpoint_epoch_{epoch:05}_step_{step:08}.safetensors")
    }

    /// Writes the checkpoint atomically: an interrupted write leaves no partial file.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let optim_names: Vec<String> = self.optimizer.iter().map(|(k, _)| optim_name(k)).collect();
        let mut tensors: Vec<(String, &Tensor)> =
            self.model.iter().map(|(k, t)| (k.clone(), t)).collect();
        tensors.extend(
            optim_names
                .into_iter()
                .zip(self.optimizer.iter().map(|(_, t)| t)),
        );
        tensors.extend(self.ema.iter().map(|(k, t)| (ema_key(k), t)));
        let run = serde_json::to_string(&self.run).map_err(|e| CheckpointError::Format {
            path: path.to_path_buf(),
            message: format!("cannot encode run state: {e}"),
        })?;
        let metadata = HashMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("run".to_string(), run),
            ("optimizer".to_string(), self.optimizer_meta.to_string()),
            ("config".to_string(), self.config_yaml.clone()),
        ]);
        write_safetensors(path, &tensors, &metadata)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let file = read_safetensors(path)?;
        let not_ckpt = |message: String| CheckpointError::NotACheckpoint {
            path: path.to_path_buf(),
            message,
        };
        match file.metadata.get("format") {
            Some(f) if f == CHECKPOINT_FORMAT => {}
            Some(f) => {
                return Err(not_ckpt(format!(
                    "format {f:?}, expected {CHECKPOINT_FORMAT:?}"
                )))
            }
            None => {
                return Err(not_ckpt(
                    "no `format` metadata (a plain weights file?)".into(),
                ))
            }
        }
        let meta = |key: &str| {
            file.metadata
                .get(key)
                .cloned()
                .ok_or_else(|| not_ckpt(format!("no `{key}` metadata")))
        };
        let run: RunState = serde_json::from_str(&meta("run")?)
            .map_err(|e| not_ckpt(format!("bad `run` metadata: {e}")))?;
        let optimizer_meta = serde_json::from_str(&meta("optimizer")?)
            .map_err(|e| not_ckpt(format!("bad `optimizer` metadata: {e}")))?;
        let config_yaml = meta("config")?;
        let (mut model, mut optimizer, mut ema) = (Vec::new(), Vec::new(), Vec::new());
        for (name, t) in file.tensors {
            if let Some(key) = name
                .strip_prefix("__optim.")
                .and_then(|n| n.strip_suffix("__"))
            {
                optimizer.push((key.to_string(), t));
            } else if let Some(key) = ema_name(&name) {
                ema.push((key.to_string(), t));
            } else {
                model.push((name, t));
            }
        }
        Ok(Self {
            model,
            optimizer,
            optimizer_meta,
            ema,
            run,
            config_yaml,
        })
    }
}

/// The newest checkpoint in `dir` (names sort by epoch), ignoring unfinished temporary files.
pub fn latest_checkpoint(dir: &Path) -> Option<PathBuf> {
    checkpoints_newest_first(dir).into_iter().next()
}

/// The checkpoints in `dir`, newest first (names sort by epoch, then step), ignoring unfinished
/// temporary files; empty when `dir` cannot be read.
pub fn checkpoints_newest_first(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("checkpoint_epoch_") && n.ends_with(".safetensors"))
        })
        .collect();
    names.sort();
    names.reverse();
    names
}
