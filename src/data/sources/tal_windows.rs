//! Localisation training windows (docs/localization.md#training): each sample is one window's
//! (C, T) features and its BMN targets packed into one vector, start (T), end (T) and the IoU
//! map (D·T), which `tasks::localize` unpacks.

use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use crate::data::loader::{Sample, SampleError, SampleSource};
use crate::localization::features::{FeatureError, FeatureSet};
use crate::localization::labels::LabelMaps;

/// The windows of a localisation split that hold a whole segment.
pub struct TalWindows {
    set: FeatureSet,
    maps: LabelMaps,
}

impl TalWindows {
    pub fn new(set: FeatureSet) -> Self {
        let maps = LabelMaps::new(set.grid.tscale, set.grid.dscale);
        Self { set, maps }
    }

    pub fn set(&self) -> &FeatureSet {
        &self.set
    }
}

/// A window that cannot be read: its file and reason, counted as a bad sample.
fn sample_error(e: FeatureError) -> SampleError {
    let kind = match &e {
        FeatureError::File { reason, .. } if reason == "no such file" => "missing",
        _ => "unreadable",
    };
    SampleError {
        what: e.to_string(),
        kind,
    }
}

impl SampleSource for TalWindows {
    fn len(&self) -> usize {
        self.set.index.windows.len()
    }

    fn get(&self, index: usize, _rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        let begun = std::time::Instant::now();
        let w = &self.set.index.windows[index];
        let input = self.set.window(index).map_err(sample_error)?;
        let read = begun.elapsed().as_secs_f64();
        let gt: Vec<(f64, f64)> = w.segments.iter().map(|s| (s.start, s.end)).collect();
        let t = self
            .maps
            .targets(&LabelMaps::normalise(&gt, w.end - w.start));
        Ok(Sample {
            input: input.assembled.features,
            // (T) + (T) + (D·T)
            label: Tensor::cat(&[t.start, t.end, t.iou_map.flatten(0, -1)], 0),
            source: w.video,
            view: index,
            decode_seconds: read,
        })
    }
}
