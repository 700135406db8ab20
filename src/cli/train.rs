//! `tada pretrain` and `tada finetune`: a training run into its folder, and its summary.

use std::path::PathBuf;

use anyhow::Result;
use tada::runs::RunOptions;
use tada::train::{Summary, TrainError, TrainOptions};

use super::config_args::{ConfigArgs, AFTER_SET};

/// What every training command takes.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Run folder (default OUTPUT_DIR).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Continue from the newest checkpoint in the run folder.
    #[arg(long)]
    resume: bool,
}

impl RunArgs {
    fn options(&self, weights: Option<PathBuf>) -> RunOptions {
        RunOptions {
            output: self.output.clone(),
            weights,
            train: TrainOptions {
                resume: self.resume,
                ..Default::default()
            },
        }
    }
}

#[derive(clap::Args)]
pub struct Pretrain {
    #[command(flatten)]
    run: RunArgs,
}

impl Pretrain {
    pub fn run(self) -> Result<()> {
        let loaded = self.run.config.load()?;
        let s = distributed(|| {
            tada::runs::pretrain(&loaded, &self.run.options(None))
                .map_err(|e| e.with_origin(&loaded.sources))
        })?;
        print_summary(&s);
        stopped_by_signal(&s)
    }
}

/// Runs `f` as this rank of the distributed run the launcher's environment describes (or as
/// the only process): joins the run first; afterwards waits for the other ranks, or, when `f`
/// failed, tells them, so they stop at once.
fn distributed<T>(f: impl FnOnce() -> Result<T, TrainError>) -> Result<T> {
    let world = tada::dist::init().map_err(TrainError::Dist)?;
    let result = f();
    if let Some(w) = world {
        match &result {
            Ok(_) => w.finish().map_err(TrainError::dist)?,
            Err(e) => w.report_failure(&e.to_string()),
        }
    }
    Ok(result?)
}

#[derive(clap::Args)]
pub struct Finetune {
    #[command(flatten)]
    run: RunArgs,
    /// Pretrained weights (only `backbone.*` is loaded); default TRAIN.CHECKPOINT_FILE_PATH.
    #[arg(long, display_order = AFTER_SET)]
    weights: Option<PathBuf>,
}

impl Finetune {
    pub fn run(self) -> Result<()> {
        let loaded = self.run.config.load()?;
        let (s, report) = distributed(|| {
            tada::runs::finetune(&loaded, &self.run.options(self.weights.clone()))
                .map_err(|e| e.with_origin(&loaded.sources))
        })?;
        if let Some(r) = report {
            println!(
                "weights {}: {}; dropped {} tensors outside backbone.*",
                r.path.display(),
                r.load,
                r.dropped.len()
            );
        }
        print_summary(&s);
        stopped_by_signal(&s)
    }
}

/// A run that a signal stopped has checkpointed; it still fails, so that a shell chain such as
/// `tada pretrain … && tada finetune …` stops there (exit 130 / 143, see `main`).
fn stopped_by_signal(s: &Summary) -> Result<()> {
    match TrainError::interrupted(s) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn print_summary(s: &Summary) {
    if !tada::dist::is_writer() {
        return;
    }
    let metrics: Vec<String> = s
        .last_metrics
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    println!(
        "{} after {} epochs, {} steps in {:.1} s; last loss {}; {}",
        if s.interrupted { "stopped" } else { "finished" },
        s.epochs,
        s.steps,
        s.seconds,
        s.losses
            .last()
            .map_or("-".into(), |(_, l)| format!("{l:.4}")),
        metrics.join(", ")
    );
    if let Some(c) = &s.checkpoint {
        println!("checkpoint {}", c.display());
    }
}
