//! Text at the edges of the command line: flag values parsed with their bounds, usage errors
//! and failures printed as one line, and the summary of a training run.

use std::process::ExitCode;

use tada::config::{MAX_BATCH_SIZE, MAX_NUM_WORKERS};
use tada::train::step_guard::libtorch_message;

/// Longest `--seconds` of the benchmarks: about 11 days, far beyond any use, and finite.
const MAX_SECONDS: f64 = 1e6;

/// `--seconds`: a finite duration over 0 and at most [`MAX_SECONDS`].
pub fn seconds(s: &str) -> Result<f64, String> {
    let bad = || format!("must be a number of seconds over 0 and at most {MAX_SECONDS:e}");
    let v: f64 = s.trim().parse().map_err(|_| bad())?;
    if v.is_finite() && v > 0.0 && v <= MAX_SECONDS {
        Ok(v)
    } else {
        Err(bad())
    }
}

/// `--batch`: 1 to [`MAX_BATCH_SIZE`] (the bound of TRAIN.BATCH_SIZE).
pub fn batch_size(s: &str) -> Result<i64, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if (1..=MAX_BATCH_SIZE as i64).contains(&v) => Ok(v),
        _ => Err(format!("must be a whole number from 1 to {MAX_BATCH_SIZE}")),
    }
}

/// `--workers`: 1 to [`MAX_NUM_WORKERS`] (the bound of DATA_LOADER.NUM_WORKERS).
pub fn workers(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if (1..=MAX_NUM_WORKERS).contains(&v) => Ok(v),
        _ => Err(format!(
            "must be a whole number from 1 to {MAX_NUM_WORKERS}"
        )),
    }
}

/// Prints a command-line error as its first line (which names the argument and the value),
/// plus clap's tip when it has one, and returns clap's exit status; help and version print
/// as usual.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines.next().unwrap_or("error: bad arguments").to_string();
    if let Some(tip) = lines.find(|l| l.starts_with("tip:")) {
        line.push_str(&format!(" ({tip})"));
    }
    eprintln!("{line}");
    ExitCode::from(2)
}

/// The context chain joined into one line, innermost cause last, skipping causes whose text an
/// outer message already includes (library errors often quote their source). libtorch's
/// messages lose their C++ frame list (kilobytes); RUST_LOG=debug logs the whole chain.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    let mut trimmed = false;
    for cause in e.chain() {
        let full = cause.to_string();
        let text = libtorch_message(&full);
        trimmed |= full.contains("frame #0:") || full.contains("Exception raised from");
        if msg.is_empty() {
            msg = text;
        } else if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    if trimmed {
        tracing::debug!("the whole error: {e:?}");
    }
    msg
}

pub fn print_summary(s: &tada::train::Summary) {
    let metrics: Vec<String> = s
        .last_metrics
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    println!(
        "{} after {} epochs, {} steps in {:.1} s; last loss {}; {}",
        if s.interrupted { "stopped" } else { "finished" },
        s.epochs,
        s.steps,
        s.seconds,
        s.losses
            .last()
            .map_or("-".into(), |(_, l)| format!("{l:.4}")),
        metrics.join(", ")
    );
    if let Some(c) = &s.checkpoint {
        println!("checkpoint {}", c.display());
    }
}
