//! Weights-only export: the model tensors of a training checkpoint under the reference's
//! state_dict names, so that `model.load_state_dict(safetensors.torch.load_file(p))` loads them
//! strictly in PyTorch. Everything else a checkpoint holds is left out: optimiser slots and
//! other `__…__` entries, ParamCrop's parameter net, MoCo's key encoder and queue — whatever is
//! not a variable of the model the checkpoint's own config builds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::{write_safetensors, Checkpoint, CheckpointError};
use crate::models::VideoModel;

/// What [`export_weights`] wrote and left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Tensors written, BatchNorm counters included.
    pub tensors: usize,
    /// `num_batches_tracked` counters added (tada keeps none; PyTorch's BatchNorm has one).
    pub counters: usize,
    /// Scalars of the model's tensors.
    pub parameters: i64,
    /// Tensors left out, counted by the first part of their name (`optimizer` for the
    /// optimiser's slots).
    pub left_out: BTreeMap<String, usize>,
}

/// Writes the model weights of the tada checkpoint `checkpoint` to `out` (atomically; the
/// caller decides whether an existing `out` may be replaced).
pub fn export_weights(checkpoint: &Path, out: &Path) -> Result<ExportSummary, CheckpointError> {
    let ckpt = Checkpoint::load(checkpoint)?;
    let not_ckpt = |message: String| CheckpointError::NotACheckpoint {
        path: checkpoint.to_path_buf(),
        message,
    };
    let wanted = model_shapes(&ckpt.config_yaml, checkpoint)?;
    let mut summary = ExportSummary {
        tensors: 0,
        counters: 0,
        parameters: 0,
        left_out: BTreeMap::new(),
    };
    if !ckpt.optimizer.is_empty() {
        summary
            .left_out
            .insert("optimizer".into(), ckpt.optimizer.len());
    }
    let mut kept: Vec<(String, Tensor)> = Vec::new();
    for (name, t) in ckpt.model {
        match wanted.get(&name) {
            Some(shape) if *shape == t.size() => kept.push((name, t)),
            Some(shape) => {
                return Err(not_ckpt(format!(
                    "tensor {name} has shape {:?}, its config's model {shape:?}",
                    t.size()
                )))
            }
            None => {
                let group = name.split('.').next().unwrap_or_default().to_string();
                *summary.left_out.entry(group).or_default() += 1;
            }
        }
    }
    let have: HashSet<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
    let mut missing: Vec<&String> = wanted
        .keys()
        .filter(|n| !have.contains(n.as_str()))
        .collect();
    missing.sort();
    if let Some(first) = missing.first() {
        return Err(not_ckpt(format!(
            "it lacks {} of the {} tensors of its config's model, first {first}",
            missing.len(),
            wanted.len()
        )));
    }
    summary.parameters = kept.iter().map(|(_, t)| t.numel() as i64).sum();
    let counters = batchnorm_counters(&kept, ckpt.run.step);
    summary.counters = counters.len();
    kept.extend(counters);
    // S3D-G's reference state_dict spells every unit twice (`Conv_1a.…` and `block1.0.…`);
    // strict loading in PyTorch wants both.
    let aliases: Vec<(String, Tensor)> = kept
        .iter()
        .filter_map(|(n, t)| {
            crate::models::backbones::s3dg::alias_key(n).map(|a| (a, t.shallow_clone()))
        })
        .collect();
    kept.extend(aliases);
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    summary.tensors = kept.len();
    let refs: Vec<(String, &Tensor)> = kept.iter().map(|(n, t)| (n.clone(), t)).collect();
    // What PyTorch's safetensors.torch.save_file writes; some loaders check it.
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(out, &refs, &metadata)?;
    Ok(summary)
}

/// Names and shapes of the variables of the model `config_yaml` (a checkpoint's config)
/// builds. Only they are wanted: the model is built on the CPU, whatever the run trained on.
fn model_shapes(
    config_yaml: &str,
    checkpoint: &Path,
) -> Result<HashMap<String, Vec<i64>>, CheckpointError> {
    let not_ckpt = |message: String| CheckpointError::NotACheckpoint {
        path: checkpoint.to_path_buf(),
        message,
    };
    let name = checkpoint.display().to_string();
    let cfg = crate::config::load_str(config_yaml, &name, &[])
        .map_err(|e| not_ckpt(format!("its config does not load: {e}")))?;
    let vs = VarStore::new(Device::Cpu);
    VideoModel::new(&vs.root(), &cfg.config)
        .map_err(|e| not_ckpt(format!("its config does not build a model: {e}")))?;
    Ok(vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect())
}

/// PyTorch's BatchNorm has a `num_batches_tracked` buffer that strict loading wants; tada's
/// has none. Each BatchNorm (known by its `running_var`) gets one holding the run's optimiser
/// steps: the counter only matters to a BatchNorm built with `momentum=None`, which the
/// reference's models do not use.
fn batchnorm_counters(tensors: &[(String, Tensor)], steps: u64) -> Vec<(String, Tensor)> {
    tensors
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".running_var"))
        .map(|prefix| {
            let steps = i64::try_from(steps).unwrap_or(i64::MAX);
            (format!("{prefix}.num_batches_tracked"), Tensor::from(steps))
        })
        .collect()
}
