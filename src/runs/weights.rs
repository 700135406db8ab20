//! Pretrained weights into a model that fine-tunes: only the backbone carries over.

use std::path::{Path, PathBuf};

use crate::checkpoint::image_init::{self, ImageModel, InitSettings};
use crate::checkpoint::{is_non_weight, strip_module_prefix, CheckpointError, LoadReport};
use crate::config::Config;
use crate::models::inference::read_weights;
use crate::models::Session;
use crate::train::TrainError;

/// Pretrained weights loaded into a fine-tuned model.
#[derive(Debug, Clone)]
pub struct WeightsReport {
    pub path: PathBuf,
    /// Tensors of the file outside `backbone.*`, dropped: the new task has its own head.
    pub dropped: Vec<String>,
    pub load: LoadReport,
    /// The image model the weights were converted from, when they were one.
    pub image_model: Option<ImageModel>,
}

/// Copies the `backbone.*` tensors of `path` into the model: a safetensors file, or the
/// reference's `.pyth`/`.pth`/`.pt` read through the native importer (as `tada test` and
/// `tada forward` read them). An image model's state dict (torchvision ResNet, ConvNeXt, CLIP
/// ViT: the files TRAIN.INIT names) is first converted to the backbone's keys, and
/// TRAIN.CHECKPOINT_PRE_PROCESS applied when enabled, as the reference does. The rest
/// (`head.*`, and `paramcrop.*`, `momentum_encoder.*`, `contrastive.*` of contrastive runs) is
/// dropped. Weights of which not one tensor loads are an error: the run would silently start
/// from the initialisation.
pub fn load_backbone_weights(
    session: &Session,
    cfg: &Config,
    path: &Path,
) -> Result<WeightsReport, TrainError> {
    let wrap = |source| TrainError::Weights {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut file = read_weights(path).map_err(wrap)?;
    let settings = InitSettings::from_config(cfg);
    let init_error = |e: image_init::InitError| TrainError::Run(format!("{}: {e}", path.display()));
    let image_model = ImageModel::detect(file.tensors.iter().map(|(n, _)| n.as_str()));
    if let Some(model) = image_model {
        let tensors = std::mem::take(&mut file.tensors);
        file.tensors = image_init::convert(model, &settings, tensors).map_err(init_error)?;
        tracing::info!(
            "{} holds {} weights: converted to the video backbone's keys",
            path.display(),
            model.name()
        );
    }
    if settings.pre.enable {
        let tensors = std::mem::take(&mut file.tensors);
        file.tensors = image_init::preprocess(&settings, tensors).map_err(init_error)?;
    }
    let tensors = file.tensors.len();
    let file_names: Vec<String> = file
        .tensors
        .iter()
        .take(3)
        .map(|(n, _)| n.clone())
        .collect();
    let mut dropped = Vec::new();
    file.tensors.retain(|(name, _)| {
        // The pretext's head, and a contrastive run's parameter net, key encoder and queue, are
        // dropped; non-weight entries (optimiser state) are left for the loader to skip.
        let keep = is_non_weight(name) || strip_module_prefix(name).starts_with("backbone.");
        if !keep {
            dropped.push(name.clone());
        }
        keep
    });
    let load = crate::checkpoint::load_into(&session.vs, &file, path, false).map_err(wrap)?;
    if load.loaded == 0 {
        let mut model_names: Vec<String> = session.vs.variables().into_keys().collect();
        model_names.sort();
        model_names.truncate(3);
        return Err(wrap(CheckpointError::NothingLoaded {
            path: path.to_path_buf(),
            tensors,
            file_names,
            model_names,
        }));
    }
    Ok(WeightsReport {
        path: path.to_path_buf(),
        dropped,
        load,
        image_model,
    })
}
