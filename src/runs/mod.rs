//! What each training command runs: `tada pretrain` ([`pretrain`]) and `tada finetune`
//! ([`finetune`]) go from a loaded config to a model, a task, a data source and a run folder;
//! [`fit`] adds the optimiser, schedule and loop settings and calls the one training loop.
//! `tada test` ([`test`]), `tada localize` ([`localize`], which also trains TASK_TYPE
//! localization) and `tada demo` ([`demo`]) build on them.

pub mod demo;
pub mod epic_test;
pub mod extract;
mod finetune;
pub mod localize;
mod parts;
mod pretrain;
pub mod test;
mod weights;

use std::path::PathBuf;
use std::sync::Arc;

pub use finetune::{check_class_count, finetune};
pub use parts::{group_rules, loop_settings, optimisation};
pub use pretrain::{
    pretrain, source_clips as contrastive_source_clips, CONTRASTIVE_SYNTHETIC_DIRECTIONS,
    SYNTHETIC_IMAGES,
};
pub use weights::{load_backbone_weights, WeightsReport};

use crate::config::LoadedConfig;
use crate::data::dataset::Split;
use crate::data::loader::{Loader, SampleSource, Strided};
use crate::data::pipeline::loader_config;
use crate::models::Session;
use crate::tasks::Task;
use crate::train::run_dir::RunDir;
use crate::train::validate::LAST_EPOCHS_VALIDATED;
use crate::train::{train, Summary, TrainError, TrainOptions, Training, Validation};

/// Where a run writes, and how it starts.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run folder; OUTPUT_DIR when unset.
    pub output: Option<PathBuf>,
    /// Pretrained weights for fine-tuning; TRAIN.CHECKPOINT_FILE_PATH when unset.
    pub weights: Option<PathBuf>,
    pub train: TrainOptions,
}

fn run_dir(loaded: &LoadedConfig, opts: &RunOptions) -> Result<RunDir, TrainError> {
    let root = opts
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&loaded.config.output_dir));
    // A distributed run has one folder: rank 0 creates and locks it, then the others (which
    // only read it: the checkpoint to resume from) follow.
    let Some(world) = crate::dist::world() else {
        return Ok(RunDir::create(&root)?);
    };
    let dir = match world.placement.rank {
        0 => RunDir::create(&root).map_err(TrainError::from),
        _ => Ok(RunDir::follow(&root)),
    };
    // Every rank waits for rank 0's folder, and learns whether it could be made.
    let ok = world
        .sum(&[f64::from(u8::from(dir.is_ok()))])
        .map_err(TrainError::dist)?;
    match (dir, ok.first().copied()) {
        (Ok(d), Some(n)) if n as usize == world.placement.world_size => Ok(d),
        (Err(e), _) => Err(e),
        _ => Err(TrainError::Run(format!(
            "rank 0 could not open the run folder {} (its log says why)",
            root.display()
        ))),
    }
}

/// Trains `session`'s model with `task` on `source` (the training split), validating on `val`
/// (the val split) every TRAIN.EVAL_PERIOD epochs: the one place a run builds its optimiser,
/// schedule, loaders and loop settings and enters [`train`].
pub fn fit(
    loaded: &LoadedConfig,
    session: &Session,
    task: &mut dyn Task,
    source: Arc<dyn SampleSource>,
    val: Option<Arc<dyn SampleSource>>,
    run: &mut RunDir,
    opts: &RunOptions,
) -> Result<Summary, TrainError> {
    let cfg = &loaded.config;
    let loader = Loader::new(source, loader_config(cfg, Split::Train, cfg.random_seed));
    // Each rank validates every world-th video (no padding: the sums are all-reduced).
    let val = val.map(|source| match crate::dist::world_size() {
        1 => source,
        n => Arc::new(Strided::new(source, crate::dist::rank(), n)) as Arc<dyn SampleSource>,
    });
    let validation = val.map(|source| Validation {
        loader: Loader::new(source, loader_config(cfg, Split::Val, cfg.random_seed)),
        period: u64::from(cfg.train.eval_period),
        last_epochs: LAST_EPOCHS_VALIDATED,
    });
    enter(
        loaded,
        session,
        task,
        (loader, validation),
        run,
        &opts.train,
    )
}

/// [`fit`] over a loader the caller configured (its batching, workers, bad-sample limit),
/// without validation.
pub fn fit_loader(
    loaded: &LoadedConfig,
    session: &Session,
    task: &mut dyn Task,
    loader: Loader,
    run: &mut RunDir,
    opts: &TrainOptions,
) -> Result<Summary, TrainError> {
    enter(loaded, session, task, (loader, None), run, opts)
}

fn enter(
    loaded: &LoadedConfig,
    session: &Session,
    task: &mut dyn Task,
    (loader, validation): (Loader, Option<Validation>),
    run: &mut RunDir,
    opts: &TrainOptions,
) -> Result<Summary, TrainError> {
    let cfg = &loaded.config;
    parts::check_folds(cfg)?;
    parts::check_world(cfg)?;
    let (optimizer, schedule) = optimisation(cfg, &session.vs, task)?;
    let settings = loop_settings(loaded, run.root())?;
    let training = Training {
        session,
        task,
        optimizer,
        schedule,
        loader,
        validation,
        settings,
    };
    train(training, run, opts)
}
