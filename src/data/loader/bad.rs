//! Bookkeeping of samples that could not be made: counted every time, logged once per file.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::SampleError;

#[derive(Debug, Default)]
pub struct BadSamples {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    count: usize,
    named: BTreeSet<String>,
    first: Option<String>,
}

impl BadSamples {
    /// Counts `e`; the first time a message is seen it goes to the log.
    pub fn record(&self, e: &SampleError) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.count += 1;
        if g.first.is_none() {
            g.first = Some(e.what.clone());
        }
        if g.named.insert(e.what.clone()) {
            tracing::warn!("skipped a sample: {}", e.what);
        }
    }

    /// Bad samples so far (a file that fails in two epochs counts twice).
    pub fn count(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).count
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
