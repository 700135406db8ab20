//! Bookkeeping of samples that could not be made.
//!
//! Two scopes: [`BadSamples`] is the loader's record over the whole run (each bad sample goes to
//! the log once, however many epochs read it), [`EpochBad`] the distinct bad samples of one pass,
//! which is what `DATA_LOADER.MAX_BAD_FRACTION` limits.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use super::SampleError;

/// Bad samples over every epoch of a loader, logged once each.
#[derive(Debug, Default)]
pub struct BadSamples {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    indices: BTreeSet<usize>,
    named: BTreeSet<String>,
    first: Option<String>,
}

impl BadSamples {
    /// Records that sample `index` failed with `e`. It goes to the log the first time the
    /// sample fails, unless the very same line was logged already (the views of one file in a
    /// test loader are separate samples with one message); a file whose message changes from
    /// epoch to epoch (truncated at another frame) is still logged once.
    pub fn record(&self, index: usize, e: &SampleError) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.first.is_none() {
            g.first = Some(e.what.clone());
        }
        let new_sample = g.indices.insert(index);
        let new_line = g.named.insert(e.what.clone());
        if new_sample && new_line {
            tracing::warn!("skipped a sample: {}", e.what);
        }
    }

    /// Distinct samples that failed at least once, over all epochs.
    pub fn count(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .indices
            .len()
    }

    /// Distinct failures (one line each: file and reason).
    pub fn distinct(&self) -> Vec<String> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.named.iter().cloned().collect()
    }

    pub fn first(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first
            .clone()
    }
}

/// The distinct bad samples of one epoch, in the order they were met.
#[derive(Debug, Default)]
pub(crate) struct EpochBad {
    seen: HashSet<usize>,
    lines: Vec<String>,
}

impl EpochBad {
    pub fn record(&mut self, index: usize, e: &SampleError) {
        if self.seen.insert(index) {
            self.lines.push(e.what.clone());
        }
    }

    pub fn count(&self) -> usize {
        self.lines.len()
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

/// Failure lines for a one-line message: the first `shown`, then "and N more". Lines repeated
/// (the views of one file) appear once.
pub fn brief_list(lines: &[String], shown: usize) -> String {
    let mut seen = HashSet::new();
    let unique: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| seen.insert(*l))
        .collect();
    let mut s = unique[..unique.len().min(shown)].join("; ");
    if unique.len() > shown {
        s.push_str(&format!("; and {} more", unique.len() - shown));
    }
    s
}
