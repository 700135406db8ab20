//! EPIC-Kitchens-100 segments as loader samples: each narration's frames sampled as any video's
//! (DATA.SAMPLING_MODE, the test views), cut by the clip transforms, labelled `(verb, noun)`.
//!
//! The reference samples the pre-cut segment video `<narration_id>.MP4` with its usual
//! interval- or segment-based sampling (its `_custom_sampling` is an empty stub, called only
//! in pretraining). tada does the same on a pre-cut segment, and on a frame folder samples the
//! segment's own frames `start_frame..=stop_frame` as if they were that video, at
//! DATA.TARGET_FPS (frame folders carry no rate; the published frames are at the camera's
//! 50 or 60 fps, and the reference's configs set TARGET_FPS 60), so interval sampling takes
//! every SAMPLING_RATE-th frame.

use rand_chacha::ChaCha8Rng;
use tada_augment::transforms::clip::transform_clip;
use tch::Tensor;

use crate::data::dataset::annotations::epic::{frame_file, Media, Narration};
use crate::data::loader::{Sample, SampleError, SampleSource};
use crate::data::video::frame_dir::decode_image;
use crate::data::video::{read_clips_with, DecodeError, Frames, Resize};

use super::video_clips::{require_clip_frames, ClipSourceConfig};

/// Labelled EPIC segments: sample `i` is view `i % views` of narration `i / views`; its label
/// is `(2)` int64 `[verb, noun]` (`(k, 2)` with DATA.CLIPS_PER_DECODE k > 1).
#[derive(Debug, Clone)]
pub struct EpicClips {
    narrations: Vec<Narration>,
    cfg: ClipSourceConfig,
    /// Frame rate a frame folder is sampled at (DATA.TARGET_FPS).
    frame_fps: f64,
}

impl EpicClips {
    pub fn new(narrations: Vec<Narration>, cfg: ClipSourceConfig, frame_fps: f64) -> Self {
        Self {
            narrations,
            cfg,
            frame_fps,
        }
    }

    pub fn narrations(&self) -> &[Narration] {
        &self.narrations
    }

    pub fn config(&self) -> &ClipSourceConfig {
        &self.cfg
    }

    /// One clip per entry of `views` (view numbers) of narration `n`.
    fn read(
        &self,
        n: &Narration,
        views: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Frames>, DecodeError> {
        match &n.media {
            Media::Clip(path) => read_clips_with(path, self.cfg.decode_resize, |info| {
                require_clip_frames(path, info)?;
                Ok(views
                    .iter()
                    .map(|&v| self.cfg.indices(info.frames, info.fps, v, rng))
                    .collect())
            }),
            Media::Frames(dir) => views
                .iter()
                .map(|&v| {
                    let idx = self.cfg.indices(n.frames(), self.frame_fps, v, rng);
                    read_segment(dir, n.start_frame, &idx, self.cfg.decode_resize)
                })
                .collect(),
        }
    }
}

/// Frames `start + i` (1-based file numbers) of an EPIC frame folder.
///
/// # Shapes
/// -> `(T, H, W, 3)` uint8 frames, T = `idx.len()`.
fn read_segment(
    dir: &std::path::Path,
    start: usize,
    idx: &[usize],
    resize: Resize,
) -> Result<Frames, DecodeError> {
    let mut data = Vec::new();
    let mut size = None;
    for &i in idx {
        let file = frame_file(dir, start + i);
        let img = decode_image(&file)?;
        let (h, w) = resize.apply(img.height(), img.width());
        let img = match (h, w) == (img.height(), img.width()) {
            true => img,
            false => image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle),
        };
        match size {
            None => size = Some((img.height(), img.width())),
            Some(s) if s != (img.height(), img.width()) => {
                return Err(DecodeError::MixedFrameSizes {
                    path: dir.to_path_buf(),
                    first: format!("{}x{}", s.1, s.0),
                    other: format!("{}x{}", img.width(), img.height()),
                    name: file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                })
            }
            Some(_) => {}
        }
        data.extend_from_slice(img.as_raw());
    }
    let (height, width) = size.unwrap_or((0, 0));
    Ok(Frames {
        data,
        t: idx.len(),
        height: height as usize,
        width: width as usize,
        decoded: idx.len(),
    })
}

impl SampleSource for EpicClips {
    fn len(&self) -> usize {
        self.narrations.len() * self.cfg.views_per_video()
    }

    fn clips_per_sample(&self) -> usize {
        self.cfg.clips_per_decode
    }

    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        let k = self.cfg.clips_per_decode.max(1);
        let (narration, view) = match k {
            1 => {
                let views = self.cfg.views_per_video();
                (index / views, index % views)
            }
            _ => (index, 0),
        };
        let n = &self.narrations[narration];
        let t0 = std::time::Instant::now();
        let clips = self.read(n, &vec![view; k], rng).map_err(|e| SampleError {
            kind: e.kind(),
            what: format!("narration {}: {e}", n.id),
        })?;
        let decode_seconds = t0.elapsed().as_secs_f64();
        let mut inputs = Vec::with_capacity(k);
        for frames in &clips {
            // (T, H, W, 3) uint8 -> (3, T, S, S) float.
            let out = transform_clip(
                &frames.to_tensor(),
                &self.cfg.clip,
                self.cfg.clip_view(view),
                rng,
            )
            .map_err(|e| SampleError {
                kind: "augmentation",
                what: format!("narration {} ({}): {e}", n.id, n.media.path().display()),
            })?;
            inputs.push(out.clip);
        }
        let label = Tensor::from_slice(&[n.verb, n.noun]);
        let (input, label) = match k {
            1 => (inputs.remove(0), label),
            // k x (3, T, S, S) -> (k, 3, T, S, S); (2) -> (k, 2).
            _ => (
                Tensor::stack(&inputs, 0),
                label.unsqueeze(0).repeat([k as i64, 1]),
            ),
        };
        Ok(Sample {
            input,
            label,
            source: narration,
            view,
            decode_seconds,
        })
    }
}
