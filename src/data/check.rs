//! `tada data check`: every file a dataset lists, opened and probed in parallel before a long
//! run finds the bad ones one crash at a time.
//!
//! A video passes when training can read it: it opens as a video (or frame folder), has the
//! frames a clip needs by the training reader's rule, and its last frame decodes (seeking there
//! is cheap). An image (an image dataset's file) passes when it is a regular file that decodes
//! as an image.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::data::dataset::Entry;
use crate::data::sources::mosi_images::{read_image, ImageError};
use crate::data::sources::video_clips::require_clip_frames;
use crate::data::video::{read_with, DecodeError, Resize};

/// The outcome of a scan.
#[derive(Debug)]
pub struct CheckReport<E = DecodeError> {
    pub checked: usize,
    /// Bad files in list order, with why.
    pub bad: Vec<(PathBuf, E)>,
}

impl<E> Default for CheckReport<E> {
    fn default() -> Self {
        Self {
            checked: 0,
            bad: Vec::new(),
        }
    }
}

impl<E> CheckReport<E> {
    pub fn bad_fraction(&self) -> f64 {
        if self.checked == 0 {
            0.0
        } else {
            self.bad.len() as f64 / self.checked as f64
        }
    }
}

/// Checks one file exactly as training reads it: readable, the frames a training clip needs
/// ([`require_clip_frames`], counted the way the clip reader counts them), and its last frame
/// decodes (for a file that is the clip reaching furthest).
pub fn check_file(path: &std::path::Path) -> Result<(), DecodeError> {
    // Tiny output: only decodability matters, not pixels.
    read_with(path, Resize::ShortSide(8), |info| {
        require_clip_frames(path, info)?;
        Ok(vec![info.frames - 1])
    })
    .map(|_| ())
}

/// Checks one image file: a regular file that decodes.
pub fn check_image(path: &Path) -> Result<(), ImageError> {
    read_image(path).map(|_| ())
}

/// Checks the videos `entries` (duplicates once) on `workers` threads; `progress` is called
/// after each file with the number done so far.
pub fn check_entries(
    entries: &[Entry],
    workers: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> CheckReport {
    scan(entries, workers, progress, check_file)
}

/// Checks the images `entries` (an image dataset's) as [`check_entries`] checks videos.
pub fn check_images(
    entries: &[Entry],
    workers: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> CheckReport<ImageError> {
    scan(entries, workers, progress, check_image)
}

fn scan<E: Send>(
    entries: &[Entry],
    workers: usize,
    progress: &(dyn Fn(usize) + Sync),
    check: impl Fn(&Path) -> Result<(), E> + Sync,
) -> CheckReport<E> {
    let mut paths: Vec<&PathBuf> = entries.iter().map(|e| &e.path).collect();
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(*p));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let bad = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                if let Err(e) = check(path) {
                    bad.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, (*path).clone(), e));
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            });
        }
    });
    let mut bad = bad.into_inner().unwrap_or_else(|p| p.into_inner());
    bad.sort_by_key(|(i, ..)| *i);
    CheckReport {
        checked: paths.len(),
        bad: bad.into_iter().map(|(_, p, e)| (p, e)).collect(),
    }
}
