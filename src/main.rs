//! The `tada` binary: logging (stderr and the run's run.log, see [`tada::logging`]), the guard
//! that turns a libtorch panic into an error, and the exit status. The commands, their flags and
//! their printing are in [`cli`].

use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::errors::{one_line, usage_error};

/// Exit status: 0, 1 for an error, 2 for a usage error, and 130 / 143 for a run that SIGINT /
/// SIGTERM stopped ([`tada::train::TrainError::exit_status`]).
fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    tada::logging::init(cli.verbosity());
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
                    report(one_line(&e));
                    ExitCode::from(code)
                }
                None => {
                    report(format!("error: {}", one_line(&e)));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The last line of a failed command: on stderr, and in the run log when a run folder was open.
fn report(line: String) {
    // Every rank of a distributed run reports its own failure, saying which rank it is.
    let line = match tada::dist::world() {
        Some(w) => format!("rank {}: {line}", w.placement.rank),
        None => line,
    };
    eprintln!("{line}");
    tada::logging::echo_to_run_log(&line);
}
