//! Why a training run stopped with an error.

use std::path::PathBuf;

use super::run_dir::RunDirError;
use crate::checkpoint::CheckpointError;
use crate::config::{KeyError, Sources};
use crate::data::loader::LoaderError;
use crate::data::pipeline::PipelineError;
use crate::models::ModelError;
use crate::optim::OptimError;

/// `path` or "none yet", for messages naming the last good checkpoint.
pub fn describe_checkpoint(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "none yet".to_string(), |p| p.display().to_string())
}

/// Errors of the training loop and of setting a run up.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "the loss is {value} (not finite) at step {step}; last good checkpoint: {}",
        describe_checkpoint(last_checkpoint)
    )]
    NonFiniteLoss {
        step: u64,
        value: f64,
        last_checkpoint: Option<PathBuf>,
    },
    #[error(
        "the gradient norm is {value} (not finite) at step {step}; last good checkpoint: {}",
        describe_checkpoint(last_checkpoint)
    )]
    NonFiniteGradient {
        step: u64,
        value: f64,
        last_checkpoint: Option<PathBuf>,
    },
    #[error(
        "step {step} failed: {message}{}; the run before it is in {} (--resume continues from there)",
        hint.map(|h| format!(" ({h})")).unwrap_or_default(),
        describe_checkpoint(checkpoint)
    )]
    StepFailed {
        step: u64,
        message: String,
        hint: Option<&'static str>,
        checkpoint: Option<PathBuf>,
    },
    #[error(
        "{} already holds a run (newest checkpoint {}) and TRAIN.AUTO_RESUME is false: pass \
         --resume to continue it, or choose another --output",
        dir.display(),
        newest.display()
    )]
    RunExists { dir: PathBuf, newest: PathBuf },
    #[error(
        "{} holds a run of task {theirs} (checkpoint {}), and this run trains {ours}: give it \
         its own folder with -o/--output or OUTPUT_DIR{}",
        dir.display(),
        checkpoint.display(),
        if *ours == "finetune" || *ours == "linear_probe" {
            format!(", and start from those weights with --weights {}", checkpoint.display())
        } else {
            String::new()
        }
    )]
    OtherTask {
        dir: PathBuf,
        checkpoint: PathBuf,
        theirs: String,
        ours: String,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A run-level failure (weights that do not fit the model, a model `tada test` cannot score).
    #[error("{0}")]
    Run(String),
    #[error(transparent)]
    Task(#[from] crate::tasks::TaskError),
    #[error(transparent)]
    Features(#[from] crate::localization::features::FeatureError),
    #[error("the training set gives no batch: {0}")]
    EmptyEpoch(LoaderError),
    #[error(
        "the loader stopped the run before step {step}: {error}; {}",
        checkpoint.as_ref().map_or_else(
            || "no checkpoint was written".to_string(),
            |p| format!("the run before it is in {} (--resume continues from there)", p.display())
        )
    )]
    LoaderStopped {
        step: u64,
        error: LoaderError,
        checkpoint: Option<PathBuf>,
    },
    #[error("cannot load weights {path}: {source}")]
    Weights {
        path: PathBuf,
        source: Box<CheckpointError>,
    },
    #[error(
        "stopped by {} at step {step}; the run is in {} (--resume continues from there)",
        super::signals::name(*signal),
        describe_checkpoint(checkpoint)
    )]
    Interrupted {
        signal: i32,
        step: u64,
        checkpoint: Option<PathBuf>,
    },
    #[error("cannot register the SIGINT/SIGTERM handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// Boxed: a load report (names of every tensor) would make every result large.
    #[error(transparent)]
    Checkpoint(Box<CheckpointError>),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Loader(#[from] LoaderError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    MosiConfig(#[from] crate::tasks::mosi::MosiConfigError),
    #[error(transparent)]
    Mosi(#[from] tada_augment::mosi::MosiError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    ConfigLoad(#[from] crate::config::ConfigError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("distributed run: {0}")]
    Dist(crate::dist::DistError),
}

impl TrainError {
    /// A collective or rendezvous that failed, with the peer the watchdog lost when it knows.
    pub fn dist(e: crate::dist::DistError) -> Self {
        match crate::dist::world() {
            Some(w) => Self::Dist(w.explain(e)),
            None => Self::Dist(e),
        }
    }

    /// A config value the run cannot use (see [`KeyError`]).
    pub fn config(key: &str, message: impl Into<String>) -> Self {
        Self::Key(KeyError::invalid(key, message))
    }

    /// The key error inside, wherever it sits (the model's, the optimiser's, MoSI's config).
    fn key_error_mut(&mut self) -> Option<&mut KeyError> {
        match self {
            Self::Key(k) => Some(k),
            Self::Model(ModelError::Key(k)) => Some(k),
            Self::Optim(OptimError::Key(k)) => Some(k),
            Self::MosiConfig(crate::tasks::mosi::MosiConfigError::Key(k)) => Some(k),
            Self::Task(crate::tasks::TaskError::Key(k)) => Some(k),
            Self::Task(crate::tasks::TaskError::Model(ModelError::Key(k))) => Some(k),
            _ => None,
        }
    }

    /// The same error naming the file (or `--set`) its key's value came from: what a command
    /// that loaded the config adds.
    pub fn with_origin(mut self, sources: &Sources) -> Self {
        if let Some(k) = self.key_error_mut() {
            k.set_origin(sources);
        }
        self
    }

    /// The process exit status this error calls for, when it is not the generic failure: a
    /// run stopped by a signal exits as if the signal had killed it (130 for SIGINT, 143 for
    /// SIGTERM), after its checkpoint.
    pub fn exit_status(&self) -> Option<u8> {
        match self {
            Self::Interrupted { signal, .. } => Some(super::signals::exit_status(*signal)),
            _ => None,
        }
    }

    /// The error for a run that `summary` says a signal stopped.
    pub fn interrupted(summary: &super::Summary) -> Option<Self> {
        summary.signal.map(|signal| Self::Interrupted {
            signal,
            step: summary.steps,
            checkpoint: summary.checkpoint.clone(),
        })
    }
}

impl From<CheckpointError> for TrainError {
    fn from(e: CheckpointError) -> Self {
        Self::Checkpoint(Box::new(e))
    }
}
