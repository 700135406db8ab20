//! The one training loop every task runs through (docs/training.md): per step the scheduled
//! learning rate, forward, loss, backward, clipping and the optimiser step; metrics to
//! metrics.jsonl, TensorBoard and a progress bar; checkpoints every TRAIN.CHECKPOINT_PERIOD
//! epochs, at the end, and when stopped (SIGINT/SIGTERM or a step limit). The caller builds
//! every part and passes it in.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::resume::{self, Start};
use super::run_dir::RunDir;
use super::saver::Saver;
use super::signals::StopOnSignal;
use super::step::{step_seed, StepFailure, Stepper};
use super::step_log::StepLog;
use super::{LoopSettings, Session, Summary, TrainError, TrainOptions};
use crate::checkpoint::RunState;
use crate::data::loader::{Loader, LoaderError};
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
    let Training {
        session,
        task,
        optimizer: mut opt,
        schedule,
        loader,
        settings: s,
    } = t;
    let started = Instant::now();
    let mut stepper = Stepper::new(&s, session.device, task)?;
    // Resume or refuse; from here on every failure leaves a checkpoint to resume from.
    let Start { mut state, from } = resume::start(run, &s, task.name(), session, &mut opt, opts)?;
    // Data: the loader's passes, ended early by the stop flag.
    let loader = loader.with_stop_flag(opts.stop.clone());
    let iters = batches_per_epoch(&loader)?;
    let mut saver = Saver::new(
        run.checkpoints_dir(),
        &s,
        iters,
        from.clone().map(|p| (p, state.step)),
    );
    let signals = match opts.handle_signals {
        true => Some(StopOnSignal::register(&opts.stop).map_err(TrainError::Signals)?),
        false => None,
    };
    let mut log = StepLog::start(&s, session, task, &opt, iters, run, state.step);
    let mut summary = Summary {
        resumed_from: from,
        ..Summary::default()
    };
    'epochs: for epoch in state.epoch..s.max_epoch {
        // A resumed run starts after the batches of this epoch it has already trained on.
        let skip = state.step.saturating_sub(epoch * iters as u64) as usize;
        let mut batches = loader.epoch_from(epoch, skip);
        for iter in skip.. {
            if opts.stop.load(Ordering::Relaxed) || opts.max_steps.is_some_and(|m| state.step >= m)
            {
                summary.interrupted = true;
                break 'epochs;
            }
            let t0 = Instant::now();
            let batch = match batches.next() {
                None => break,
                Some(b) => b.map_err(|e| loader_stopped(e, &mut saver, session, &opt, &state))?,
            };
            let wait = t0.elapsed();
            // Schedule: where the step sits in the run sets its learning rate and seed.
            let ctx = StepContext {
                epoch: fractional_epoch(epoch, iter, iters, 1),
                max_epoch: s.max_epoch as f64,
            };
            let lr = schedule.lr_at(ctx.epoch);
            // Step: forward, backward, update; a failure stops the run with a checkpoint.
            let done = stepper
                .run(
                    task,
                    session,
                    &mut opt,
                    &batch,
                    &ctx,
                    lr,
                    step_seed(state.seed, state.step),
                )
                .map_err(|f| step_failed(f, &mut saver, session, &opt, &state))?;
            state.step += 1;
            // Report: images, metric averages, progress.
            let clips = task.clips(&batch);
            log.record(run, task, epoch, state.step, lr, &done, clips, wait)?;
            summary.losses.push((state.step, done.loss));
            summary.last_metrics = done.metrics;
        }
        if batches.interrupted() || opts.stop.load(Ordering::Relaxed) {
            summary.interrupted = true;
            break;
        }
        // Epoch end: a checkpoint every CHECKPOINT_PERIOD epochs and at the last.
        state.epoch = epoch + 1;
        saver.epoch_end(session, &opt, &state, &s)?;
    }
    log.finish();
    summary.signal = signals.as_ref().and_then(StopOnSignal::received);
    summary.checkpoint = saver.finish(session, &opt, &state)?;
    finish(summary, &state, started)
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

/// Too many bad files, or a loader worker died: the steps done so far are kept, as after a
/// failed step, so fixing the data and `--resume` loses nothing.
fn loader_stopped(
    error: LoaderError,
    saver: &mut Saver,
    session: &Session,
    opt: &Optimizer,
    state: &RunState,
) -> TrainError {
    let checkpoint = saver.rescue(session, opt, state, "the loader stopped");
    TrainError::LoaderStopped {
        step: state.step + 1,
        error,
        checkpoint,
    }
}

/// The error of a step that did not finish; a libtorch failure first checkpoints the state the
/// last completed step left.
fn step_failed(
    failure: StepFailure,
    saver: &mut Saver,
    session: &Session,
    opt: &Optimizer,
    state: &RunState,
) -> TrainError {
    let (step, last_checkpoint) = (state.step + 1, saver.last.clone());
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
            let checkpoint = saver.rescue(session, opt, state, "the failed step");
            TrainError::StepFailed {
                step,
                message,
                hint,
                checkpoint,
            }
        }
    }
}

fn finish(mut summary: Summary, state: &RunState, started: Instant) -> Result<Summary, TrainError> {
    if summary.interrupted {
        tracing::info!(
            "stopped at step {}; continue with --resume from {}",
            state.step,
            super::error::describe_checkpoint(&summary.checkpoint)
        );
    }
    summary.epochs = state.epoch;
    summary.steps = state.step;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
