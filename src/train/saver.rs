//! The loop's checkpoints: at epoch ends, at the end of the call, and — best effort — when a
//! step or the loader fails, so that fixing the cause and `--resume` loses no finished step.

use std::path::PathBuf;

use tch::Tensor;

use super::{LoopSettings, ModelEma, TrainError};
use crate::checkpoint::{Checkpoint, RunState};
use crate::models::Session;
use crate::optim::Optimizer;

/// File name of the checkpoint with the best validation acc@1 so far, beside the periodic ones.
pub const BEST_CHECKPOINT: &str = "checkpoint_best.safetensors";

/// What a checkpoint saves besides the run state: the model, the optimiser, the EMA weights.
#[derive(Clone, Copy)]
pub(super) struct Weights<'a> {
    pub session: &'a Session,
    pub opt: &'a Optimizer,
    pub ema: Option<&'a ModelEma>,
}

impl<'a> Weights<'a> {
    pub fn of(session: &'a Session, opt: &'a Optimizer, ema: &'a Option<ModelEma>) -> Self {
        Self {
            session,
            opt,
            ema: ema.as_ref(),
        }
    }
}

/// Writes checkpoints into a run's `checkpoints/` and remembers the last one.
pub(super) struct Saver {
    dir: PathBuf,
    config_yaml: String,
    /// Steps per epoch, which tells an epoch's end from a state inside it.
    iters: u64,
    /// The step whose state the last checkpoint holds.
    saved_step: Option<u64>,
    /// The checkpoint written last, or the one the run resumed from.
    pub last: Option<PathBuf>,
}

impl Saver {
    /// `resumed`: the checkpoint the loop started from and its step.
    pub fn new(
        dir: PathBuf,
        settings: &LoopSettings,
        iters: usize,
        resumed: Option<(PathBuf, u64)>,
    ) -> Self {
        let (last, saved_step) = resumed.map_or((None, None), |(p, s)| (Some(p), Some(s)));
        Self {
            dir,
            config_yaml: settings.config_yaml.clone(),
            iters: iters as u64,
            saved_step,
            last,
        }
    }

    fn checkpoint(&self, w: Weights<'_>, state: &RunState) -> Checkpoint {
        let Weights { session, opt, ema } = w;
        let mut model: Vec<(String, Tensor)> = session.vs.variables().into_iter().collect();
        model.sort_by(|a, b| a.0.cmp(&b.0));
        Checkpoint {
            model,
            optimizer: opt.state_tensors(),
            optimizer_meta: opt.state_meta(),
            ema: ema.map_or_else(Vec::new, |e| {
                e.tensors()
                    .map(|(n, t)| (n.to_string(), t.shallow_clone()))
                    .collect()
            }),
            run: state.clone(),
            config_yaml: self.config_yaml.clone(),
        }
    }

    /// Writes the state as [`BEST_CHECKPOINT`]: a whole checkpoint (it resumes and tests like
    /// any other), which resuming never picks, since only epoch names count there.
    pub fn save_best(&self, w: Weights<'_>, state: &RunState) -> Result<PathBuf, TrainError> {
        let path = self.dir.join(BEST_CHECKPOINT);
        if crate::dist::is_writer() {
            self.checkpoint(w, state).save(&path)?;
        }
        Ok(path)
    }

    /// Writes the state of `session`, `opt` and `state`.
    pub fn save(&mut self, w: Weights<'_>, state: &RunState) -> Result<PathBuf, TrainError> {
        let mut ckpt = self.checkpoint(w, state);
        // A state on an epoch boundary is that epoch's end, whichever way the loop got there (a
        // stop after an epoch's last batch has not yet counted the epoch): its checkpoint gets
        // the epoch's name, and only states inside an epoch get mid-epoch names.
        let boundary = self.iters > 0 && state.step % self.iters == 0;
        let name = if boundary {
            ckpt.run.epoch = ckpt.run.epoch.max(state.step / self.iters);
            Checkpoint::file_name(ckpt.run.epoch)
        } else {
            Checkpoint::mid_epoch_file_name(state.epoch, state.step)
        };
        let path = self.dir.join(name);
        // Rank 0 writes; the other ranks hold the same state and only note its name.
        if crate::dist::is_writer() {
            ckpt.save(&path)?;
        }
        self.saved_step = Some(state.step);
        self.last = Some(path.clone());
        Ok(path)
    }

    /// The checkpoint of an epoch's end, every CHECKPOINT_PERIOD epochs and at MAX_EPOCH.
    pub fn epoch_end(
        &mut self,
        w: Weights<'_>,
        state: &RunState,
        settings: &LoopSettings,
    ) -> Result<(), TrainError> {
        if state.epoch % settings.checkpoint_period == 0 || state.epoch == settings.max_epoch {
            self.save(w, state)?;
        }
        Ok(())
    }

    /// The end of a call: the state is saved unless the last checkpoint already holds it.
    pub fn finish(
        &mut self,
        w: Weights<'_>,
        state: &RunState,
    ) -> Result<Option<PathBuf>, TrainError> {
        if self.saved_step != Some(state.step) {
            self.save(w, state)?;
        }
        Ok(self.last.clone())
    }

    /// After a failure (`after`: what failed, for the log): the state as the last completed
    /// step left it, written unless nothing changed since the start or the last checkpoint.
    /// A write that fails is logged and the last checkpoint named instead, so the failure that
    /// stopped the run is the one reported.
    pub fn rescue(&mut self, w: Weights<'_>, state: &RunState, after: &str) -> Option<PathBuf> {
        if state.step == 0 || self.saved_step == Some(state.step) {
            return self.last.clone();
        }
        match self.save(w, state) {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::error!("cannot checkpoint after {after}: {e}");
                self.last.clone()
            }
        }
    }
}
