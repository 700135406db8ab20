//! A run's output folder: the resolved config, metrics.jsonl, TensorBoard logs and checkpoints.

use std::path::{Path, PathBuf};

use super::metrics::MetricsLog;
use super::run_lock::{RunLock, RunLockError};
use super::tensorboard::{self, EventWriter};
use crate::config::RESOLVED_CONFIG_FILE;

/// The folder of a run's checkpoints, inside the run folder.
pub const CHECKPOINTS_DIR: &str = "checkpoints";

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
    #[error(transparent)]
    Locked(#[from] RunLockError),
}

/// An open run folder. Creating it again for the same folder (a resumed run) keeps what is
/// there: metrics are appended and TensorBoard gets a new event file beside the old ones.
pub struct RunDir {
    root: PathBuf,
    /// What the folder's writer holds: metrics, TensorBoard and the lock. `None` on the other
    /// ranks of a distributed run, which read the folder (its checkpoints, to resume) and write
    /// nothing ([`RunDir::follow`]).
    writer: Option<Writer>,
}

struct Writer {
    metrics: MetricsLog,
    tensorboard: EventWriter,
    /// Held while the folder is open: a second run in the same folder is refused.
    _lock: RunLock,
}

impl RunDir {
    /// Creates `root` (and `checkpoints/`, `tensorboard/`), locks it for this process (see
    /// [`RunLock`]) and removes what interrupted writes left. `config.yaml` is the loop's to
    /// write ([`RunDir::write_config`]), once it knows the run starts: a command refused here
    /// (a run of another task, a run that exists) leaves the folder's config as it was.
    pub fn create(root: &Path) -> Result<Self, RunDirError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RunDirError::Io { path, source }
        };
        let checkpoints = root.join(CHECKPOINTS_DIR);
        std::fs::create_dir_all(&checkpoints).map_err(io(&checkpoints))?;
        let lock = RunLock::acquire(root)?;
        // With the lock held no other run writes here, so every temporary file is a leftover.
        for dir in [root, checkpoints.as_path()] {
            remove_unfinished_writes(dir).map_err(io(dir))?;
        }
        let run_log = root.join(crate::logging::RUN_LOG);
        crate::logging::attach_run_log(root).map_err(io(&run_log))?;
        let metrics_path = root.join(super::metrics::METRICS_FILE);
        let metrics = MetricsLog::open(&metrics_path).map_err(io(&metrics_path))?;
        let tensorboard = EventWriter::new(root.join("tensorboard"))?;
        Ok(Self {
            root: root.to_path_buf(),
            writer: Some(Writer {
                metrics,
                tensorboard,
                _lock: lock,
            }),
        })
    }

    /// The run folder rank 0 of a distributed run created, as another rank sees it: read,
    /// never written (rank 0 owns its checkpoints, metrics, TensorBoard and pictures).
    pub fn follow(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            writer: None,
        }
    }

    /// Whether this process writes the folder.
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join(CHECKPOINTS_DIR)
    }

    /// Writes the run's resolved config (`config.yaml`), atomically.
    pub fn write_config(&self, yaml: &str) -> Result<(), RunDirError> {
        if self.writer.is_none() {
            return Ok(());
        }
        let path = self.root.join(RESOLVED_CONFIG_FILE);
        crate::atomic_write::write(&path, yaml.as_bytes())
            .map_err(|source| RunDirError::Io { path, source })
    }

    /// Logs `values` to metrics.jsonl and, as `<phase>/<name>`, to TensorBoard.
    pub fn log_scalars(
        &mut self,
        phase: &str,
        epoch: u64,
        step: u64,
        values: &[(&str, f64)],
    ) -> Result<(), RunDirError> {
        let Some(w) = &mut self.writer else {
            return Ok(());
        };
        let path = w.metrics.path().to_path_buf();
        w.metrics
            .log(phase, epoch, step, values)
            .map_err(|source| RunDirError::Io { path, source })?;
        for (name, v) in values {
            w.tensorboard
                .add_scalar(&format!("{phase}/{name}"), *v as f32, step as i64)?;
        }
        w.tensorboard.flush()?;
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
        let Some(w) = &mut self.writer else {
            return Ok(());
        };
        w.tensorboard
            .add_image(tag, rgb, height, width, step as i64)?;
        w.tensorboard.flush()?;
        Ok(())
    }
}

/// Deletes the temporary files of atomic writes in `dir` that a killed process never renamed
/// into place (a checkpoint's can be hundreds of MB), saying how much was freed.
fn remove_unfinished_writes(dir: &Path) -> std::io::Result<()> {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !crate::atomic_write::is_temp_name(&entry.file_name()) {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() {
            std::fs::remove_file(entry.path())?;
            files += 1;
            bytes += meta.len();
        }
    }
    if files > 0 {
        tracing::warn!(
            "removed {files} unfinished file(s) of interrupted writes ({:.1} MB) from {}",
            bytes as f64 / 1e6,
            dir.display()
        );
    }
    Ok(())
}
