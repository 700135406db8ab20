//! Data-parallel training on PyTorch's c10d (docs/distributed.md): the rendezvous store, a Gloo
//! process group, DDP's gradient Reducer ([`ffi`], over csrc/dist_shim.cpp), where this process
//! sits in the run ([`env`]), a watchdog that stops every rank when one dies ([`watchdog`]),
//! SyncBatchNorm ([`sync_bn`]) and `tada launch` ([`launch`]).
//!
//! The world is process-wide and lives until the process ends ([`world`]): autograd nodes of
//! the differentiable collectives hold its process group, and the model code that needs it
//! (SyncBatchNorm, cross-rank contrastive losses) reaches it without threading it through
//! every constructor.

pub mod env;
pub mod ffi;
pub mod launch;
pub mod sync_bn;
#[cfg(test)]
mod tests;
mod watchdog;

use std::sync::OnceLock;
use std::time::Duration;

use tch::Tensor;

pub use env::{placement, Placement};
pub use ffi::{GradReducer, ProcessGroup, ReduceOp, Store};

/// Why distributed set-up or a collective failed.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("{key} {message}")]
    Env { key: String, message: String },
    #[error("c10d {what} failed: {message}")]
    C10d { what: String, message: String },
    #[error("{0}")]
    Peer(String),
}

/// How long a collective may wait for a peer before it fails. Long enough for rank 0 to write
/// a checkpoint or validate a large split while the others wait; a peer that dies is noticed
/// much sooner by the watchdog (its heartbeat stops, or the socket closes).
pub const COLLECTIVE_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// How long ranks wait for each other to come up.
pub const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(300);

/// A distributed run as this process sees it.
pub struct World {
    pub placement: Placement,
    pub group: ProcessGroup,
    /// The rendezvous store (the watchdog has its own connection).
    pub store: Store,
    watchdog: watchdog::Watchdog,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// The distributed run this process is part of, once [`init`] has joined it.
pub fn world() -> Option<&'static World> {
    WORLD.get()
}

/// This rank's index (0 in a single-process run).
pub fn rank() -> usize {
    world().map_or(0, |w| w.placement.rank)
}

/// Ranks in the run (1 in a single-process run).
pub fn world_size() -> usize {
    world().map_or(1, |w| w.placement.world_size)
}

/// Whether this process writes the run's files (rank 0, or the only process).
pub fn is_writer() -> bool {
    rank() == 0
}

/// Joins the run the environment describes (see [`env`]); `Ok(None)` for a single process.
/// Idempotent: a second call returns the world already joined.
pub fn init() -> Result<Option<&'static World>, DistError> {
    if let Some(w) = WORLD.get() {
        return Ok(Some(w));
    }
    let Some(p) = placement(|k| std::env::var(k).ok())? else {
        return Ok(None);
    };
    // Ranks sharing a machine share its cores: without OMP_NUM_THREADS (which torchrun sets to
    // 1 and `tada launch` to cores / ranks), each rank takes its share instead of all of them.
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tch::set_num_threads((cores / p.local_world_size.max(1)).max(1) as i32);
    }
    let prefix = format!("tada/attempt_{}/", p.restart);
    let serve = p.rank == 0 && !p.agent_store;
    let store = Store::connect(
        &p.master_addr,
        p.master_port,
        serve,
        p.world_size,
        RENDEZVOUS_TIMEOUT,
        &prefix,
    )?;
    let threads = 2;
    let group = ProcessGroup::new(&store, p.rank, p.world_size, COLLECTIVE_TIMEOUT, threads)?;
    // A run on GPUs all-reduces CUDA tensors, which only a CUDA backend takes.
    let nccl = tch::Cuda::is_available() && ProcessGroup::HAS_NCCL;
    if nccl {
        group.add_nccl(&store, COLLECTIVE_TIMEOUT)?;
    } else if tch::Cuda::is_available() {
        tracing::warn!(
            "this tada was built without NCCL: a data-parallel run on GPUs cannot all-reduce \
             (set NUM_GPUS: 0 to train on the CPUs, or rebuild after scripts/setup.sh)"
        );
    }
    let watchdog = watchdog::Watchdog::start(&store, p.rank, p.world_size, p.agent_store)?;
    tracing::info!(
        "rank {}/{} (local {}/{}) joined through {} at {}:{} (c10d: gloo{})",
        p.rank,
        p.world_size,
        p.local_rank,
        p.local_world_size,
        p.launcher,
        p.master_addr,
        p.master_port,
        if nccl { ", nccl for CUDA tensors" } else { "" }
    );
    let world = World {
        placement: p,
        group,
        store,
        watchdog,
    };
    Ok(Some(WORLD.get_or_init(|| world)))
}

impl World {
    /// Mean over ranks of each of `values` (every rank passes the same number).
    pub fn mean(&self, values: &[f64]) -> Result<Vec<f64>, DistError> {
        let n = self.placement.world_size as f64;
        Ok(self.sum(values)?.into_iter().map(|v| v / n).collect())
    }

    /// Sum over ranks of each of `values`.
    pub fn sum(&self, values: &[f64]) -> Result<Vec<f64>, DistError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let t = Tensor::from_slice(values);
        self.group.all_reduce(&[&t], ReduceOp::Sum)?;
        Ok(Vec::<f64>::try_from(&t).unwrap_or_default())
    }

    /// Every rank's `tensors` become rank 0's, in place (the model's initial parameters and
    /// buffers, as DDP's construction does). Coalesced as DDP does: one flat buffer per dtype,
    /// one broadcast each (Gloo broadcasts a list only of equal shapes).
    pub fn broadcast_from_rank0(&self, tensors: &[Tensor]) -> Result<(), DistError> {
        tch::no_grad(|| {
            let mut kinds: Vec<tch::Kind> = Vec::new();
            for t in tensors {
                if !kinds.contains(&t.kind()) {
                    kinds.push(t.kind());
                }
            }
            for kind in kinds {
                let same: Vec<&Tensor> = tensors.iter().filter(|t| t.kind() == kind).collect();
                // (Σ numel): every tensor of this dtype, flattened and concatenated.
                let flat =
                    Tensor::cat(&same.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0);
                self.group.broadcast(&[&flat], 0)?;
                let mut at = 0i64;
                for t in same {
                    let n = t.numel() as i64;
                    // (n) -> the tensor's own shape.
                    t.shallow_clone()
                        .copy_(&flat.narrow(0, at, n).view(t.size().as_slice()));
                    at += n;
                }
            }
            Ok(())
        })
    }

    /// Tells the other ranks this one failed with `message`, so they stop at once instead of
    /// waiting for a collective that will never come.
    pub fn report_failure(&self, message: &str) {
        self.watchdog.report_failure(&self.store, message);
    }

    /// The normal end of this rank's work: the watchdog stops, then every rank waits for the
    /// others, so rank 0 (which may serve the store) leaves last.
    pub fn finish(&self) -> Result<(), DistError> {
        self.watchdog.stop(&self.store);
        self.group.barrier()
    }

    /// Ranks the watchdog has seen die or fail, with what it knows ("failed: …", "stopped
    /// answering"), for the message of a collective that failed.
    pub fn lost_peers(&self, wait: Duration) -> Option<String> {
        self.watchdog.lost_peers(wait)
    }

    /// A collective's error with the peer it lost, when the watchdog can tell which.
    pub fn explain(&self, e: DistError) -> DistError {
        match self.lost_peer_for(&e.to_string()) {
            Some(lost) => DistError::Peer(format!("{lost} ({e})")),
            None => e,
        }
    }

    /// The peer the watchdog lost, for the message of a failure that reads `message`; from now
    /// on the watchdog leaves stopping to the caller (which may be writing a rescue
    /// checkpoint). A lost connection waits up to 25 s for the watchdog to see whose heartbeat
    /// stopped.
    pub fn lost_peer_for(&self, message: &str) -> Option<String> {
        let text = message.to_lowercase();
        let connection = [
            "connection",
            "closed",
            "reset",
            "broken pipe",
            "timed out",
            "timeout",
        ]
        .iter()
        .any(|w| text.contains(w));
        self.lost_peers(Duration::from_secs(if connection { 25 } else { 2 }))
    }
}
