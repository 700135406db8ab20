//! SIGINT / SIGTERM → the training loop's stop flag. The flag is the loader's too, so a signal
//! ends the current epoch's iterator at once; the loop then checkpoints and returns, and the
//! signal's number travels with the result so the command can exit 130 / 143 like a process the
//! signal had killed (`tada pretrain … && tada finetune …` must not go on after a Ctrl-C).
//!
//! signal-hook never gives a signal back its default action once its own handler is installed:
//! with every action unregistered the signal would be ignored for the rest of the process (a
//! Ctrl-C during the demo's evaluation between two runs did nothing). So each signal also gets,
//! once per process and ahead of the flag actions, the emulated default action armed whenever no
//! [`StopOnSignal`] is alive.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::SigId;

const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// Process-wide: whether the default action runs (no loop is listening), and how many loops are.
struct Defaults {
    armed: Arc<AtomicBool>,
    listeners: Mutex<usize>,
}

fn defaults() -> std::io::Result<&'static Defaults> {
    static DEFAULTS: OnceLock<Defaults> = OnceLock::new();
    static INSTALL: Mutex<()> = Mutex::new(());
    if let Some(d) = DEFAULTS.get() {
        return Ok(d);
    }
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = DEFAULTS.get() {
        return Ok(d);
    }
    let armed = Arc::new(AtomicBool::new(true));
    for sig in SIGNALS {
        signal_hook::flag::register_conditional_default(sig, armed.clone())?;
    }
    Ok(DEFAULTS.get_or_init(|| Defaults {
        armed,
        listeners: Mutex::new(0),
    }))
}

/// Signal handlers that set a flag and remember the signal; unregistered on drop, which also
/// gives the process its default Ctrl-C behaviour back.
pub struct StopOnSignal {
    ids: Vec<SigId>,
    received: Arc<AtomicUsize>,
    defaults: &'static Defaults,
}

impl StopOnSignal {
    /// Registers SIGINT and SIGTERM to set `flag`.
    pub fn register(flag: &Arc<AtomicBool>) -> std::io::Result<Self> {
        let defaults = defaults()?;
        let received = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        for sig in SIGNALS {
            ids.push(signal_hook::flag::register_usize(
                sig,
                received.clone(),
                sig as usize,
            )?);
            ids.push(signal_hook::flag::register(sig, flag.clone())?);
        }
        let mut n = defaults.listeners.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        defaults.armed.store(false, Ordering::SeqCst);
        Ok(Self {
            ids,
            received,
            defaults,
        })
    }

    /// The signal that arrived while registered (the last one, if several), if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig as i32),
        }
    }
}

impl Drop for StopOnSignal {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        let mut n = self
            .defaults
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.defaults.armed.store(true, Ordering::SeqCst);
        }
    }
}

/// The conventional exit status of a process stopped by `signal` (128 + its number).
pub fn exit_status(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}

/// The signal's name for messages.
pub fn name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}
