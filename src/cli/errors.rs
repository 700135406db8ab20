//! How a failure reads on stderr: a usage error or an error chain as one line.

use std::process::ExitCode;

use tada::step_guard::libtorch_message;

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
