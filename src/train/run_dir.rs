//! A run's output folder: the resolved config, metrics.jsonl, TensorBoard logs and checkpoints.

use std::path::{Path, PathBuf};

use super::metrics::MetricsLog;
use super::tensorboard::{self, EventWriter};
use crate::config::LoadedConfig;

/// Why a run folder could not be set up or written.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("cannot write run folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    TensorBoard(#[from] tensorboard::Error),
}

/// An open run folder. Creating it again for the same folder (a resumed run) keeps what is
/// there: metrics are appended and TensorBoard gets a new event file beside the old ones.
pub struct RunDir {
    root: PathBuf,
    metrics: MetricsLog,
    tensorboard: EventWriter,
}

impl RunDir {
    /// Creates `root` (and `checkpoints/`, `tensorboard/`) and writes `config.yaml` into it.
    pub fn create(root: &Path, config: &LoadedConfig) -> Result<Self, RunDirError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RunDirError::Io { path, source }
        };
        let checkpoints = root.join("checkpoints");
        std::fs::create_dir_all(&checkpoints).map_err(io(&checkpoints))?;
        config.write_resolved(root).map_err(io(root))?;
        let metrics_path = root.join("metrics.jsonl");
        let metrics = MetricsLog::open(&metrics_path).map_err(io(&metrics_path))?;
        let tensorboard = EventWriter::new(root.join("tensorboard"))?;
        Ok(Self {
            root: root.to_path_buf(),
            metrics,
            tensorboard,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Logs `values` to metrics.jsonl and, as `<phase>/<name>`, to TensorBoard.
    pub fn log_scalars(
        &mut self,
        phase: &str,
        epoch: u64,
        step: u64,
        values: &[(&str, f64)],
    ) -> Result<(), RunDirError> {
        let path = self.metrics.path().to_path_buf();
        self.metrics
            .log(phase, epoch, step, values)
            .map_err(|source| RunDirError::Io { path, source })?;
        for (name, v) in values {
            self.tensorboard
                .add_scalar(&format!("{phase}/{name}"), *v as f32, step as i64)?;
        }
        self.tensorboard.flush()?;
        Ok(())
    }

    /// Logs an RGB image (`height` rows of `width` pixels, HWC bytes) to TensorBoard.
    pub fn log_image(
        &mut self,
        tag: &str,
        rgb: &[u8],
        height: u32,
        width: u32,
        step: u64,
    ) -> Result<(), RunDirError> {
        self.tensorboard
            .add_image(tag, rgb, height, width, step as i64)?;
        self.tensorboard.flush()?;
        Ok(())
    }
}
