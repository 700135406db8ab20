//! The one training loop every task runs through (TRAINING.md §5–§7, §10): per step the
//! scheduled learning rate, forward, loss, backward, clipping and the optimiser step; metrics to
//! metrics.jsonl, TensorBoard and a progress bar; checkpoints every TRAIN.CHECKPOINT_PERIOD
//! epochs, at the end, and when stopped (SIGINT/SIGTERM or a step limit).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::precision::{autocast, LossScaler, Precision};
use super::progress::Progress;
use super::run_dir::RunDir;
use super::signals::StopOnSignal;
use super::step_guard::{self, guarded};
use super::TrainError;
use crate::checkpoint::{checkpoints_newest_first, load_into, Checkpoint, NamedTensors, RunState};
use crate::config::{Config, LoadedConfig};
use crate::data::loader::{Batch, Loader, LoaderError, SampleSource};
use crate::models::VideoModel;
use crate::optim::{clip_setting, fractional_epoch, LrSchedule, OptimError, Optimizer};
use crate::tasks::{StepContext, Task};

/// A model with its variables on its device.
pub struct Session {
    pub vs: VarStore,
    pub model: VideoModel,
    pub device: Device,
}

/// CUDA device 0 when NUM_GPUS > 0 and CUDA is available, else the CPU. On CUDA it also turns
/// on cuDNN's benchmark mode: training shapes repeat step after step, so its one-off search
/// for the fastest convolution algorithms pays for itself within a few steps.
pub fn device_for(cfg: &Config) -> Device {
    if cfg.num_gpus > 0 && tch::Cuda::is_available() {
        tch::Cuda::cudnn_set_benchmark(true);
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

impl Session {
    /// Seeds libtorch with RANDOM_SEED (the initialisation draws from it) and builds the model.
    pub fn new(cfg: &Config) -> Result<Self, TrainError> {
        let device = device_for(cfg);
        tch::manual_seed(cfg.random_seed as i64);
        let vs = VarStore::new(device);
        let model = VideoModel::new(&vs.root(), cfg)?;
        Ok(Self { vs, model, device })
    }
}

/// Whether a run continues from the newest checkpoint of its folder: `--resume`, or
/// TRAIN.AUTO_RESUME (on by default, as in the reference).
pub fn resumes(cfg: &Config, opts: &TrainOptions) -> bool {
    opts.resume || cfg.train.auto_resume
}

/// How a call of [`train`] runs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint of the run folder, when there is one (also done
    /// when TRAIN.AUTO_RESUME is true, see [`resumes`]).
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

/// What a call of [`train`] did.
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
}

/// One line saying what is about to train where: task, parameters the optimiser updates,
/// device, steps, batch, precision and the run folder.
fn run_banner(
    c: &Config,
    session: &Session,
    task: &dyn Task,
    trained: usize,
    iters: usize,
    max_epoch: u64,
    run: &RunDir,
) -> String {
    let trained = if trained >= 1_000_000 {
        format!("{:.2}M", trained as f64 / 1e6)
    } else {
        trained.to_string()
    };
    let device = match session.device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ if c.num_gpus > 0 => format!(
            "the CPU ({} threads; NUM_GPUS is {} but CUDA is not available)",
            tch::get_num_threads(),
            c.num_gpus
        ),
        _ => format!("the CPU ({} threads)", tch::get_num_threads()),
    };
    let micro = match c.train.micro_batch_size {
        m if m > 0 && m < c.train.batch_size => format!(" in chunks of {m}"),
        _ => String::new(),
    };
    format!(
        "{}: {trained} parameters trained on {device}; {max_epoch} epochs x {iters} steps, batch {}{micro}, {}; run folder {}",
        task.name(),
        c.train.batch_size,
        format!("{:?}", c.train.precision).to_lowercase(),
        run.root().display()
    )
}

/// Why [`forward_backward`] stopped.
enum StepError {
    /// A chunk's loss was not finite (its value); nothing was backpropagated from it.
    NonFinite(f64),
    Failed(TrainError),
}

/// The forward and backward passes of one step: one per chunk of `batch` (the whole batch
/// unless `micro` cuts it, TRAIN.MICRO_BATCH_SIZE), each chunk's loss weighted by its share of
/// the batch so the accumulated gradient is that of the batch's mean loss. Returns the
/// batch's loss and metrics (share-weighted means of the chunks').
fn forward_backward(
    task: &dyn Task,
    session: &Session,
    batch: &Batch,
    micro: usize,
    precision: Precision,
    scaler: Option<&LossScaler>,
    ctx: &StepContext,
) -> Result<(f64, Vec<(String, f64)>), StepError> {
    let device = session.device;
    let mut loss = 0.0;
    let mut metrics: Vec<(String, f64)> = Vec::new();
    for chunk in &batch.chunks(micro) {
        let share = chunk.indices.len() as f64 / batch.indices.len() as f64;
        let tl = autocast(precision, device, || {
            task.step(&session.model, chunk, device, ctx)
        })
        .map_err(StepError::Failed)?;
        let value = tl.loss.double_value(&[]);
        if !value.is_finite() {
            return Err(StepError::NonFinite(value));
        }
        // share is 1 for a whole batch, and x * 1 is exact: one path for both.
        let weighted = &tl.loss * share;
        match scaler {
            Some(sc) => sc.scale_loss(&weighted).backward(),
            None => weighted.backward(),
        }
        loss += share * value;
        accumulate(&mut metrics, &tl.metrics, share);
    }
    Ok((loss, metrics))
}

/// Adds `share` x each of `values` to the same-named entry of `sum` (appending new names in
/// order): the batch's metrics as the share-weighted mean of its chunks'.
fn accumulate(sum: &mut Vec<(String, f64)>, values: &[(String, f64)], share: f64) {
    for (name, v) in values {
        match sum.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += share * v,
            None => sum.push((name.clone(), share * v)),
        }
    }
}

/// libtorch seed of step `step`: dropout and any other in-model randomness of a step depend on
/// (seed, step) only, so a resumed run draws what the uninterrupted one drew.
fn step_seed(seed: u64, step: u64) -> i64 {
    let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64's finaliser: nearby steps get unrelated seeds.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as i64
}

fn save_checkpoint(
    cfg: &LoadedConfig,
    session: &Session,
    opt: &Optimizer,
    state: &RunState,
    run: &RunDir,
    iters: usize,
) -> Result<PathBuf, TrainError> {
    let mut model: Vec<(String, Tensor)> = session.vs.variables().into_iter().collect();
    model.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ckpt = Checkpoint {
        model,
        optimizer: opt.state_tensors(),
        optimizer_meta: opt.state_meta(),
        run: state.clone(),
        config_yaml: cfg.to_yaml(),
    };
    // A state on an epoch boundary is that epoch's end, whichever way the loop got there (a
    // stop after an epoch's last batch has not yet counted the epoch): its checkpoint gets the
    // epoch's name, and only states inside an epoch get mid-epoch names.
    let iters = iters as u64;
    let boundary = iters > 0 && state.step % iters == 0;
    let name = if boundary {
        ckpt.run.epoch = ckpt.run.epoch.max(state.step / iters);
        Checkpoint::file_name(ckpt.run.epoch)
    } else {
        Checkpoint::mid_epoch_file_name(state.epoch, state.step)
    };
    let path = run.checkpoints_dir().join(name);
    ckpt.save(&path)?;
    Ok(path)
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

/// Loads the weights, optimiser state and run state of `ckpt`, read from `path`.
fn restore(
    path: &Path,
    ckpt: Checkpoint,
    session: &Session,
    opt: &mut Optimizer,
) -> Result<RunState, TrainError> {
    let named = NamedTensors {
        tensors: ckpt.model,
        metadata: Default::default(),
    };
    load_into(&session.vs, &named, path, true)?;
    opt.load_state(&ckpt.optimizer, &ckpt.optimizer_meta)?;
    Ok(ckpt.run)
}

/// Averages of the metrics logged over one LOG_PERIOD.
#[derive(Default)]
struct Window {
    steps: u64,
    loss: f64,
    metrics: Vec<(String, f64)>,
    clips: usize,
    data_wait: Duration,
    start: Option<Instant>,
}

impl Window {
    fn add(&mut self, loss: f64, metrics: &[(String, f64)], clips: usize, wait: Duration) {
        self.steps += 1;
        self.loss += loss;
        self.clips += clips;
        self.data_wait += wait;
        for (name, v) in metrics {
            match self.metrics.iter_mut().find(|(n, _)| n == name) {
                Some((_, sum)) => *sum += v,
                None => self.metrics.push((name.clone(), *v)),
            }
        }
    }

    /// `(name, value)` records of the window, then a fresh window from now.
    fn take(&mut self, lr: f64) -> Vec<(String, f64)> {
        let n = self.steps.max(1) as f64;
        let wall = self.start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let mut out = vec![("loss".to_string(), self.loss / n), ("lr".to_string(), lr)];
        out.extend(self.metrics.iter().map(|(k, v)| (k.clone(), v / n)));
        if wall > 0.0 {
            out.push(("clips_per_s".to_string(), self.clips as f64 / wall));
            out.push((
                "data_wait_share".to_string(),
                (self.data_wait.as_secs_f64() / wall).min(1.0),
            ));
        }
        *self = Self {
            start: Some(Instant::now()),
            ..Self::default()
        };
        out
    }
}

/// Trains `session`'s model on `loader` with `task` until OPTIMIZER.MAX_EPOCH, the stop flag or
/// `opts.max_steps`, writing metrics and checkpoints into `run`.
///
/// One epoch is one pass of the loader (NUM_FOLDS must be 1). A resumed run restores weights,
/// optimiser state and (epoch, step) and starts its epoch after the batches already trained on, so
/// on the CPU with the same seed it reproduces the uninterrupted run's losses.
pub fn train<S: SampleSource + 'static>(
    cfg: &LoadedConfig,
    session: &Session,
    task: &dyn Task,
    loader: Loader<S>,
    run: &mut RunDir,
    opts: &TrainOptions,
) -> Result<Summary, TrainError> {
    let c = &cfg.config;
    if c.train.num_folds != 1 {
        return Err(TrainError::Config {
            key: "TRAIN.NUM_FOLDS",
            message: format!(
                "is {}; tada's loop runs one pass per epoch, set 1",
                c.train.num_folds
            ),
        });
    }
    let started = Instant::now();
    let mut opt = Optimizer::new(&session.vs, c)?;
    let schedule = LrSchedule::from_config(c)?;
    let clip = clip_setting(&c.optimizer)?;
    let micro = c.train.micro_batch_size;
    if micro > 0 && micro < c.train.batch_size && !task.splits_batches() {
        return Err(TrainError::Config {
            key: "TRAIN.MICRO_BATCH_SIZE",
            message: format!(
                "is {micro}, but the {} loss compares every sample of a batch with the others, \
                 so it cannot be accumulated over chunks; set 0 (and a TRAIN.BATCH_SIZE that fits)",
                task.name()
            ),
        });
    }
    let mut scaler = LossScaler::for_precision(c.train.precision, session.device);
    if c.train.precision != Precision::Fp32 && !session.device.is_cuda() {
        tracing::warn!(
            "TRAIN.PRECISION {:?} needs CUDA autocast; this run is on the CPU, in fp32",
            c.train.precision
        );
    }
    let mut summary = Summary::default();
    let mut state = RunState {
        epoch: 0,
        step: 0,
        seed: c.random_seed,
        extra: serde_json::json!({ "task": task.name() }),
    };
    let candidates = checkpoints_newest_first(&run.checkpoints_dir());
    if !resumes(c, opts) {
        if let Some(newest) = candidates.first() {
            // Starting over would overwrite that run's checkpoints and mix two runs' metrics.
            return Err(TrainError::RunExists {
                dir: run.root().to_path_buf(),
                newest: newest.clone(),
            });
        }
    } else {
        match newest_readable(&candidates)? {
            Some((path, ckpt)) => {
                state = restore(&path, ckpt, session, &mut opt)?;
                if state.seed != c.random_seed {
                    tracing::warn!(
                        "resuming a run seeded {} with RANDOM_SEED {}: the rest of the run \
                         follows the checkpoint's seed",
                        state.seed,
                        c.random_seed
                    );
                }
                tracing::info!(
                    "resuming from {} (epoch {}, step {})",
                    path.display(),
                    state.epoch,
                    state.step
                );
                summary.resumed_from = Some(path.clone());
                summary.checkpoint = Some(path);
            }
            None if opts.resume => tracing::info!(
                "no checkpoint in {} yet: starting fresh",
                run.root().display()
            ),
            None => {}
        }
    }
    let seed = state.seed;
    let loader = loader.with_stop_flag(opts.stop.clone());
    let iters = loader.batches_per_epoch();
    if iters == 0 {
        return Err(TrainError::EmptyEpoch(
            loader.check_batches().err().unwrap_or(LoaderError::Empty),
        ));
    }
    let signals = if opts.handle_signals {
        Some(StopOnSignal::register(&opts.stop).map_err(TrainError::Signals)?)
    } else {
        None
    };
    let max_epoch = u64::from(c.optimizer.max_epoch);
    let trained: usize = opt.params().iter().map(Tensor::numel).sum();
    tracing::info!(
        "{}",
        run_banner(c, session, task, trained, iters, max_epoch, run)
    );
    let period = u64::from(c.train.checkpoint_period.max(1));
    let log_period = u64::from(c.log_period.max(1));
    // The steps this call has left, so that a resumed run's rate and ETA are its own.
    let remaining = (max_epoch * iters as u64).saturating_sub(state.step);
    let mut progress = Progress::new(task.name(), remaining, log_period);
    let mut window = Window {
        start: Some(Instant::now()),
        ..Window::default()
    };
    let mut saved_step = summary.checkpoint.as_ref().map(|_| state.step);
    'epochs: for epoch in state.epoch..max_epoch {
        // A resumed run starts after the batches of this epoch it has already trained on.
        let skip = state.step.saturating_sub(epoch * iters as u64) as usize;
        let mut batches = loader.epoch_from(epoch, skip);
        let mut iter = skip;
        loop {
            if opts.stop.load(Ordering::Relaxed) || opts.max_steps.is_some_and(|m| state.step >= m)
            {
                summary.interrupted = true;
                break 'epochs;
            }
            let t0 = Instant::now();
            let Some(batch) = batches.next() else { break };
            let batch = match batch {
                Ok(batch) => batch,
                // Too many bad files, or a loader worker died: keep the steps done so far, as
                // a failed step does, so fixing the data and `--resume` loses nothing.
                Err(error) => {
                    let checkpoint = if state.step == 0 || saved_step == Some(state.step) {
                        summary.checkpoint.clone()
                    } else {
                        match save_checkpoint(cfg, session, &opt, &state, run, iters) {
                            Ok(path) => Some(path),
                            Err(e) => {
                                tracing::error!("cannot checkpoint after the loader stopped: {e}");
                                summary.checkpoint.clone()
                            }
                        }
                    };
                    return Err(TrainError::LoaderStopped {
                        step: state.step + 1,
                        error,
                        checkpoint,
                    });
                }
            };
            let wait = t0.elapsed();
            let lr = schedule.lr_at(fractional_epoch(epoch, iter, iters, 1));
            opt.set_lr(lr);
            tch::manual_seed(step_seed(seed, state.step));
            let ctx = StepContext {
                epoch: fractional_epoch(epoch, iter, iters, 1),
                max_epoch: max_epoch as f64,
            };
            opt.zero_grad()?;
            // A libtorch failure in here (CUDA out of memory, …) leaves the weights and the
            // optimiser as the last completed step left them: checkpoint them and stop.
            let stepped = guarded(|| {
                forward_backward(
                    task,
                    session,
                    &batch,
                    micro,
                    c.train.precision,
                    scaler.as_ref(),
                    &ctx,
                )
            });
            let (loss, metrics) = match stepped {
                Ok(Ok(done)) => done,
                Ok(Err(StepError::NonFinite(value))) => {
                    return Err(TrainError::NonFiniteLoss {
                        step: state.step + 1,
                        value,
                        last_checkpoint: summary.checkpoint.clone(),
                    })
                }
                Ok(Err(StepError::Failed(e))) => return Err(e),
                Err(message) => {
                    let saved = match save_checkpoint(cfg, session, &opt, &state, run, iters) {
                        Ok(path) => Some(path),
                        Err(e) => {
                            tracing::error!("cannot checkpoint after the failed step: {e}");
                            summary.checkpoint.clone()
                        }
                    };
                    return Err(TrainError::StepFailed {
                        step: state.step + 1,
                        hint: step_guard::hint(&message),
                        message,
                        checkpoint: saved,
                    });
                }
            };
            if let Some(sc) = &mut scaler {
                let finite = sc.unscale(&opt.params());
                sc.update(finite);
                if !finite {
                    // fp16 overflow: PyTorch's GradScaler skips the step and lowers the scale.
                    tracing::debug!(
                        "fp16 gradients overflowed; step skipped, loss scale {}",
                        sc.scale
                    );
                    opt.zero_grad()?;
                }
            }
            if let Some(max) = clip {
                opt.clip_grad_norm(max).map_err(|e| match e {
                    OptimError::NonFiniteGradNorm(value) => TrainError::NonFiniteGradient {
                        step: state.step + 1,
                        value,
                        last_checkpoint: summary.checkpoint.clone(),
                    },
                    e => e.into(),
                })?;
            }
            opt.step();
            task.after_step()?;
            state.step += 1;
            for (tag, img) in task.images(state.step) {
                run.log_image(&tag, img.as_raw(), img.height(), img.width(), state.step)?;
            }
            iter += 1;
            summary.losses.push((state.step, loss));
            window.add(loss, &metrics, task.clips(&batch), wait);
            summary.last_metrics = metrics;
            if state.step % log_period == 0 {
                let values = window.take(lr);
                let refs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                run.log_scalars("train", epoch, state.step, &refs)?;
            }
            progress.inc(1, || format!("loss={loss:.4} lr={lr:.2e}"));
        }
        if batches.interrupted() || opts.stop.load(Ordering::Relaxed) {
            summary.interrupted = true;
            break;
        }
        state.epoch = epoch + 1;
        if state.epoch % period == 0 || state.epoch == max_epoch {
            summary.checkpoint = Some(save_checkpoint(cfg, session, &opt, &state, run, iters)?);
            saved_step = Some(state.step);
        }
    }
    progress.finish();
    summary.signal = signals.as_ref().and_then(StopOnSignal::received);
    if saved_step != Some(state.step) {
        summary.checkpoint = Some(save_checkpoint(cfg, session, &opt, &state, run, iters)?);
    }
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
