//! The `tada` binary's log: tracing to stderr and, once a run folder is open, also to its
//! `run.log`, so that what a run said outlives the terminal it said it on.
//!
//! The file is set after logging starts (the run folder is known only once the config is
//! read), so the second layer writes through a process-wide slot that [`attach_run_log`]
//! fills. What was logged before (the config's warnings, taking over a stale lock) waits in
//! memory and opens the file. Library users that never call [`init`] get no `run.log`.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The name of the log file in a run folder.
pub const RUN_LOG: &str = "run.log";

/// The most that is kept of what was logged before a run folder is attached; a command that
/// never opens one (a long `bench`) must not grow without bound.
const PENDING_LIMIT: usize = 64 * 1024;

/// Where the file layer's lines go: the attached `run.log`, or memory until there is one.
struct RunLogSlot {
    file: Option<File>,
    pending: Vec<u8>,
}

static RUN_LOG_FILE: Mutex<RunLogSlot> = Mutex::new(RunLogSlot {
    file: None,
    pending: Vec::new(),
});
/// Whether [`init`] installed the layer that writes to [`RUN_LOG_FILE`].
static ENABLED: AtomicBool = AtomicBool::new(false);

/// How much to log when `RUST_LOG` is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Warnings and errors only (`-q`).
    Quiet,
    /// The default: progress of the work (`info`).
    Normal,
    /// `-v`: debug.
    Verbose,
    /// `-vv` and more: trace.
    Trace,
}

impl Verbosity {
    /// From the count of `-v` and whether `-q` was given.
    pub fn from_flags(verbose: u8, quiet: bool) -> Self {
        match (quiet, verbose) {
            (true, _) => Self::Quiet,
            (false, 0) => Self::Normal,
            (false, 1) => Self::Verbose,
            _ => Self::Trace,
        }
    }

    fn directive(self) -> &'static str {
        match self {
            Self::Quiet => "warn",
            Self::Normal => "info",
            Self::Verbose => "debug",
            Self::Trace => "trace",
        }
    }
}

/// Installs the global subscriber: stderr (coloured on a terminal) and the run log (never
/// coloured, with the time of each line). `RUST_LOG`, when set and valid, wins over `verbosity`.
pub fn init(verbosity: Verbosity) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(verbosity.directive()));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time();
    let file = tracing_subscriber::fmt::layer()
        .with_writer(|| RunLogWriter)
        .with_ansi(false)
        .with_target(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .init();
    ENABLED.store(true, Ordering::Relaxed);
    tracing::debug!("tada {}: {}", env!("CARGO_PKG_VERSION"), command_line());
}

/// From now on the log also goes to `root/run.log`, appended to, after a header line with the
/// time and the command line and what was logged before. Does nothing unless [`init`] ran (the
/// binary, not the tests).
pub fn attach_run_log(root: &Path) -> std::io::Result<()> {
    if !ENABLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(RUN_LOG))?;
    let mut now = String::new();
    // Writing into a String cannot fail.
    let _ = SystemTime.format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut now));
    writeln!(file, "=== {now} {}", command_line())?;
    let mut slot = slot();
    file.write_all(&std::mem::take(&mut slot.pending))?;
    slot.file = Some(file);
    Ok(())
}

/// Appends `line` to the run log, if one is attached: for what the binary prints on stderr
/// without tracing (the final error line).
pub fn echo_to_run_log(line: &str) {
    if let Some(f) = slot().file.as_mut() {
        // The line is already on stderr; a run log that cannot take it is no reason to fail.
        let _ = writeln!(f, "{line}");
    }
}

/// The command line as typed, arguments with spaces quoted.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn slot() -> MutexGuard<'static, RunLogSlot> {
    // A panic while writing a log line leaves the file usable.
    RUN_LOG_FILE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The file layer's writer: each event arrives as one buffered write, which goes to the
/// attached run log or waits for one.
struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut slot = slot();
        let RunLogSlot { file, pending } = &mut *slot;
        match file {
            // Whole, under the lock: lines of two threads never interleave.
            Some(f) => f.write_all(buf)?,
            None if pending.len() + buf.len() <= PENDING_LIMIT => pending.extend_from_slice(buf),
            None => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match slot().file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Verbosity;

    #[test]
    fn quiet_wins_and_each_v_is_one_level_more() {
        let cases = [
            (0, false, "info"),
            (1, false, "debug"),
            (2, false, "trace"),
            (5, false, "trace"),
            (0, true, "warn"),
        ];
        for (v, q, level) in cases {
            assert_eq!(
                Verbosity::from_flags(v, q).directive(),
                level,
                "-v x{v}, -q {q}"
            );
        }
    }
}
