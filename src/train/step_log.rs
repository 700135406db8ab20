//! What the loop reports: a banner when it starts, per-step progress, and the LOG_PERIOD
//! averages that go to metrics.jsonl and TensorBoard (with the task's images).

use std::time::{Duration, Instant};

use tch::{Device, Tensor};

use super::progress::{rate_digits, Progress};
use super::run_dir::RunDir;
use super::step::StepDone;
use super::{LoopSettings, TrainError};
use crate::models::Session;
use crate::optim::Optimizer;
use crate::tasks::Task;

/// The reporting side of a run.
pub(super) struct StepLog {
    window: Window,
    shown: Smoothed,
    progress: Progress,
    log_period: u64,
    max_epoch: u64,
    /// The run's last step, which is always logged.
    last_step: u64,
    /// Epoch and learning rate of the last recorded step, for a window logged at the end.
    last: (u64, f64),
}

impl StepLog {
    /// Logs the banner and starts the progress bar over the `step`s left of the run.
    pub fn start(
        settings: &LoopSettings,
        session: &Session,
        task: &dyn Task,
        opt: &Optimizer,
        iters: usize,
        run: &RunDir,
        step: u64,
    ) -> Self {
        tracing::info!("{}", banner(settings, session, task, opt, iters, run));
        // The steps this call has left, so that a resumed run's rate and ETA are its own.
        let last_step = settings.max_epoch * iters as u64;
        let remaining = last_step.saturating_sub(step);
        Self {
            window: Window {
                start: Some(Instant::now()),
                ..Window::default()
            },
            shown: Smoothed::new(settings.log_period),
            progress: Progress::new(task.name(), remaining, settings.log_period),
            log_period: settings.log_period,
            max_epoch: settings.max_epoch,
            last_step,
            last: (0, 0.0),
        }
    }

    /// Records finished step `step` of `epoch`: the task's images, the window's averages every
    /// LOG_PERIOD steps, the progress bar.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        run: &mut RunDir,
        task: &mut dyn Task,
        epoch: u64,
        step: u64,
        lr: f64,
        done: &StepDone,
        clips: usize,
        wait: Duration,
    ) -> Result<(), TrainError> {
        for (tag, img) in task.images(step) {
            run.log_image(&tag, img.as_raw(), img.height(), img.width(), step)?;
        }
        self.window.add(done.loss, &done.metrics, clips, wait);
        self.shown.add(done.loss, clips, wait);
        self.last = (epoch, lr);
        let (shown, max_epoch, last_step) = (&self.shown, self.max_epoch, self.last_step);
        self.progress.inc(1, || {
            let (loss, clips_per_s, wait_share) = shown.values();
            format!(
                "epoch {}/{max_epoch} step {step}/{last_step} {} clips/s data {:.0}% loss {loss:.4} lr {lr:.2e}",
                epoch + 1,
                rate_digits(clips_per_s),
                100.0 * wait_share
            )
        });
        if step % self.log_period == 0 || step == self.last_step {
            self.log_window(run, step)?;
        }
        Ok(())
    }

    fn log_window(&mut self, run: &mut RunDir, step: u64) -> Result<(), TrainError> {
        let (epoch, lr) = self.last;
        let values = self.window.take(lr);
        let refs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        Ok(run.log_scalars("train", epoch, step, &refs)?)
    }

    /// Ends the bar; steps not logged yet (a run stopped between LOG_PERIODs) are logged as
    /// one last window.
    pub fn finish(&mut self, run: &mut RunDir, step: u64) -> Result<(), TrainError> {
        self.progress.finish();
        if self.window.steps > 0 {
            self.log_window(run, step)?;
        }
        Ok(())
    }
}

/// One line saying what is about to train where: task, parameters the optimiser updates,
/// device, steps, batch, precision and the run folder.
fn banner(
    s: &LoopSettings,
    session: &Session,
    task: &dyn Task,
    opt: &Optimizer,
    iters: usize,
    run: &RunDir,
) -> String {
    let trained: usize = opt.params().iter().map(Tensor::numel).sum();
    let trained = crate::info::thousands(trained as u64);
    // A CPU run that asked for GPUs has said so once already (models::device_for).
    let device = match session.device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => format!("the CPU ({} threads)", tch::get_num_threads()),
    };
    let micro = match s.micro_batch_size {
        m if m > 0 && m < s.batch_size => format!(" in chunks of {m}"),
        _ => String::new(),
    };
    format!(
        "{}: {trained} parameters trained on {device}; {} epochs x {iters} steps, batch {}{micro}, {}; run folder {}",
        task.name(),
        s.max_epoch,
        s.batch_size,
        format!("{:?}", s.precision).to_lowercase(),
        run.root().display()
    )
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
        // The values above are already over every rank; say how many there were.
        let world = crate::dist::world_size();
        if world > 1 {
            out.push(("world_size".to_string(), world as f64));
        }
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

/// What the progress bar shows: exponential moving averages over about max(LOG_PERIOD, 20)
/// steps of the loss, clips, step time and data wait, steadier than one step (or a window
/// that a LOG_PERIOD of 1 resets every step) and independent of when metrics are logged.
struct Smoothed {
    alpha: f64,
    /// Averages of loss, clips, seconds per step and seconds waited per step.
    avg: Option<[f64; 4]>,
    last: Instant,
}

impl Smoothed {
    fn new(log_period: u64) -> Self {
        let span = log_period.max(20) as f64;
        Self {
            alpha: 2.0 / (span + 1.0),
            avg: None,
            last: Instant::now(),
        }
    }

    fn add(&mut self, loss: f64, clips: usize, wait: Duration) {
        let wall = self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        let x = [loss, clips as f64, wall, wait.as_secs_f64()];
        self.avg = Some(match self.avg {
            None => x,
            Some(a) => std::array::from_fn(|i| a[i] + self.alpha * (x[i] - a[i])),
        });
    }

    /// Loss, clips per second and the share of the step time spent waiting for data.
    fn values(&self) -> (f64, f64, f64) {
        let [loss, clips, wall, wait] = self.avg.unwrap_or_default();
        if wall <= 0.0 {
            return (loss, 0.0, 0.0);
        }
        (loss, clips / wall, (wait / wall).min(1.0))
    }
}
