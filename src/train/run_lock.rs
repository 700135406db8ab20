//! One run per folder: a lock held for as long as a run writes its folder.
//!
//! Two runs in one folder would interleave `metrics.jsonl`, overwrite each other's checkpoints
//! and both exit 0. The lock is an advisory `flock` on `<run>/run.lock`, which holds the pid of
//! its holder for people and messages. The kernel drops a `flock` when its process dies,
//! however it dies, so a lock left by a killed run is never in the way: the next run takes it
//! over with a warning naming the dead process. The file itself stays (emptied on a clean end):
//! deleting it would let a third process lock a fresh file while a second still holds the old one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// File name of the lock inside a run folder.
pub const LOCK_FILE: &str = "run.lock";

#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error(
        "{} is in use by {} (lock {}): wait for that run to end, or choose another --output",
        dir.display(),
        holder.map_or_else(|| "another process".to_string(), |p| format!("process {p}")),
        lock.display()
    )]
    InUse {
        dir: PathBuf,
        lock: PathBuf,
        holder: Option<u32>,
    },
    #[error("cannot lock run folder {}: {source}", lock.display())]
    Io {
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (and by the kernel if the process dies first).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

impl RunLock {
    /// Locks the run folder `dir` (which must exist) for this process.
    pub fn acquire(dir: &Path) -> Result<Self, RunLockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| RunLockError::Io {
            lock: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a file descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(RunLockError::InUse {
                    dir: dir.to_path_buf(),
                    lock: path.clone(),
                    holder: read_pid(&mut file),
                });
            }
            return Err(io(e));
        }
        let me = std::process::id();
        if let Some(pid) = read_pid(&mut file).filter(|&p| p != me) {
            tracing::warn!(
                "{}: taking over the lock of process {pid}, which ended without releasing it",
                dir.display()
            );
        }
        (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{me}")?;
            file.sync_all()
        })()
        .map_err(io)?;
        Ok(Self { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Emptied first, so a reader never sees our pid on a lock we no longer hold; closing
        // the file then releases the flock.
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_drops() {
        let d = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(d.path()).unwrap();
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        let e = RunLock::acquire(d.path()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("in use by process") && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        drop(first);
        assert_eq!(
            std::fs::read_to_string(d.path().join(LOCK_FILE)).unwrap(),
            ""
        );
        RunLock::acquire(d.path()).unwrap();
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        // What a killed run leaves: its pid in the file, no flock (the kernel dropped it).
        std::fs::write(d.path().join(LOCK_FILE), "4194303\n").unwrap();
        let lock = RunLock::acquire(d.path()).unwrap();
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
    }
}
