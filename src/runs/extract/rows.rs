//! The feature rows of one video: each row's clip decoded, cut into the test-time spatial
//! crops, and run through the model in batches; the pooled features (and, when asked, the
//! classifier's logits) of the crops laid side by side, view-major.

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tada_augment::transforms::clip::{transform_clip, ClipConfig, ClipView};
use tch::{Device, Kind, Tensor};

use super::layout::RowGrid;
use crate::data::video::{read_frames, Resize, VideoInfo};
use crate::models::heads::Predictions;
use crate::models::Session;

/// Frames cut into crops per transform call: the transform holds them as float at full
/// resolution, so a long batch of 1080p frames is done in pieces (it works frame by frame, so
/// the pieces give the same result).
const TRANSFORM_CHUNK: i64 = 32;

/// How a row's clip is sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowSampling {
    pub grid: RowGrid,
    /// DATA.NUM_INPUT_FRAMES.
    pub num_frames: usize,
    /// DATA.SAMPLING_RATE: frames at TARGET_FPS between two sampled frames.
    pub sampling_rate: usize,
}

impl RowSampling {
    /// Frame indices of row `k`'s clip in a `frames`-frame video at `fps`: NUM_INPUT_FRAMES
    /// frames every SAMPLING_RATE frames at TARGET_FPS, frame `N/2` on the row's centre (so
    /// the clip covers `[c − N·S/2, c + N·S/2)` frames at TARGET_FPS), each time mapped to
    /// the video's own frame that shows it and clamped into the video.
    pub fn indices(&self, k: usize, frames: usize, fps: f64) -> Vec<usize> {
        let (n, s) = (self.num_frames as f64, self.sampling_rate as f64);
        let centre = self.grid.centre_frames(k) as f64;
        let last = frames.saturating_sub(1) as f64;
        (0..self.num_frames)
            .map(|j| {
                let at = centre - n * s / 2.0 + j as f64 * s;
                // The tolerance keeps a time that lands on a frame (equal rates) on it.
                let frame = (at / self.grid.target_fps * fps + 1e-6).floor();
                frame.clamp(0.0, last) as usize
            })
            .collect()
    }
}

/// What the model gives for every row of a video.
#[derive(Debug)]
pub struct VideoRows {
    /// `(rows, views · D)` float32 on the CPU.
    pub features: Tensor,
    /// Per classifier (`verb_class` and `noun_class`, or `class`): `(rows, views · K)` raw
    /// logits, when asked for.
    pub logits: Vec<(String, Tensor)>,
}

/// Runs the rows of videos through a loaded model.
pub struct RowExtractor<'a> {
    pub session: &'a Session,
    pub sampling: RowSampling,
    pub clip: ClipConfig,
    /// Spatial crops per row (TEST.NUM_SPATIAL_CROPS).
    pub views: usize,
    /// Rows per forward pass.
    pub batch: usize,
    /// Width of a row's features (views · D).
    pub channels: i64,
    /// The logits to keep, by prediction name, and their row width (views · K); empty
    /// without `--classifier`.
    pub logit_widths: Vec<(String, i64)>,
    /// Frame rate of a folder of frame images (DATA.FPS).
    pub frame_dir_fps: f64,
    /// Seconds spent decoding, cropping and in the model, so far.
    pub timing: std::cell::Cell<Timing>,
}

/// Where an extraction's time went, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    pub decode: f64,
    pub crop: f64,
    pub model: f64,
}

impl RowExtractor<'_> {
    /// Rows `rows` (global indices) of the video at `path` described by `info`; an error
    /// (decoding, or a frame the transform cannot take) is a one-line message.
    pub fn rows(
        &self,
        path: &Path,
        info: &VideoInfo,
        rows: std::ops::Range<usize>,
    ) -> Result<VideoRows, String> {
        let mut features = Vec::new();
        let mut logits: Vec<Vec<Tensor>> = self.logit_widths.iter().map(|_| Vec::new()).collect();
        let mut k0 = rows.start;
        while k0 < rows.end {
            let k1 = (k0 + self.batch.max(1)).min(rows.end);
            let (f, l) = self.batch_rows(path, info, k0..k1)?;
            features.push(f);
            for (all, t) in logits.iter_mut().zip(l) {
                all.push(t);
            }
            k0 = k1;
        }
        // A clip may hold no row (a tail shorter than the row interval): (0, width) then.
        let cat = |v: &[Tensor], width: i64| match v.is_empty() {
            true => Tensor::zeros([0, width], (Kind::Float, Device::Cpu)),
            false => Tensor::cat(v, 0),
        };
        Ok(VideoRows {
            features: cat(&features, self.channels),
            logits: self
                .logit_widths
                .iter()
                .zip(&logits)
                .map(|((n, w), v)| (n.clone(), cat(v, *w)))
                .collect(),
        })
    }

    /// Rows `ks` of one video: each distinct frame decoded and cropped once, then gathered
    /// into the rows' clips.
    ///
    /// # Shapes
    /// -> features `(R, views · D)`, logits `(R, views · K)` per classifier (in the order of
    /// `logit_widths`), on the CPU.
    fn batch_rows(
        &self,
        path: &Path,
        info: &VideoInfo,
        ks: std::ops::Range<usize>,
    ) -> Result<(Tensor, Vec<Tensor>), String> {
        let per_row: Vec<Vec<usize>> = ks
            .clone()
            .map(|k| self.sampling.indices(k, info.frames, info.fps))
            .collect();
        let mut distinct: Vec<usize> = per_row.concat();
        distinct.sort_unstable();
        distinct.dedup();
        let mut timing = self.timing.get();
        let t = Instant::now();
        let frames = read_frames(path, &distinct, Resize::None).map_err(|e| e.to_string())?;
        timing.decode += t.elapsed().as_secs_f64();
        let at: Vec<i64> = per_row
            .iter()
            .flatten()
            .map(|i| distinct.binary_search(i).unwrap_or(0) as i64)
            .collect();
        let at = Tensor::from_slice(&at).to_device(self.session.device);
        // (U, H, W, 3) uint8, cropped on the model's device.
        let frames = frames.to_tensor().to_device(self.session.device);
        let (r, n) = (per_row.len() as i64, self.sampling.num_frames as i64);
        let mut features = Vec::with_capacity(self.views);
        let mut logits: Vec<Vec<Tensor>> = self.logit_widths.iter().map(|_| Vec::new()).collect();
        for v in 0..self.views {
            let view = ClipView::Test {
                index: v,
                count: self.views,
            };
            let t = Instant::now();
            let cropped = self.crop(&frames, view)?;
            let s = cropped.size();
            // (3, U, S, S) -> (3, R·N, S, S) -> (3, R, N, S, S) -> (R, 3, N, S, S)
            let clips = cropped
                .index_select(1, &at)
                .view([s[0], r, n, s[2], s[3]])
                .permute([1, 0, 2, 3, 4])
                .contiguous();
            sync(self.session.device);
            timing.crop += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let out = tch::no_grad(|| {
                self.session
                    .model
                    .forward_t(&model_input(self.session, &clips), false)
            });
            features.push(out.features.to_device(Device::Cpu).to_kind(Kind::Float));
            timing.model += t.elapsed().as_secs_f64();
            if !self.logit_widths.is_empty() {
                let heads = named(out.predictions);
                for (all, (name, _)) in logits.iter_mut().zip(&self.logit_widths) {
                    let t = heads
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, t)| t.to_device(Device::Cpu).to_kind(Kind::Float))
                        .ok_or_else(|| format!("the model gave no {name} logits"))?;
                    all.push(t);
                }
            }
        }
        self.timing.set(timing);
        let logits = logits.iter().map(|v| Tensor::cat(v, 1)).collect();
        Ok((Tensor::cat(&features, 1), logits))
    }

    /// The test crop `view` of every frame, normalised.
    ///
    /// # Shapes
    /// `(U, H, W, 3)` uint8 -> `(3, U, S, S)` float.
    fn crop(&self, frames: &Tensor, view: ClipView) -> Result<Tensor, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let total = frames.size()[0];
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < total {
            let len = TRANSFORM_CHUNK.min(total - start);
            let out = transform_clip(&frames.narrow(0, start, len), &self.clip, view, &mut rng)
                .map_err(|e| e.to_string())?;
            pieces.push(out.clip);
            start += len;
        }
        Ok(Tensor::cat(&pieces, 1))
    }
}

/// `clips` as the model takes them: MoSINet (a pretraining config) wants `(B, 1, C, T, H, W)`.
///
/// # Shapes
/// `(B, C, T, H, W)` -> the same, or `(B, 1, C, T, H, W)`.
pub fn model_input(session: &Session, clips: &Tensor) -> Tensor {
    match session.model.is_mosi() {
        true => clips.unsqueeze(1),
        false => clips.shallow_clone(),
    }
}

/// Waits for `device`'s queued work, so that the timing of a step is its own.
fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The classifier outputs by the names the logits files use: a one-head model's is `class`.
fn named(p: Predictions) -> Vec<(String, Tensor)> {
    match p {
        Predictions::Tensor(t) => vec![(CLASS.to_string(), t)],
        Predictions::Named(v) => v,
    }
}

/// The logits array of a one-head model.
pub const CLASS: &str = "class";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_clip_is_centred_on_the_row_and_clamped_into_the_video() {
        let s = RowSampling {
            grid: RowGrid {
                interval: 8,
                target_fps: 60.0,
            },
            num_frames: 4,
            sampling_rate: 2,
        };
        // Row 0 centred on frame 7 at 60 fps: frames 3, 5, 7, 9.
        assert_eq!(s.indices(0, 100, 60.0), [3, 5, 7, 9]);
        // The same times in a 30 fps video.
        assert_eq!(s.indices(0, 100, 30.0), [1, 2, 3, 4]);
        // Row 20 (centre 167) of a 166-frame video: the end repeats the last frame.
        assert_eq!(s.indices(20, 166, 60.0), [163, 165, 165, 165]);
        let s32 = RowSampling {
            num_frames: 32,
            ..s
        };
        // Row 0's clip starts at frame 7 - 32 = -25: the first frame repeats until 7 - 32 + 2j
        // reaches 1.
        let idx = s32.indices(0, 1000, 60.0);
        assert_eq!(idx[..14], [[0; 13].as_slice(), &[1]].concat()[..]);
        assert_eq!(idx[31], 37);
    }
}
