//! The one training loop every task runs through (docs/training.md): per step the scheduled
//! learning rate, forward, loss, backward, clipping and the optimiser step; metrics to
//! metrics.jsonl, TensorBoard and a progress bar; checkpoints every TRAIN.CHECKPOINT_PERIOD
//! epochs, at the end, and when stopped (SIGINT/SIGTERM or a step limit). The caller builds
//! every part and passes it in.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::data_parallel::DataParallel;
use super::resume::{self, Start};
use super::run_dir::RunDir;
use super::saver::{Saver, Weights};
use super::signals::StopOnSignal;
use super::step::{step_seed, StepFailure, Stepper};
use super::step_log::StepLog;
use super::validate::Validation;
use super::{LoopSettings, ModelEma, Summary, TrainError, TrainOptions};
use crate::checkpoint::RunState;
use crate::data::loader::{Loader, LoaderError};
use crate::models::Session;
use crate::optim::{fractional_epoch, LrSchedule, Optimizer};
use crate::tasks::{StepContext, Task};

/// Everything a run trains with.
pub struct Training<'a> {
    pub session: &'a Session,
    pub task: &'a mut dyn Task,
    pub optimizer: Optimizer,
    pub schedule: LrSchedule,
    /// One pass of the loader is one epoch.
    pub loader: Loader,
    /// The val split, scored at the ends of the epochs it names.
    pub validation: Option<Validation>,
    pub settings: LoopSettings,
}

/// Trains until OPTIMIZER.MAX_EPOCH, the stop flag or `opts.max_steps`, writing metrics and
/// checkpoints into `run`. A resumed run restores weights, optimiser state and (epoch, step)
/// and starts its epoch after the batches already trained on, so on the CPU with the same seed
/// it reproduces the uninterrupted run's losses.
pub fn train(
    t: Training<'_>,
    run: &mut RunDir,
    opts: &TrainOptions,
) -> Result<Summary, TrainError> {
    // Set-up: the step runner, resume or refuse, the data, checkpoints, signals, the banner.
    let mut r = Run::start(t, run, opts)?;
    for epoch in r.state.epoch..r.settings.max_epoch {
        // One pass of the data; a stop request or the step limit ends it early.
        if !r.epoch(epoch)? {
            r.summary.interrupted = true;
            break;
        }
        // Epoch end: validation when due, a checkpoint every CHECKPOINT_PERIOD epochs and at
        // the last.
        r.state.epoch = epoch + 1;
        r.validate(epoch)?;
        let w = Weights::of(r.session, &r.opt, &r.ema);
        r.saver.epoch_end(w, &r.state, &r.settings)?;
    }
    // The end: a checkpoint of the last state, the summary.
    r.finish()
}

/// A call of [`train`] under way.
struct Run<'a, 'r> {
    session: &'a Session,
    task: &'a mut dyn Task,
    opt: Optimizer,
    schedule: LrSchedule,
    loader: Loader,
    validation: Option<Validation>,
    settings: LoopSettings,
    run: &'r mut RunDir,
    opts: &'r TrainOptions,
    state: RunState,
    iters: usize,
    stepper: Stepper,
    saver: Saver,
    log: StepLog,
    signals: Option<StopOnSignal>,
    summary: Summary,
    started: Instant,
    /// MODEL.EMA's average of the weights, updated after every step.
    ema: Option<ModelEma>,
    /// A distributed run's gradient averaging and agreement between ranks.
    dp: Option<DataParallel>,
}

impl<'a, 'r> Run<'a, 'r> {
    fn start(
        t: Training<'a>,
        run: &'r mut RunDir,
        opts: &'r TrainOptions,
    ) -> Result<Self, TrainError> {
        let Training {
            session,
            task,
            optimizer: mut opt,
            schedule,
            loader,
            validation,
            settings,
        } = t;
        let started = Instant::now();
        let stepper = Stepper::new(&settings, session.device, task)?;
        // From here on every failure leaves a checkpoint to resume from.
        let Start { state, from, ema } =
            resume::start(run, &settings, task.name(), session, &mut opt, opts)?;
        let dp = DataParallel::start(session, &opt)?;
        run.write_config(&settings.config_yaml)?;
        let loader = loader.with_stop_flag(opts.stop.clone());
        let validation = validation.map(|v| Validation {
            loader: v.loader.with_stop_flag(opts.stop.clone()),
            ..v
        });
        let iters = batches_per_epoch(&loader)?;
        let resumed = from.clone().map(|p| (p, state.step));
        let saver = Saver::new(run.checkpoints_dir(), &settings, iters, resumed);
        let signals = match opts.handle_signals {
            true => Some(StopOnSignal::register(&opts.stop).map_err(TrainError::Signals)?),
            false => None,
        };
        let log = StepLog::start(&settings, session, task, &opt, iters, run, state.step);
        let summary = Summary {
            resumed_from: from,
            ..Summary::default()
        };
        Ok(Self {
            session,
            task,
            opt,
            schedule,
            loader,
            validation,
            settings,
            run,
            opts,
            state,
            iters,
            stepper,
            saver,
            log,
            signals,
            summary,
            started,
            ema,
            dp,
        })
    }

    /// The steps of `epoch` not done yet; false when the pass ended early.
    fn epoch(&mut self, epoch: u64) -> Result<bool, TrainError> {
        // A resumed run starts after the batches of this epoch it has already trained on.
        let skip = self.state.step.saturating_sub(epoch * self.iters as u64) as usize;
        let mut batches = self.loader.epoch_from(epoch, skip);
        for iter in skip.. {
            let limit = self.opts.max_steps.is_some_and(|m| self.state.step >= m);
            let stop = limit || self.opts.stop.load(Ordering::Relaxed);
            // Data: the next batch, and how long the loop waited for it.
            let t0 = Instant::now();
            let next = if stop { None } else { batches.next() };
            let wait = t0.elapsed();
            // Every rank takes the same way, into the step (whose collectives all of them join)
            // or out of the pass: a signal can end one rank's loader a batch before another's.
            let mut out = next.is_none();
            if let Some(dp) = &self.dp {
                out = dp.any(out)?;
            }
            let batch = match next {
                Some(b) if !out => b.map_err(|e| self.loader_stopped(e))?,
                _ => break,
            };
            // Schedule: where the step sits in the run sets its learning rate and seed.
            let at = fractional_epoch(epoch, iter, self.iters, 1);
            let ctx = StepContext {
                epoch: at,
                max_epoch: self.settings.max_epoch as f64,
            };
            let lr = self.schedule.lr_at(at);
            let seed = step_seed(self.state.seed, self.state.step);
            // Step: forward, backward, update; a failure stops the run with a checkpoint.
            let done = self
                .stepper
                .run(
                    self.task,
                    self.session,
                    &mut self.opt,
                    &batch,
                    &ctx,
                    lr,
                    seed,
                    self.dp.as_ref(),
                )
                .map_err(|f| self.step_failed(f))?;
            let mut done = done;
            if let Some(dp) = &self.dp {
                dp.global_metrics(&mut done.loss, &mut done.metrics)?;
            }
            if let Some(ema) = &mut self.ema {
                ema.update();
            }
            self.state.step += 1;
            // Report: images, metric averages, progress.
            let clips = self.task.clips(&batch) * crate::dist::world_size();
            self.log.record(
                self.run,
                self.task,
                epoch,
                self.state.step,
                lr,
                &done,
                clips,
                wait,
            )?;
            self.summary.losses.push((self.state.step, done.loss));
            self.summary.last_metrics = done.metrics;
        }
        let limit = self.opts.max_steps.is_some_and(|m| self.state.step >= m);
        let mut stopped = limit || batches.interrupted() || self.opts.stop.load(Ordering::Relaxed);
        if let Some(dp) = &self.dp {
            stopped = dp.any(stopped)?;
        }
        Ok(!stopped)
    }

    /// Scores the val split when the end of `epoch` is due, logs `val/*` and writes
    /// [`super::BEST_CHECKPOINT`] when acc@1 beats every earlier pass of the run.
    fn validate(&mut self, epoch: u64) -> Result<(), TrainError> {
        let max_epoch = self.settings.max_epoch;
        let Some(v) = self.validation.as_ref().filter(|v| v.due(epoch, max_epoch)) else {
            return Ok(());
        };
        // Every rank scores its shard of the split and all get the whole split's scores; rank
        // 0 alone writes them and the best checkpoint.
        let scores = match v.run(self.session) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(()),
            Err(e) => return Err(self.validation_failed(epoch, e)),
        };
        self.run
            .log_scalars("val", epoch, self.state.step, &scores.records())?;
        let better = best_acc1(&self.state).is_none_or(|best| scores.acc1 > best);
        tracing::info!(
            "val after epoch {}/{max_epoch}: acc@1 {:.2}%, acc@5 {}, loss {:.4} ({} clips){}",
            epoch + 1,
            100.0 * scores.acc1,
            scores
                .acc5
                .map_or("n/a".into(), |a| format!("{:.2}%", 100.0 * a)),
            scores.loss,
            scores.clips,
            if better { "; best so far" } else { "" }
        );
        if let Some(ema) = &mut self.ema {
            // The average scored with the model's forward pass, as the reference's second
            // evaluation of `model_ema.module`.
            ema.swap();
            let scored = v.run(self.session);
            ema.swap();
            match scored {
                Ok(Some(s)) => {
                    self.run
                        .log_scalars("val_ema", epoch, self.state.step, &s.records())?;
                    tracing::info!(
                        "val (EMA weights) after epoch {}/{max_epoch}: acc@1 {:.2}%, loss {:.4}",
                        epoch + 1,
                        100.0 * s.acc1,
                        s.loss
                    );
                }
                Ok(None) => {}
                Err(e) => return Err(self.validation_failed(epoch, e)),
            }
        }
        if better {
            set_best(&mut self.state, epoch + 1, scores.acc1);
            let w = Weights::of(self.session, &self.opt, &self.ema);
            let path = self.saver.save_best(w, &self.state)?;
            self.summary.best_val = Some((epoch + 1, scores.acc1, path));
        }
        Ok(())
    }

    /// A validation pass that failed: the epoch's training is checkpointed first.
    fn validation_failed(&mut self, epoch: u64, e: TrainError) -> TrainError {
        let w = Weights::of(self.session, &self.opt, &self.ema);
        let checkpoint = self.saver.rescue(w, &self.state, "the failed validation");
        TrainError::Run(format!(
            "validation after epoch {} failed: {e}; {}",
            epoch + 1,
            super::error::describe_checkpoint(&checkpoint)
        ))
    }

    /// Too many bad files, or a loader worker died: the steps done so far are kept, as after
    /// a failed step, so fixing the data and `--resume` loses nothing.
    fn loader_stopped(&mut self, error: LoaderError) -> TrainError {
        if let Some(w) = crate::dist::world() {
            // This rank stops itself: the watchdog must not cut its checkpoint short.
            let _ = w.lost_peers(std::time::Duration::ZERO);
        }
        let w = Weights::of(self.session, &self.opt, &self.ema);
        let checkpoint = self.saver.rescue(w, &self.state, "the loader stopped");
        TrainError::LoaderStopped {
            step: self.state.step + 1,
            error,
            checkpoint,
        }
    }

    /// The error of a step that did not finish; a libtorch failure first checkpoints the state
    /// the last completed step left.
    fn step_failed(&mut self, failure: StepFailure) -> TrainError {
        let (step, last_checkpoint) = (self.state.step + 1, self.saver.last.clone());
        match failure {
            StepFailure::NonFiniteLoss(value) => TrainError::NonFiniteLoss {
                step,
                value,
                last_checkpoint,
            },
            StepFailure::NonFiniteGradient(value) => TrainError::NonFiniteGradient {
                step,
                value,
                last_checkpoint,
            },
            StepFailure::Task(e) => e,
            StepFailure::Crashed { message, hint } => {
                // A peer that died fails the step's collectives: name it.
                let message = match crate::dist::world().and_then(|w| w.lost_peer_for(&message)) {
                    Some(peer) => format!("{peer} ({message})"),
                    None => message,
                };
                let w = Weights::of(self.session, &self.opt, &self.ema);
                let checkpoint = self.saver.rescue(w, &self.state, "the failed step");
                TrainError::StepFailed {
                    step,
                    message,
                    hint,
                    checkpoint,
                }
            }
        }
    }

    fn finish(mut self) -> Result<Summary, TrainError> {
        self.log.finish(self.run, self.state.step)?;
        let w = Weights::of(self.session, &self.opt, &self.ema);
        let checkpoint = self.saver.finish(w, &self.state)?;
        let mut summary = self.summary;
        summary.checkpoint = checkpoint;
        summary.signal = self.signals.as_ref().and_then(StopOnSignal::received);
        if summary.interrupted {
            tracing::info!(
                "stopped at step {}; continue with --resume from {}",
                self.state.step,
                super::error::describe_checkpoint(&summary.checkpoint)
            );
        }
        summary.epochs = self.state.epoch;
        summary.steps = self.state.step;
        summary.seconds = self.started.elapsed().as_secs_f64();
        Ok(summary)
    }
}

/// RunState.extra keys of the best validation so far, kept in checkpoints so that a resumed
/// run replaces the best checkpoint only with a better one.
const BEST_ACC1: &str = "best_val_acc1";
const BEST_EPOCH: &str = "best_val_epoch";

fn best_acc1(state: &RunState) -> Option<f64> {
    state
        .extra
        .get(BEST_ACC1)
        .and_then(serde_json::Value::as_f64)
}

fn set_best(state: &mut RunState, epoch: u64, acc1: f64) {
    if let Some(extra) = state.extra.as_object_mut() {
        extra.insert(BEST_ACC1.into(), acc1.into());
        extra.insert(BEST_EPOCH.into(), epoch.into());
    }
}

/// Batches per epoch, or why there are none.
fn batches_per_epoch(loader: &Loader) -> Result<usize, TrainError> {
    match loader.batches_per_epoch() {
        0 => Err(TrainError::EmptyEpoch(
            loader.check_batches().err().unwrap_or(LoaderError::Empty),
        )),
        n => Ok(n),
    }
}
