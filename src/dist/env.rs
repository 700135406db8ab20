//! Where this process sits in a distributed run, from its launcher's environment: torchrun
//! (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`,
//! `TORCHELASTIC_*`), `tada launch` (the same variables) or SLURM's srun (`SLURM_PROCID`,
//! `SLURM_NTASKS`, `SLURM_LOCALID`, the first host of `SLURM_JOB_NODELIST`).

use super::DistError;

/// The port a SLURM job's ranks meet on when MASTER_PORT is unset: fixed per job, so every
/// rank computes the same one, and spread over 20000..40000 so jobs sharing a node differ.
fn slurm_port(job_id: u64) -> u16 {
    20_000 + (job_id % 20_000) as u16
}

/// One rank's place in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub rank: usize,
    pub world_size: usize,
    pub local_rank: usize,
    pub local_world_size: usize,
    /// The rendezvous store's host and port.
    pub master_addr: String,
    pub master_port: u16,
    /// torchrun's agent serves the store; every rank is a client.
    pub agent_store: bool,
    /// torchrun's restart count, which prefixes the store keys of this attempt.
    pub restart: u64,
    /// Who launched it, for messages.
    pub launcher: &'static str,
}

/// Reads the placement from `var` (the environment in production); `None` for a
/// single-process run (no launcher variables, or a world of one).
pub fn placement(var: impl Fn(&str) -> Option<String>) -> Result<Option<Placement>, DistError> {
    let num = |key: &str| -> Result<Option<u64>, DistError> {
        match var(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| DistError::Env {
                    key: key.to_string(),
                    message: format!("is {v:?}, not a non-negative integer"),
                }),
        }
    };
    let p = if let (Some(rank), Some(world)) = (num("RANK")?, num("WORLD_SIZE")?) {
        let launcher = match var("TORCHELASTIC_RUN_ID") {
            Some(_) => "torchrun",
            None if var("TADA_LAUNCH").is_some() => "tada launch",
            None => "RANK/WORLD_SIZE",
        };
        let local_rank = num("LOCAL_RANK")?.unwrap_or(rank);
        Placement {
            rank: rank as usize,
            world_size: world as usize,
            local_rank: local_rank as usize,
            local_world_size: num("LOCAL_WORLD_SIZE")?.unwrap_or(world) as usize,
            master_addr: var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into()),
            master_port: port(num("MASTER_PORT")?, "MASTER_PORT", 29500)?,
            agent_store: var("TORCHELASTIC_USE_AGENT_STORE")
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            restart: num("TORCHELASTIC_RESTART_COUNT")?.unwrap_or(0),
            launcher,
        }
    } else if let (Some(rank), Some(world)) = (num("SLURM_PROCID")?, num("SLURM_NTASKS")?) {
        let nodes = var("SLURM_JOB_NODELIST").or_else(|| var("SLURM_NODELIST"));
        let master_addr = match (var("MASTER_ADDR"), nodes) {
            (Some(a), _) => a,
            (None, Some(list)) => first_host(&list).ok_or_else(|| DistError::Env {
                key: "SLURM_JOB_NODELIST".into(),
                message: format!("is {list:?}: no host name in it"),
            })?,
            (None, None) => "127.0.0.1".into(),
        };
        let job = num("SLURM_JOB_ID")?.unwrap_or(0);
        let local_world = var("SLURM_NTASKS_PER_NODE")
            .and_then(|v| v.split(['(', ',']).next()?.trim().parse::<usize>().ok())
            .unwrap_or(world as usize);
        Placement {
            rank: rank as usize,
            world_size: world as usize,
            local_rank: num("SLURM_LOCALID")?.unwrap_or(0) as usize,
            local_world_size: local_world,
            master_addr,
            master_port: port(num("MASTER_PORT")?, "MASTER_PORT", slurm_port(job))?,
            agent_store: false,
            restart: num("SLURM_RESTART_COUNT")?.unwrap_or(0),
            launcher: "srun",
        }
    } else {
        return Ok(None);
    };
    if p.world_size == 0 || p.rank >= p.world_size {
        return Err(DistError::Env {
            key: "RANK".into(),
            message: format!(
                "is {} with a world of {} ranks (from {}): a rank must be below the world size",
                p.rank, p.world_size, p.launcher
            ),
        });
    }
    Ok((p.world_size > 1).then_some(p))
}

fn port(v: Option<u64>, key: &str, default: u16) -> Result<u16, DistError> {
    match v {
        None => Ok(default),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| DistError::Env {
                key: key.to_string(),
                message: format!("is {p}, not a TCP port (1..=65535)"),
            }),
    }
}

/// The first host of a SLURM node list: `gpu[03-05,09],cpu01` -> `gpu03`.
pub fn first_host(list: &str) -> Option<String> {
    let list = list.trim();
    let end = list.find([',', '[']).unwrap_or(list.len());
    let prefix = &list[..end];
    if list[end..].starts_with('[') {
        let inner = &list[end + 1..list[end..].find(']')? + end];
        let first = inner.split([',', '-']).next()?.trim();
        return (!first.is_empty()).then(|| format!("{prefix}{first}"));
    }
    (!prefix.is_empty()).then(|| prefix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn torchrun_variables_place_the_rank() {
        let p = placement(env(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "node7"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_RUN_ID", "x"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.rank, p.world_size, p.local_rank, p.local_world_size),
            (3, 4, 1, 2)
        );
        assert_eq!((p.master_addr.as_str(), p.master_port), ("node7", 29400));
        assert!(p.agent_store);
        assert_eq!((p.restart, p.launcher), (2, "torchrun"));
    }

    #[test]
    fn slurm_variables_place_the_rank_on_the_first_host() {
        let p = placement(env(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_NTASKS_PER_NODE", "4(x2)"),
            ("SLURM_JOB_NODELIST", "gpu[03-04],cpu1"),
            ("SLURM_JOB_ID", "123456"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.rank, p.world_size, p.local_rank, p.local_world_size),
            (5, 8, 1, 4)
        );
        assert_eq!(p.master_addr, "gpu03");
        assert_eq!(p.master_port, slurm_port(123456));
        assert!(!p.agent_store);
    }

    #[test]
    fn one_process_or_no_launcher_is_not_distributed() {
        assert_eq!(placement(env(&[])).unwrap(), None);
        assert_eq!(
            placement(env(&[("RANK", "0"), ("WORLD_SIZE", "1")])).unwrap(),
            None
        );
        assert_eq!(
            placement(env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")])).unwrap(),
            None
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = placement(env(&[("RANK", "x"), ("WORLD_SIZE", "2")])).unwrap_err();
        assert!(e.to_string().contains("RANK"), "{e}");
        let e = placement(env(&[("RANK", "2"), ("WORLD_SIZE", "2")])).unwrap_err();
        assert!(e.to_string().contains("below the world size"), "{e}");
        let e = placement(env(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_PORT", "70000"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("MASTER_PORT"), "{e}");
    }

    #[test]
    fn first_host_of_node_lists() {
        assert_eq!(first_host("node01").as_deref(), Some("node01"));
        assert_eq!(first_host("a1,b2").as_deref(), Some("a1"));
        assert_eq!(first_host("gpu[07,09-12]").as_deref(), Some("gpu07"));
        assert_eq!(first_host("").as_deref(), None);
    }
}
