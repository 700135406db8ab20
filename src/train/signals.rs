//! SIGINT / SIGTERM → the training loop's stop flag. The flag is the loader's too, so a signal
//! ends the current epoch's iterator at once; the loop then checkpoints and returns.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::SigId;

/// Signal handlers that set a flag; unregistered on drop, so a finished run leaves the
/// process's default Ctrl-C behaviour back in place.
pub struct StopOnSignal {
    ids: Vec<SigId>,
}

impl StopOnSignal {
    /// Registers SIGINT and SIGTERM to set `flag`.
    pub fn register(flag: &Arc<AtomicBool>) -> std::io::Result<Self> {
        let mut ids = Vec::new();
        for sig in [SIGINT, SIGTERM] {
            ids.push(signal_hook::flag::register(sig, flag.clone())?);
        }
        Ok(Self { ids })
    }
}

impl Drop for StopOnSignal {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
