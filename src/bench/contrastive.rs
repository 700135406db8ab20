//! `tada bench data` for a contrastive config (PRETRAIN.GENERATOR `Contrastive`): the source
//! clips `tada pretrain` reads through the parallel loader, then the two views of every clip cut
//! on the CPU as the contrastive task cuts them (cubic crop, flip, colour jitter, normalise).
//! The cubes are drawn uniformly within ParamCrop's bounds: the parameter net's forward, which
//! replaces the draw once it starts, is a tiny MLP and not part of the input pipeline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tada_augment::paramcrop::ParamCropError;
use tch::{Device, Kind};

use super::loader::{loader_throughput_with, LoaderRate};
use crate::config::Config;
use crate::data::dataset::Split;
use crate::data::loader::{Batch, Loader, LoaderError, SampleSource};
use crate::data::pipeline::loader_config;
use crate::tasks::contrastive::paramcrop::paramcrop_config;
use crate::tasks::contrastive::views::{cut_view, ViewConfig};

/// Why the contrastive pipeline could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum ContrastiveBenchError {
    #[error(transparent)]
    Loader(#[from] LoaderError),
    #[error("cutting the contrastive views: {0}")]
    Views(#[from] ParamCropError),
}

/// Result of a contrastive pipeline benchmark.
#[derive(Debug, Clone)]
pub struct ContrastiveRate {
    /// The loader's side: source clips, their shape and the workers' decode share.
    pub loader: LoaderRate,
    /// Seconds of the timed span spent cutting views in the calling thread.
    pub cut_seconds: f64,
    /// `(3, T, H, W)` of one view.
    pub view_shape: Vec<i64>,
}

impl ContrastiveRate {
    /// Views per second: two per source clip, the clips a contrastive training step counts.
    pub fn clips_per_second(&self) -> f64 {
        2.0 * self.loader.clips_per_second()
    }

    pub fn cut_share(&self) -> f64 {
        if self.loader.seconds > 0.0 {
            self.cut_seconds / self.loader.seconds
        } else {
            0.0
        }
    }
}

/// Pulls batches of `source` (the clips contrastive pretraining reads) for about `budget`
/// and cuts both views of every clip on the CPU.
pub fn contrastive_views(
    cfg: &Config,
    source: Arc<dyn SampleSource>,
    budget: Duration,
) -> Result<ContrastiveRate, ContrastiveBenchError> {
    let loader = Loader::new(source, loader_config(cfg, Split::Train, 0));
    let bounds = paramcrop_config(&cfg.pretrain.paramcrop);
    let views = ViewConfig::from_config(cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.random_seed);
    let (mut cut_seconds, mut view_shape) = (0.0, Vec::new());
    let mut cut = |b: &Batch, timed: bool| -> Result<(), ContrastiveBenchError> {
        let t0 = Instant::now();
        let x = b.inputs.to_kind(Kind::Float);
        // (B, 3, T, H, W) source clips.
        let s = x.size();
        let raw = bounds.uniform_raw(s[0], &mut rng, Device::Cpu);
        for cube in bounds.cubes(&raw, [s[2], s[3], s[4]]) {
            let v = cut_view(&x, &cube.theta(), &views, &mut rng)?;
            view_shape = v.size()[1..].to_vec();
        }
        if timed {
            cut_seconds += t0.elapsed().as_secs_f64();
        }
        Ok(())
    };
    let loader = loader_throughput_with(&loader, budget, &mut cut)?;
    Ok(ContrastiveRate {
        loader,
        cut_seconds,
        view_shape,
    })
}
