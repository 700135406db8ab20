//! Progress of long work: a live bar (rate, ETA, loss) on a terminal, and plain periodic log
//! lines when stderr is not a terminal (CI, `nohup`, redirected logs).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Where plain progress lines go when there is no terminal.
pub type Sink = Box<dyn Write + Send>;

enum Mode {
    Bar(ProgressBar),
    Plain { sink: Sink, every: u64 },
}

/// A progress reporter for `total` units of work.
pub struct Progress {
    label: String,
    total: u64,
    pos: u64,
    start: Instant,
    mode: Mode,
}

impl Progress {
    /// A bar on a terminal, otherwise a plain line every `every` units (and at the end).
    pub fn new(label: &str, total: u64, every: u64) -> Self {
        // The other ranks of a distributed run train the same steps: rank 0 shows them.
        if !crate::dist::is_writer() {
            return Self::plain(label, total, u64::MAX, Box::new(std::io::sink()));
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            Self::with_mode(label, total, Mode::Bar(bar))
        } else {
            Self::plain(label, total, every, Box::new(std::io::stderr()))
        }
    }

    /// Plain-line mode writing to `sink` (used when stderr is not a terminal, and by tests).
    pub fn plain(label: &str, total: u64, every: u64, sink: Sink) -> Self {
        Self::with_mode(
            label,
            total,
            Mode::Plain {
                sink,
                every: every.max(1),
            },
        )
    }

    fn with_mode(label: &str, total: u64, mode: Mode) -> Self {
        Self {
            label: label.to_string(),
            total,
            pos: 0,
            start: Instant::now(),
            mode,
        }
    }

    /// Advances by `n`; `msg` (e.g. `loss=0.123`) is only built when it will be shown.
    pub fn inc(&mut self, n: u64, msg: impl FnOnce() -> String) {
        self.pos += n;
        match &mut self.mode {
            Mode::Bar(bar) => {
                bar.set_message(msg());
                bar.inc(n);
            }
            Mode::Plain { sink, every } => {
                if self.pos % *every == 0 || self.pos == self.total {
                    let line = plain_line(
                        &self.label,
                        self.pos,
                        self.total,
                        self.start.elapsed(),
                        &msg(),
                    );
                    // A closed log stream must not stop training.
                    let _ = writeln!(sink, "{line}");
                }
            }
        }
    }

    /// Ends the bar (a terminal keeps its final state on screen).
    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish();
        }
    }
}

/// `label 120/1000 (12.0%) 35.2 it/s eta 25s loss=0.123`: the rate is always items per second,
/// with as many digits as it needs (`0.087 it/s` for slow steps), so that lines compare at a
/// glance; the ETA reads `25s`, `4m05s` or `2h03m`.
pub fn plain_line(label: &str, pos: u64, total: u64, elapsed: Duration, msg: &str) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { pos as f64 / secs } else { 0.0 };
    let pct = if total > 0 {
        100.0 * pos as f64 / total as f64
    } else {
        100.0
    };
    let eta = if rate > 0.0 {
        (total.saturating_sub(pos)) as f64 / rate
    } else {
        0.0
    };
    let mut line = format!(
        "{label} {pos}/{total} ({pct:.1}%) {} it/s eta {}",
        rate_digits(rate),
        duration(eta)
    );
    if !msg.is_empty() {
        line.push(' ');
        line.push_str(msg);
    }
    line
}

/// A rate with three significant digits (at least one decimal).
pub fn rate_digits(rate: f64) -> String {
    match rate {
        r if r >= 100.0 => format!("{r:.0}"),
        r if r >= 10.0 || r == 0.0 => format!("{r:.1}"),
        r if r >= 1.0 => format!("{r:.2}"),
        r => format!("{r:.3}"),
    }
}

/// Seconds as `25s`, `4m05s` or `2h03m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_always_per_second_and_the_eta_reads_in_units() {
        let fast = plain_line("mosi", 30, 100, Duration::from_secs(10), "");
        assert_eq!(fast, "mosi 30/100 (30.0%) 3.00 it/s eta 23s");
        let slow = plain_line("mosi", 2, 120, Duration::from_secs(23), "loss=2.5");
        assert_eq!(slow, "mosi 2/120 (1.7%) 0.087 it/s eta 22m37s loss=2.5");
        assert!(plain_line("mosi", 0, 12, Duration::ZERO, "").contains("0.0 it/s"));
        assert_eq!(duration(7500.0), "2h05m");
        assert_eq!(rate_digits(250.4), "250");
        assert_eq!(rate_digits(35.24), "35.2");
    }
}
