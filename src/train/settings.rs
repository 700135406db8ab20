//! What a call of [`super::train`] is told (its settings and options) and what it reports.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::precision::Precision;

/// The loop's own settings: the TRAIN, OPTIMIZER and top-level keys it reads, resolved by the
/// run that starts it (`runs::loop_settings`).
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// OPTIMIZER.MAX_EPOCH.
    pub max_epoch: u64,
    /// TRAIN.CHECKPOINT_PERIOD in epochs, at least 1.
    pub checkpoint_period: u64,
    /// LOG_PERIOD in steps, at least 1.
    pub log_period: u64,
    /// TRAIN.BATCH_SIZE, for the banner.
    pub batch_size: usize,
    /// TRAIN.MICRO_BATCH_SIZE: 0, or the chunk a step's batch runs in.
    pub micro_batch_size: usize,
    pub precision: Precision,
    /// OPTIMIZER.CLIP_GRAD_NORM when on.
    pub clip_grad_norm: Option<f64>,
    /// RANDOM_SEED of a fresh run (a resumed one follows its checkpoint's).
    pub seed: u64,
    /// TRAIN.AUTO_RESUME.
    pub auto_resume: bool,
    /// MODEL.EMA.DECAY when MODEL.EMA.ENABLE: the loop keeps an average of the weights.
    pub ema_decay: Option<f64>,
    /// The resolved config, stored in every checkpoint.
    pub config_yaml: String,
}

/// How a call of [`super::train`] runs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint of the run folder, when there is one (also done
    /// when TRAIN.AUTO_RESUME is true, see [`super::resumes`]).
    pub resume: bool,
    /// Stop (with a checkpoint) once this many optimiser steps are done in total.
    pub max_steps: Option<u64>,
    /// Set to stop the run: the loader's epoch ends, the loop checkpoints and returns.
    pub stop: Arc<AtomicBool>,
    /// Let SIGINT and SIGTERM set `stop` while the loop runs.
    pub handle_signals: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            resume: false,
            max_steps: None,
            stop: Arc::new(AtomicBool::new(false)),
            handle_signals: true,
        }
    }
}

/// What a call of [`super::train`] did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Completed epochs and optimiser steps of the run (earlier calls included).
    pub epochs: u64,
    pub steps: u64,
    /// `(step number, loss)` of every step this call took; step numbers count from 1.
    pub losses: Vec<(u64, f64)>,
    /// Task metrics of the last step.
    pub last_metrics: Vec<(String, f64)>,
    /// The checkpoint written last (or resumed from, when none was written).
    pub checkpoint: Option<PathBuf>,
    pub resumed_from: Option<PathBuf>,
    /// Stopped by the stop flag or the step limit before MAX_EPOCH.
    pub interrupted: bool,
    /// The signal (SIGINT, SIGTERM) that stopped the run, if one did.
    pub signal: Option<i32>,
    pub seconds: f64,
    /// The best validation of this call: epoch (1-based), acc@1 and its checkpoint.
    pub best_val: Option<(u64, f64, PathBuf)>,
}
