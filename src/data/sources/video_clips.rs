//! Labelled video clips as loader samples: a dataset's entries, the temporal sampling and the
//! clip transforms of the config (docs/transforms.md), and the test views (temporal x spatial).
//!
//! Each video is decoded once per sample, however many clips the sample cuts from it: the
//! DATA.CLIPS_PER_DECODE clips of a training sample, and the temporal views of a test video
//! (decoded together with the first of its views a worker makes, kept for the next ones).

use std::path::Path;

use rand_chacha::ChaCha8Rng;
use tada_augment::transforms::clip::{transform_clip, ClipConfig, ClipView};
use tada_augment::transforms::color::ColorJitterConfig;
use tada_augment::transforms::rand_augment::RandAugment;
use tada_augment::transforms::random_erasing::{self as erasing, RandomErasing};
use tada_augment::transforms::temporal::{
    interval_indices, segment_indices, IntervalSampling, TemporalView,
};
use tch::Tensor;

use crate::config::schema::{AugmentationConfig, SamplingMode};
use crate::config::Config;
use crate::data::dataset::{Entry, Split};
use crate::data::loader::{Sample, SampleError, SampleSource};
use crate::data::video::{read_clips_with, DecodeError, Frames, Resize, VideoInfo};

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
    /// Training: clips cut from one decode of a video, each its own augmentation; a sample is
    /// then `(k, 3, T, S, S)` with `(k)` labels, which the loader flattens into the batch
    /// (DATA.CLIPS_PER_DECODE; 1 elsewhere).
    pub clips_per_decode: usize,
    /// AUGMENTATION.SSV2_FLIP on SSv2 training: a mirrored clip takes the mirrored class of
    /// [`SSV2_LEFT_RIGHT`].
    pub ssv2_label_swap: bool,
}

/// The Something-Something v2 classes that mirror into each other (pushing/moving/pulling
/// something from left to right and right to left), as the reference's SSV2_FLIP lists them.
pub const SSV2_LEFT_RIGHT: [(i64, i64); 3] = [(86, 87), (93, 94), (166, 167)];

/// The SSv2 class of a mirrored clip of class `label`.
pub fn ssv2_mirrored_label(label: i64) -> i64 {
    SSV2_LEFT_RIGHT
        .iter()
        .find_map(|&(a, b)| match label {
            l if l == a => Some(b),
            l if l == b => Some(a),
            _ => None,
        })
        .unwrap_or(label)
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

/// A training augmentation whose settings cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AugmentationError(pub String);

/// AUGMENTATION.AUTOAUGMENT as the clip pipeline's RandAugment, or `None` when it is off.
pub fn rand_augment(cfg: &Config) -> Result<Option<RandAugment>, AugmentationError> {
    let a = &cfg.augmentation.autoaugment;
    if !a.enable {
        return Ok(None);
    }
    let size = cfg.data.train_crop_size as i64;
    RandAugment::parse(&a.kind, size, triple(&cfg.data.mean))
        .map(Some)
        .map_err(|e| AugmentationError(format!("AUGMENTATION.AUTOAUGMENT.TYPE: {e}")))
}

/// AUGMENTATION.RANDOM_ERASING as the clip pipeline's step, or `None` when it is off.
pub fn random_erasing(a: &AugmentationConfig) -> Result<Option<RandomErasing>, AugmentationError> {
    use crate::config::schema::RandomErasingMode as Mode;
    let r = &a.random_erasing;
    if !r.enable {
        return Ok(None);
    }
    RandomErasing::new(erasing::RandomErasingConfig {
        enable: r.enable,
        prob: r.prob,
        mode: match r.mode {
            Mode::Const => erasing::RandomErasingMode::Const,
            Mode::Rand => erasing::RandomErasingMode::Rand,
            Mode::Pixel => erasing::RandomErasingMode::Pixel,
        },
        count: r.count.clone(),
        num_splits: r.num_splits,
        area_range: r.area_range.clone(),
        min_aspect: r.min_aspect,
    })
    .map(Some)
    .map_err(|e| AugmentationError(e.to_string()))
}

/// DATA.MEAN / DATA.STD as three channel values.
pub fn triple(v: &[f64]) -> [f64; 3] {
    // Validation guarantees three values; a shorter list repeats its last (one grey value).
    let at = |i: usize| v.get(i).or(v.last()).copied().unwrap_or(0.0);
    [at(0), at(1), at(2)]
}

impl ClipSourceConfig {
    /// The clip pipeline of `split`; fails on augmentation settings that cannot be used.
    pub fn from_config(cfg: &Config, split: Split) -> Result<Self, AugmentationError> {
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
        // DATA.DECODER: validation refuses nvdec; a config built in code gets the same line.
        if d.decoder == crate::config::schema::Decoder::Nvdec {
            return Err(AugmentationError(
                "DATA.DECODER: nvdec is not built yet; use cpu or auto".into(),
            ));
        }
        // As the reference: only when training on SSv2 itself, not in pretraining.
        let ssv2_label_swap = split == Split::Train
            && cfg.augmentation.ssv2_flip
            && !cfg.pretrain.enable
            && cfg.train.dataset == Some(crate::config::schema::Dataset::Ssv2);
        Ok(Self {
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
                rand_augment: rand_augment(cfg)?,
                erasing: random_erasing(&cfg.augmentation)?,
            },
            temporal_views,
            spatial_views,
            decode_resize: Resize::None,
            clips_per_decode: match split {
                Split::Train => d.clips_per_decode.max(1),
                Split::Val | Split::Test => 1,
            },
            ssv2_label_swap,
        })
    }

    pub fn views_per_video(&self) -> usize {
        self.temporal_views * self.spatial_views
    }

    /// Frame indices of sample `view` (temporal view `view / spatial views` in testing) of a
    /// `frames`-frame video at `fps`.
    pub fn indices(
        &self,
        frames: usize,
        fps: f64,
        view: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<usize> {
        let temporal = match self.split {
            Split::Train | Split::Val => TemporalView::Random,
            Split::Test => TemporalView::Test {
                index: view / self.spatial_views,
                count: self.temporal_views,
            },
        };
        let idx = match self.sampling {
            Sampling::Interval(s) => interval_indices(&s, frames, fps, temporal, rng),
            Sampling::Segment { num_frames } => segment_indices(num_frames, frames, temporal, rng),
        };
        idx.into_iter().map(|i| i.max(0) as usize).collect()
    }

    /// The spatial view of sample `view`.
    pub fn clip_view(&self, view: usize) -> ClipView {
        match self.split {
            Split::Train => ClipView::Train,
            // The reference's validation crops at TEST_SCALE; tada takes the centre so the
            // in-training validation score is not noisy.
            Split::Val => ClipView::Test { index: 0, count: 1 },
            Split::Test => ClipView::Test {
                index: view % self.spatial_views,
                count: self.spatial_views,
            },
        }
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
        self.cfg.indices(frames, fps, view, rng)
    }

    fn clip_view(&self, view: usize) -> ClipView {
        self.cfg.clip_view(view)
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

/// Test views of one video at most this large are kept for the worker's next views; larger
/// ones (long clips of big frames, many views) are decoded view by view.
const SHARED_VIEWS_BYTES: usize = 256 << 20;

/// The decoded temporal views of the last test video a worker read: its next views (the test
/// loader does not shuffle, so they follow) are cut from them.
struct SharedViews {
    key: (std::path::PathBuf, Sampling, usize, Resize),
    views: Vec<Frames>,
}

thread_local! {
    static SHARED_VIEWS: std::cell::RefCell<Option<SharedViews>> = const { std::cell::RefCell::new(None) };
}

impl VideoClips {
    /// Whether the temporal views' frames are fixed (drawn from no random number), so one
    /// decode can serve every view of a video; a 1-frame interval clip draws its frame even
    /// in testing.
    fn fixed_test_views(&self) -> bool {
        self.cfg.split == Split::Test
            && !matches!(self.cfg.sampling, Sampling::Interval(s) if s.num_frames == 1)
    }

    /// The frames of sample `view` of `entry`: one clip, with its decode time in seconds.
    /// Test views come from one decode of all the video's temporal views where they are
    /// fixed; everything else from a decode of its own.
    fn test_or_single(
        &self,
        entry: &Entry,
        view: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Frames, f64), DecodeError> {
        let t0 = std::time::Instant::now();
        if !self.fixed_test_views() {
            let mut clips = read_clips_with(&entry.path, self.cfg.decode_resize, |info| {
                require_clip_frames(&entry.path, info)?;
                Ok(vec![self.indices(info.frames, info.fps, view, rng)])
            })?;
            return Ok((clips.remove(0), t0.elapsed().as_secs_f64()));
        }
        let temporal = view / self.cfg.spatial_views;
        let key = (
            entry.path.clone(),
            self.cfg.sampling,
            self.cfg.temporal_views,
            self.cfg.decode_resize,
        );
        let kept = SHARED_VIEWS.with(|c| {
            c.borrow()
                .as_ref()
                .filter(|s| s.key == key)
                .and_then(|s| s.views.get(temporal).cloned())
        });
        if let Some(frames) = kept {
            return Ok((frames, 0.0));
        }
        let mut all = true;
        let clips = read_clips_with(&entry.path, self.cfg.decode_resize, |info| {
            require_clip_frames(&entry.path, info)?;
            let (h, w) = self.cfg.decode_resize.apply(info.height, info.width);
            let bytes = self.cfg.temporal_views * self.cfg.sampling.num_frames() * 3;
            all = bytes.saturating_mul(h as usize * w as usize) <= SHARED_VIEWS_BYTES;
            let views: Vec<usize> = match all {
                true => (0..self.cfg.temporal_views)
                    .map(|t| t * self.cfg.spatial_views)
                    .collect(),
                false => vec![view],
            };
            // Fixed views draw nothing: `rng` is passed only because the samplers take one.
            Ok(views
                .into_iter()
                .map(|v| self.indices(info.frames, info.fps, v, rng))
                .collect())
        })?;
        let seconds = t0.elapsed().as_secs_f64();
        if !all {
            return Ok((clips.into_iter().next().unwrap_or_else(empty), seconds));
        }
        let frames = clips.get(temporal).cloned().unwrap_or_else(empty);
        SHARED_VIEWS.with(|c| *c.borrow_mut() = Some(SharedViews { key, views: clips }));
        Ok((frames, seconds))
    }

    /// One augmented clip of `frames` and its label.
    ///
    /// # Shapes
    /// -> `(3, T, S, S)` float clip, 0-d int64 label.
    fn augment(
        &self,
        entry: &Entry,
        frames: &Frames,
        view: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, i64), SampleError> {
        // (T, H, W, 3) uint8 -> (3, T, S, S) float.
        let out = transform_clip(
            &frames.to_tensor(),
            &self.cfg.clip,
            self.clip_view(view),
            rng,
        )
        .map_err(|e| SampleError {
            kind: "augmentation",
            what: format!("{}: {e}", entry.path.display()),
        })?;
        let label = match self.cfg.ssv2_label_swap && out.flipped {
            true => ssv2_mirrored_label(entry.label),
            false => entry.label,
        };
        Ok((out.clip, label))
    }

    /// DATA.CLIPS_PER_DECODE clips of `entry` from one decode: every clip's frames are drawn
    /// first (in clip order), then every clip is augmented (in clip order).
    ///
    /// # Shapes
    /// -> `(k, 3, T, S, S)` clips, `(k)` labels.
    fn repeated(&self, video: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        let entry = &self.entries[video];
        let k = self.cfg.clips_per_decode;
        let t0 = std::time::Instant::now();
        let clips = read_clips_with(&entry.path, self.cfg.decode_resize, |info| {
            require_clip_frames(&entry.path, info)?;
            Ok((0..k)
                .map(|_| self.indices(info.frames, info.fps, 0, rng))
                .collect())
        })
        .map_err(sample_error)?;
        let decode_seconds = t0.elapsed().as_secs_f64();
        let mut inputs = Vec::with_capacity(k);
        let mut labels = Vec::with_capacity(k);
        for frames in &clips {
            let (clip, label) = self.augment(entry, frames, 0, rng)?;
            inputs.push(clip);
            labels.push(label);
        }
        Ok(Sample {
            // k x (3, T, S, S) -> (k, 3, T, S, S).
            input: Tensor::stack(&inputs, 0),
            label: Tensor::from_slice(&labels),
            source: video,
            view: 0,
            decode_seconds,
        })
    }
}

fn empty() -> Frames {
    Frames {
        data: Vec::new(),
        t: 0,
        height: 0,
        width: 0,
        decoded: 0,
    }
}

impl SampleSource for VideoClips {
    fn len(&self) -> usize {
        self.entries.len() * self.cfg.views_per_video()
    }

    fn clips_per_sample(&self) -> usize {
        self.cfg.clips_per_decode
    }

    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        if self.cfg.clips_per_decode > 1 {
            return self.repeated(index, rng);
        }
        let views = self.cfg.views_per_video();
        let (video, view) = (index / views, index % views);
        let entry = &self.entries[video];
        let (frames, decode_seconds) = self
            .test_or_single(entry, view, rng)
            .map_err(sample_error)?;
        let (input, label) = self.augment(entry, &frames, view, rng)?;
        Ok(Sample {
            input,
            label: Tensor::from(label),
            source: video,
            view,
            decode_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Dataset;
    use rand::SeedableRng;
    use tch::Kind;

    /// The reference's SSV2_FLIP table: 86 <-> 87, 93 <-> 94, 166 <-> 167, nothing else.
    #[test]
    fn the_ssv2_swap_is_the_reference_list() {
        let swapped: Vec<(i64, i64)> = (0..174)
            .map(|l| (l, ssv2_mirrored_label(l)))
            .filter(|(l, m)| l != m)
            .collect();
        assert_eq!(
            swapped,
            vec![
                (86, 87),
                (87, 86),
                (93, 94),
                (94, 93),
                (166, 167),
                (167, 166)
            ]
        );
    }

    /// SSv2 training with SSV2_FLIP: a sample of class 86 comes out as 87 exactly when its clip
    /// is mirrored (frames bright on the left, so a mirrored clip is bright on the right);
    /// other datasets keep their labels.
    #[test]
    fn a_mirrored_ssv2_clip_takes_the_mirrored_label() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("video");
        std::fs::create_dir(&dir).unwrap();
        let mut img = image::RgbImage::new(32, 32);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb(if x < 16 { [255; 3] } else { [0; 3] });
        }
        for i in 0..4 {
            img.save(dir.join(format!("img_{i:05}.png"))).unwrap();
        }
        let mut cfg = Config::default();
        cfg.train.dataset = Some(Dataset::Ssv2);
        cfg.augmentation.ssv2_flip = true;
        cfg.augmentation.color_aug = false;
        cfg.data.num_input_frames = 4;
        cfg.data.train_crop_size = 32;
        cfg.data.train_jitter_scales = vec![32.0, 32.0];
        let entry = Entry {
            path: dir.clone(),
            label: 86,
            id: "video".into(),
        };
        let clips = |cfg: &Config| {
            VideoClips::new(
                vec![entry.clone()],
                ClipSourceConfig::from_config(cfg, Split::Train).unwrap(),
            )
        };
        let ssv2 = clips(&cfg);
        let (mut mirrored, mut kept) = (0, 0);
        for seed in 0..16 {
            let s = ssv2.get(0, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            // (3, T, H, W): the left half's mean against the right half's.
            let left = s.input.narrow(3, 0, 16).mean(Kind::Float).double_value(&[]);
            let right = s
                .input
                .narrow(3, 16, 16)
                .mean(Kind::Float)
                .double_value(&[]);
            let flipped = right > left;
            let want = if flipped { 87 } else { 86 };
            assert_eq!(s.label.int64_value(&[]), want, "seed {seed}");
            if flipped {
                mirrored += 1
            } else {
                kept += 1
            }
        }
        assert!(mirrored > 2 && kept > 2, "{mirrored} mirrored, {kept} not");
        cfg.train.dataset = Some(Dataset::Kinetics400);
        let k400 = clips(&cfg);
        for seed in 0..8 {
            let s = k400.get(0, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            assert_eq!(s.label.int64_value(&[]), 86);
        }
    }
}
