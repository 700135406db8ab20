//! Where a run starts: a fresh state, the newest readable checkpoint of its folder (weights,
//! optimiser state, epoch and step restored), or a refusal to start over a run that exists.

use std::path::{Path, PathBuf};

use super::run_dir::RunDir;
use super::{LoopSettings, ModelEma, TrainError, TrainOptions};
use crate::checkpoint::{checkpoints_newest_first, load_into, Checkpoint, NamedTensors, RunState};
use crate::models::Session;
use crate::optim::Optimizer;

/// Whether a run continues from the newest checkpoint of its folder: `--resume`, or
/// TRAIN.AUTO_RESUME (on by default, as in the reference).
pub fn resumes(auto_resume: bool, opts: &TrainOptions) -> bool {
    opts.resume || auto_resume
}

/// The state the loop starts from, and the checkpoint it came from.
pub(super) struct Start {
    pub state: RunState,
    pub from: Option<PathBuf>,
    /// MODEL.EMA's average: the checkpoint's, or the starting weights'.
    pub ema: Option<ModelEma>,
}

/// A fresh state for `task`, or the restored state of the run in `run` when the run resumes.
/// A run that does not resume refuses a folder that holds checkpoints: starting over would
/// overwrite that run's checkpoints and mix two runs' metrics.
pub(super) fn start(
    run: &RunDir,
    settings: &LoopSettings,
    task: &str,
    session: &Session,
    opt: &mut Optimizer,
    opts: &TrainOptions,
) -> Result<Start, TrainError> {
    // Built only when the run does start fresh: the EMA copies every weight.
    let fresh = || Start {
        state: RunState {
            epoch: 0,
            step: 0,
            seed: settings.seed,
            extra: serde_json::json!({ "task": task }),
        },
        from: None,
        ema: settings.ema_decay.map(|d| ModelEma::new(&session.vs, d)),
    };
    let candidates = checkpoints_newest_first(&run.checkpoints_dir());
    if !resumes(settings.auto_resume, opts) {
        return match candidates.first() {
            Some(newest) => Err(TrainError::RunExists {
                dir: run.root().to_path_buf(),
                newest: newest.clone(),
            }),
            None => Ok(fresh()),
        };
    }
    let Some((path, ckpt)) = newest_readable(&candidates)? else {
        if opts.resume {
            tracing::info!(
                "no checkpoint in {} yet: starting fresh",
                run.root().display()
            );
        }
        return Ok(fresh());
    };
    check_task(run, &path, &ckpt, task)?;
    let (state, ema) = restore(&path, ckpt, session, opt, settings.ema_decay)?;
    if state.seed != settings.seed {
        tracing::warn!(
            "resuming a run seeded {} with RANDOM_SEED {}: the rest of the run follows the \
             checkpoint's seed",
            state.seed,
            settings.seed
        );
    }
    tracing::info!(
        "resuming from {} (epoch {}, step {})",
        path.display(),
        state.epoch,
        state.step
    );
    Ok(Start {
        state,
        from: Some(path),
        ema,
    })
}

/// The newest of `candidates` (newest first) that reads as a checkpoint. A newer one that does
/// not (a disk filled up, a file copied half-way) is passed over with a warning; when none reads,
/// the newest one's error.
fn newest_readable(candidates: &[PathBuf]) -> Result<Option<(PathBuf, Checkpoint)>, TrainError> {
    let mut first_error = None;
    for path in candidates {
        match Checkpoint::load(path) {
            Ok(ckpt) => return Ok(Some((path.clone(), ckpt))),
            Err(e) => {
                tracing::warn!("{e}; trying the checkpoint before it");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(None),
    }
}

/// Refuses to resume a checkpoint another task wrote (a fine-tune run in a MoSI run's folder):
/// its weights would not fit, and the message would be about tensors, not about the folder.
fn check_task(run: &RunDir, path: &Path, ckpt: &Checkpoint, task: &str) -> Result<(), TrainError> {
    match ckpt.run.extra.get("task").and_then(|t| t.as_str()) {
        Some(theirs) if theirs != task => Err(TrainError::OtherTask {
            dir: run.root().to_path_buf(),
            checkpoint: path.to_path_buf(),
            theirs: theirs.to_string(),
            ours: task.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Loads the weights, optimiser state, EMA weights (when the run keeps an average) and run
/// state of `ckpt`, read from `path`.
fn restore(
    path: &Path,
    ckpt: Checkpoint,
    session: &Session,
    opt: &mut Optimizer,
    ema_decay: Option<f64>,
) -> Result<(RunState, Option<ModelEma>), TrainError> {
    let named = NamedTensors {
        tensors: ckpt.model,
        metadata: Default::default(),
    };
    load_into(&session.vs, &named, path, true)?;
    opt.load_state(&ckpt.optimizer, &ckpt.optimizer_meta)?;
    let ema = match ema_decay {
        None => None,
        Some(d) => match ModelEma::restore(&session.vs, d, &ckpt.ema)
            .map_err(|e| TrainError::Run(format!("{}: {e}", path.display())))?
        {
            Some(ema) => Some(ema),
            None => {
                tracing::warn!(
                    "{} holds no EMA weights (MODEL.EMA was off): the average starts from \
                     the resumed weights",
                    path.display()
                );
                Some(ModelEma::new(&session.vs, d))
            }
        },
    };
    Ok((ckpt.run, ema))
}
