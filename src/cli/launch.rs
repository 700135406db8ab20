//! `tada launch --nproc N -- COMMAND…`: N local ranks of a tada command (docs/distributed.md).

use anyhow::Result;

/// Where the ranks meet and what they run.
#[derive(clap::Args)]
pub struct Launch {
    /// Ranks to start on this machine (one per GPU, or a few on the CPU).
    #[arg(long, value_name = "N")]
    nproc: usize,
    /// Port of the rendezvous store rank 0 serves (default: a free one).
    #[arg(long, value_name = "PORT")]
    master_port: Option<u16>,
    /// The tada command every rank runs, e.g. `pretrain --config F`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

impl Launch {
    pub fn run(self) -> Result<()> {
        let code = tada::dist::launch::launch(&tada::dist::launch::LaunchOptions {
            nproc: self.nproc,
            master_port: self.master_port,
            args: self.command,
        })?;
        match code {
            0 => Ok(()),
            // The ranks printed their own errors; leave with the failing rank's status.
            c => std::process::exit(c),
        }
    }
}
