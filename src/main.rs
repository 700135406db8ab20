//! The `tada` binary: logging, the guard that turns a libtorch panic into an error, and the
//! exit status. The commands, their flags and their printing are in [`cli`].

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::errors::{one_line, usage_error};

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

/// Exit status: 0, 1 for an error, 2 for a usage error, and 130 / 143 for a run that SIGINT /
/// SIGTERM stopped ([`tada::train::TrainError::exit_status`]).
fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging();
    tada::step_guard::install_panic_hook();
    // A libtorch failure that tch turns into a panic (an allocation, a shape a layer cannot
    // take) is reported as one line like any error; RUST_LOG=debug shows the whole text.
    let result = tada::step_guard::guarded(|| cli.run())
        .unwrap_or_else(|message| Err(anyhow::anyhow!(message)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let status = e
                .chain()
                .find_map(|c| c.downcast_ref::<tada::train::TrainError>())
                .and_then(tada::train::TrainError::exit_status);
            match status {
                Some(code) => {
                    eprintln!("{}", one_line(&e));
                    ExitCode::from(code)
                }
                None => {
                    eprintln!("error: {}", one_line(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
