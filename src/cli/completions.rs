//! `tada completions SHELL`: a completion script for the commands and flags, from clap.

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct Completions {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

impl Completions {
    pub fn run(self) -> Result<()> {
        let mut cmd = super::Cli::command();
        clap_complete::generate(self.shell, &mut cmd, "tada", &mut std::io::stdout());
        Ok(())
    }
}
