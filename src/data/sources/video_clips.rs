//! Labelled video clips as loader samples: a dataset's entries, the temporal sampling and the
//! clip transforms of the config (docs/transforms.md), and the test views (temporal x spatial).

use std::path::Path;

use rand_chacha::ChaCha8Rng;
use tada_augment::transforms::clip::{transform_clip, ClipConfig, ClipView};
use tada_augment::transforms::color::ColorJitterConfig;
use tada_augment::transforms::temporal::{
    interval_indices, segment_indices, IntervalSampling, TemporalView,
};
use tch::Tensor;

use crate::config::schema::{AugmentationConfig, SamplingMode};
use crate::config::Config;
use crate::data::dataset::{Entry, Split};
use crate::data::loader::{Sample, SampleError, SampleSource};
use crate::data::video::{read_with, DecodeError, Resize, VideoInfo};

/// How frame indices are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    Interval(IntervalSampling),
    Segment { num_frames: usize },
}

impl Sampling {
    pub fn num_frames(&self) -> usize {
        match self {
            Sampling::Interval(s) => s.num_frames,
            Sampling::Segment { num_frames } => *num_frames,
        }
    }
}

/// Everything that turns a video file into a training or test clip.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSourceConfig {
    pub split: Split,
    pub sampling: Sampling,
    pub clip: ClipConfig,
    /// Test: temporal views per video (TEST.NUM_ENSEMBLE_VIEWS).
    pub temporal_views: usize,
    /// Test: spatial crops per temporal view (TEST.NUM_SPATIAL_CROPS).
    pub spatial_views: usize,
    pub decode_resize: Resize,
}

/// The colour-jitter settings of AUGMENTATION, or `None` when COLOR_AUG is off.
pub fn color_config(a: &AugmentationConfig) -> Option<ColorJitterConfig> {
    a.color_aug.then_some(ColorJitterConfig {
        brightness: a.brightness,
        contrast: a.contrast,
        saturation: a.saturation,
        hue: a.hue,
        color_p: a.color_p,
        grayscale: a.grayscale,
        consistent: a.consistent,
        shuffle: a.shuffle,
        gray_first: a.gray_first,
    })
}

/// DATA.MEAN / DATA.STD as three channel values.
pub fn triple(v: &[f64]) -> [f64; 3] {
    // Validation guarantees three values; a shorter list repeats its last (one grey value).
    let at = |i: usize| v.get(i).or(v.last()).copied().unwrap_or(0.0);
    [at(0), at(1), at(2)]
}

impl ClipSourceConfig {
    pub fn from_config(cfg: &Config, split: Split) -> Self {
        let d = &cfg.data;
        let sampling = match d.sampling_mode {
            SamplingMode::IntervalBased => Sampling::Interval(IntervalSampling {
                num_frames: d.num_input_frames,
                sampling_rate: d.sampling_rate,
                target_fps: d.target_fps,
                minus_interval: d.minus_interval,
            }),
            SamplingMode::SegmentBased => Sampling::Segment {
                num_frames: d.num_input_frames,
            },
        };
        let jitter = [
            d.train_jitter_scales.first().copied().unwrap_or(168.0),
            d.train_jitter_scales.get(1).copied().unwrap_or(224.0),
        ];
        let ratio = [
            cfg.augmentation.ratio.first().copied().unwrap_or(0.75),
            cfg.augmentation.ratio.get(1).copied().unwrap_or(4.0 / 3.0),
        ];
        let (temporal_views, spatial_views) = match split {
            Split::Test => (
                cfg.test.num_ensemble_views.max(1) as usize,
                cfg.test.num_spatial_crops.max(1) as usize,
            ),
            Split::Train | Split::Val => (1, 1),
        };
        Self {
            split,
            sampling,
            clip: ClipConfig {
                train_jitter_scales: jitter,
                train_crop_size: d.train_crop_size as i64,
                test_scale: d.test_scale as i64,
                test_crop_size: d.test_crop_size as i64,
                ratio,
                color: color_config(&cfg.augmentation),
                flip: true,
                mean: triple(&d.mean),
                std: triple(&d.std),
            },
            temporal_views,
            spatial_views,
            decode_resize: Resize::None,
        }
    }

    pub fn views_per_video(&self) -> usize {
        self.temporal_views * self.spatial_views
    }
}

/// A list of labelled videos as a [`SampleSource`]: sample `i` is view `i % views` of video
/// `i / views`.
#[derive(Debug, Clone)]
pub struct VideoClips {
    entries: Vec<Entry>,
    cfg: ClipSourceConfig,
}

impl VideoClips {
    pub fn new(entries: Vec<Entry>, cfg: ClipSourceConfig) -> Self {
        Self { entries, cfg }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn config(&self) -> &ClipSourceConfig {
        &self.cfg
    }

    /// Frame indices and views of sample `view` of a `frames`-frame video at `fps`.
    fn indices(&self, frames: usize, fps: f64, view: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let temporal = match self.cfg.split {
            Split::Train | Split::Val => TemporalView::Random,
            Split::Test => TemporalView::Test {
                index: view / self.cfg.spatial_views,
                count: self.cfg.temporal_views,
            },
        };
        let idx = match self.cfg.sampling {
            Sampling::Interval(s) => interval_indices(&s, frames, fps, temporal, rng),
            Sampling::Segment { num_frames } => segment_indices(num_frames, frames, temporal, rng),
        };
        idx.into_iter().map(|i| i.max(0) as usize).collect()
    }

    fn clip_view(&self, view: usize) -> ClipView {
        match self.cfg.split {
            Split::Train => ClipView::Train,
            // The reference's validation crops at TEST_SCALE; tada takes the centre so the
            // in-training validation score is not noisy.
            Split::Val => ClipView::Test { index: 0, count: 1 },
            Split::Test => ClipView::Test {
                index: view % self.cfg.spatial_views,
                count: self.cfg.spatial_views,
            },
        }
    }
}

/// Frames a video needs to give a clip: one. Both samplers clamp their indices to the last
/// frame, so a video shorter than a clip repeats frames (a 1-frame video gives a still clip)
/// rather than failing. `tada data check` applies this same rule.
pub const MIN_CLIP_FRAMES: usize = 1;

/// Whether the video at `path` described by `info` has the frames a clip needs.
pub fn require_clip_frames(path: &Path, info: &VideoInfo) -> Result<(), DecodeError> {
    if info.frames < MIN_CLIP_FRAMES {
        return Err(DecodeError::TooFewFrames {
            path: path.to_path_buf(),
            frames: info.frames,
            needed: MIN_CLIP_FRAMES,
        });
    }
    Ok(())
}

fn sample_error(e: DecodeError) -> SampleError {
    SampleError {
        kind: e.kind(),
        what: e.to_string(),
    }
}

impl SampleSource for VideoClips {
    fn len(&self) -> usize {
        self.entries.len() * self.cfg.views_per_video()
    }

    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        let views = self.cfg.views_per_video();
        let (video, view) = (index / views, index % views);
        let entry = &self.entries[video];
        let t0 = std::time::Instant::now();
        let frames = read_with(&entry.path, self.cfg.decode_resize, |info| {
            require_clip_frames(&entry.path, info)?;
            Ok(self.indices(info.frames, info.fps, view, rng))
        })
        .map_err(sample_error)?;
        let decode_seconds = t0.elapsed().as_secs_f64();
        // (T, H, W, 3) uint8 -> (3, T, S, S) float.
        let clip = transform_clip(
            &frames.to_tensor(),
            &self.cfg.clip,
            self.clip_view(view),
            rng,
        );
        Ok(Sample {
            input: clip,
            label: Tensor::from(entry.label),
            source: video,
            view,
            decode_seconds,
        })
    }
}
