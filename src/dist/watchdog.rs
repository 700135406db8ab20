//! Every rank's heartbeat in the rendezvous store, and a thread that watches the others': a
//! rank that dies (its heartbeat stops, or the store it served goes away) or reports a failure
//! stops every other rank within seconds, with one line naming it, instead of leaving them
//! blocked in a collective until its timeout. A rank that finished says so and is not missed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{DistError, Store};

/// How often a rank beats and looks at the others.
const PERIOD: Duration = Duration::from_secs(1);

/// A heartbeat that has not moved for this long is a dead (or frozen) rank.
const STALE: Duration = Duration::from_secs(20);

/// Exit status of a rank stopped because another one died.
pub const PEER_LOST_EXIT: i32 = 1;

struct Shared {
    stop: AtomicBool,
    /// Set once the main thread is handling a failure itself: the watchdog then only records.
    handling: AtomicBool,
    lost: Mutex<Option<String>>,
}

pub(super) struct Watchdog {
    rank: usize,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn hb(r: usize) -> String {
    format!("hb/{r}")
}
fn done(r: usize) -> String {
    format!("done/{r}")
}
fn failed(r: usize) -> String {
    format!("failed/{r}")
}

impl Watchdog {
    pub fn start(
        store: &Store,
        rank: usize,
        world: usize,
        agent_store: bool,
    ) -> Result<Self, DistError> {
        let conn = store.reconnect()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            handling: AtomicBool::new(false),
            lost: Mutex::new(None),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tada-watchdog".into())
            .spawn(move || watch(conn, rank, world, agent_store, &s))
            .map_err(|e| DistError::Peer(format!("cannot start the rank watchdog: {e}")))?;
        Ok(Self {
            rank,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn report_failure(&self, store: &Store, message: &str) {
        self.shared.handling.store(true, Ordering::SeqCst);
        let _ = store.set(&failed(self.rank), message.as_bytes());
    }

    pub fn stop(&self, store: &Store) {
        let _ = store.set(&done(self.rank), b"1");
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }

    pub fn lost_peers(&self, wait: Duration) -> Option<String> {
        self.shared.handling.store(true, Ordering::SeqCst);
        let until = Instant::now() + wait;
        loop {
            if let Some(l) = self.shared.lost.lock().ok().and_then(|l| l.clone()) {
                return Some(l);
            }
            if Instant::now() >= until || self.shared.stop.load(Ordering::SeqCst) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The watchdog thread: beat, look, and stop the process when a peer is lost.
fn watch(store: Store, rank: usize, world: usize, agent_store: bool, s: &Shared) {
    let mut last: Vec<(i64, Instant)> = vec![(-1, Instant::now()); world];
    while !s.stop.load(Ordering::SeqCst) {
        let lost = match look(&store, rank, world, agent_store, &mut last) {
            Ok(l) => l,
            Err(l) => Some(l),
        };
        if let Some(l) = lost {
            if s.stop.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(mut slot) = s.lost.lock() {
                *slot = Some(l.clone());
            }
            // Give the main thread a moment: if a collective failed it is already reporting
            // (and rank 0 may be writing its rescue checkpoint).
            std::thread::sleep(Duration::from_secs(2));
            if !s.handling.load(Ordering::SeqCst) && !s.stop.load(Ordering::SeqCst) {
                tracing::error!("rank {rank}: {l}; stopping this rank too");
                eprintln!("error: rank {rank}: {l}; stopping this rank too");
                std::process::exit(PEER_LOST_EXIT);
            }
            return;
        }
        std::thread::sleep(PERIOD);
    }
}

/// One round: this rank's beat, then every other rank's state. `Err` when the store itself is
/// gone, which means its server died.
fn look(
    store: &Store,
    rank: usize,
    world: usize,
    agent_store: bool,
    last: &mut [(i64, Instant)],
) -> Result<Option<String>, String> {
    let gone = |_| match agent_store {
        true => "the rendezvous store (torchrun's agent) stopped answering".to_string(),
        false => "rank 0 died: the rendezvous store it served stopped answering".to_string(),
    };
    store.add(&hb(rank), 1).map_err(gone)?;
    for r in (0..world).filter(|&r| r != rank) {
        if store.check(&failed(r)).map_err(gone)? {
            let msg = store.get(&failed(r)).map_err(gone)?;
            return Ok(Some(format!(
                "rank {r} failed: {}",
                String::from_utf8_lossy(&msg)
            )));
        }
        if store.check(&done(r)).map_err(gone)? {
            continue;
        }
        let beat = store.add(&hb(r), 0).map_err(gone)?;
        let (seen, since) = &mut last[r];
        if beat != *seen {
            *seen = beat;
            *since = Instant::now();
        } else if since.elapsed() > STALE {
            return Ok(Some(format!(
                "rank {r} died or froze: no heartbeat for {} s",
                since.elapsed().as_secs()
            )));
        }
    }
    Ok(None)
}
