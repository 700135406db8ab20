//! How a failure reads on stderr: a usage error or an error chain as one line.

use std::process::ExitCode;

use tada::step_guard::libtorch_message;

/// Prints a command-line error as its first line (which names the argument and the value),
/// plus a hint for a PySlowFast habit or else clap's tip when it has one, and returns clap's
/// exit status; help and version print as usual.
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
    let args: Vec<String> = std::env::args().collect();
    if let Some(hint) = pyslowfast_hint(&e, &args) {
        line.push_str(&format!("; {hint}"));
    } else if let Some(tip) = lines.find(|l| l.starts_with("tip:")) {
        line.push_str(&format!(" ({tip})"));
    }
    eprintln!("{line}");
    ExitCode::from(2)
}

/// What to type instead, when an unexpected argument is spelled as PySlowFast's
/// `run_net.py --cfg FILE KEY VALUE …` takes it.
fn pyslowfast_hint(e: &clap::Error, args: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    if arg == "--cfg" || arg.starts_with("--cfg=") {
        return Some("tada uses --config FILE (PySlowFast's --cfg)".into());
    }
    if !is_config_key(arg) {
        return None;
    }
    // Every KEY VALUE pair from the first unexpected key on, as the --set flags to type.
    let start = args.iter().position(|a| a == arg)?;
    let mut sets = Vec::new();
    let mut rest = args[start..].iter();
    while let Some(key) = rest.next().filter(|k| is_config_key(k)) {
        match rest.next() {
            Some(value) => sets.push(format!("--set {key}={value}")),
            None => sets.push(format!("--set {key}=VALUE")),
        }
    }
    Some(format!(
        "use {} (PySlowFast's trailing KEY VALUE pairs)",
        sets.join(" ")
    ))
}

/// A config key as PySlowFast spells it on the command line: `TRAIN.BATCH_SIZE`, `NUM_GPUS`.
fn is_config_key(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '.')
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
