//! Flag values that clap checks against their bounds, so that a bad one is a usage error
//! (exit status 2) naming the flag.

use tada::config::{MAX_BATCH_SIZE, MAX_NUM_WORKERS};

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
