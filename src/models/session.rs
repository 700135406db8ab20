//! The model a run trains, with its variables on its device.

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::{ModelError, VideoModel};
use crate::config::Config;

/// A model with its variables on its device.
pub struct Session {
    pub vs: VarStore,
    pub model: VideoModel,
    pub device: Device,
}

/// CUDA device 0 when NUM_GPUS > 0 and CUDA is available (in a distributed run, the rank's
/// local rank modulo the devices it sees: one GPU per rank), else the CPU. On CUDA it also turns
/// on cuDNN's benchmark mode: training shapes repeat step after step, so its one-off search
/// for the fastest convolution algorithms pays for itself within a few steps.
///
/// Asking for GPUs without CUDA (the reference's configs say NUM_GPUS: 8) is warned about once
/// per process: the demo and a pretrain-then-finetune script decide the device per stage.
pub fn device_for(cfg: &Config) -> Device {
    if cfg.num_gpus == 0 {
        return Device::Cpu;
    }
    if tch::Cuda::is_available() {
        tch::Cuda::cudnn_set_benchmark(true);
        let local = crate::dist::world().map_or(0, |w| w.placement.local_rank);
        return Device::Cuda(local % tch::Cuda::device_count().max(1) as usize);
    }
    static CPU_FALLBACK: std::sync::Once = std::sync::Once::new();
    CPU_FALLBACK.call_once(|| {
        tracing::warn!(
            "NUM_GPUS is {}, but CUDA is not available: running on the CPU ({} threads)",
            cfg.num_gpus,
            tch::get_num_threads()
        )
    });
    Device::Cpu
}

impl Session {
    /// Seeds libtorch with RANDOM_SEED (the initialisation draws from it) and builds the model.
    pub fn new(cfg: &Config) -> Result<Self, ModelError> {
        let device = device_for(cfg);
        tch::manual_seed(cfg.random_seed as i64);
        let vs = VarStore::new(device);
        let model = VideoModel::new(&vs.root(), cfg)?;
        Ok(Self { vs, model, device })
    }

    /// The model's `(B, K)` class scores for `inputs` in evaluation mode without autograd (heads
    /// apply their activation: probabilities by default); `None` when the model has several
    /// outputs (MoSI's named heads), which scoring against one label cannot take.
    pub fn class_scores(&self, inputs: &Tensor) -> Option<Tensor> {
        self.scores(inputs).single().map(Tensor::shallow_clone)
    }

    /// All the model's predictions for `inputs`, in evaluation mode without autograd.
    pub fn scores(&self, inputs: &Tensor) -> crate::models::heads::Predictions {
        let out = tch::no_grad(|| self.model.forward_t(&inputs.to_device(self.device), false));
        out.predictions
    }

    /// A two-head model's `(B, K_verb)` and `(B, K_noun)` scores (probabilities by default)
    /// for `inputs`; `None` for any other model.
    pub fn verb_noun_scores(&self, inputs: &Tensor) -> Option<(Tensor, Tensor)> {
        use crate::models::heads::{NOUN, VERB};
        let p = self.scores(inputs);
        match (p.names().as_slice(), p.get(VERB), p.get(NOUN)) {
            ([VERB, NOUN], Some(v), Some(n)) => Some((v.shallow_clone(), n.shallow_clone())),
            _ => None,
        }
    }
}
