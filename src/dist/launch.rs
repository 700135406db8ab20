//! `tada launch --nproc N -- <tada command>`: N local ranks of a tada command, for users without
//! torchrun. Each child gets torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE,
//! LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and its share of the cores; rank 0 serves the
//! rendezvous store. A signal to the launcher goes to every rank; the launcher's exit status is
//! the first failing rank's.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::DistError;

/// How a launch goes.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub nproc: usize,
    /// The store's port; a free one when unset.
    pub master_port: Option<u16>,
    /// The tada command each rank runs (without the program name).
    pub args: Vec<String>,
}

/// Threads per rank when OMP_NUM_THREADS is unset: the machine's cores shared out, at least one.
pub fn threads_per_rank(nproc: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / nproc.max(1)).max(1)
}

/// Runs the ranks and waits for them; the exit status to leave with.
pub fn launch(opts: &LaunchOptions) -> Result<i32, DistError> {
    if opts.nproc == 0 {
        return Err(DistError::Env {
            key: "--nproc".into(),
            message: "is 0: launch at least one rank".into(),
        });
    }
    let port = match opts.master_port {
        Some(p) => p,
        None => free_port()?,
    };
    let exe = std::env::current_exe()
        .map_err(|e| DistError::Peer(format!("cannot find the tada executable: {e}")))?;
    let threads = std::env::var("OMP_NUM_THREADS")
        .ok()
        .unwrap_or_else(|| threads_per_rank(opts.nproc).to_string());
    let mut children: Vec<Child> = Vec::new();
    for rank in 0..opts.nproc {
        let child = Command::new(&exe)
            .args(&opts.args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", opts.nproc.to_string())
            .env("LOCAL_WORLD_SIZE", opts.nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("OMP_NUM_THREADS", &threads)
            .env("TADA_LAUNCH", "1")
            .spawn();
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                stop_all(&mut children, libc::SIGTERM);
                return Err(DistError::Peer(format!("cannot start rank {rank}: {e}")));
            }
        }
    }
    tracing::info!(
        "launched {} ranks (store 127.0.0.1:{port}, {threads} threads each)",
        opts.nproc
    );
    wait_all(children)
}

/// A port nobody listens on now (the OS picks it); rank 0 binds it a moment later.
fn free_port() -> Result<u16, DistError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DistError::Peer(format!("no free local port for the store: {e}")))
}

fn stop_all(children: &mut [Child], signal: i32) {
    for c in children.iter_mut() {
        if let Ok(None) = c.try_wait() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, signal);
            }
        }
    }
}

/// Waits for every rank, passing SIGINT/SIGTERM on; once a rank fails the others get a grace
/// period (their watchdogs stop them) and are then terminated.
fn wait_all(mut children: Vec<Child>) -> Result<i32, DistError> {
    let signalled = Arc::new(AtomicBool::new(false));
    let mut ids = Vec::new();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        if let Ok(id) = signal_hook::flag::register(sig, signalled.clone()) {
            ids.push(id);
        }
    }
    let mut status: Vec<Option<i32>> = vec![None; children.len()];
    let mut first_failure: Option<(usize, i32)> = None;
    let mut failed_at: Option<Instant> = None;
    let mut forwarded = false;
    while status.iter().any(Option::is_none) {
        if signalled.load(Ordering::SeqCst) && !forwarded {
            stop_all(&mut children, libc::SIGTERM);
            forwarded = true;
        }
        for (rank, c) in children.iter_mut().enumerate() {
            if status[rank].is_some() {
                continue;
            }
            if let Ok(Some(s)) = c.try_wait() {
                let code = exit_code(s);
                status[rank] = Some(code);
                if code != 0 && first_failure.is_none() {
                    first_failure = Some((rank, code));
                    failed_at = Some(Instant::now());
                }
            }
        }
        if failed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(60)) {
            stop_all(&mut children, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    Ok(match first_failure {
        Some((rank, code)) => {
            tracing::error!("rank {rank} exited with status {code}");
            code
        }
        None => 0,
    })
}

fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}
