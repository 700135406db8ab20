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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::data::dataset::Split;
    use rand::SeedableRng;

    /// Frames 1..=40 of one video, each a grey level of 6 x its number (JPEG keeps it to ±2).
    fn frames(dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        for n in 1..=40usize {
            let v = (6 * n) as u8;
            image::RgbImage::from_pixel(8, 8, image::Rgb([v; 3]))
                .save(frame_file(dir, n))
                .unwrap();
        }
    }

    fn narration(dir: &std::path::Path, start: usize, stop: usize) -> Narration {
        Narration {
            id: "P01_01_7".into(),
            video_id: "P01_01".into(),
            start_frame: start,
            stop_frame: stop,
            verb: 2,
            noun: 5,
            media: Media::Frames(dir.to_path_buf()),
        }
    }

    fn clips(n: Narration, split: Split, views: u32) -> EpicClips {
        let mut cfg = Config::default();
        cfg.data.num_input_frames = 4;
        cfg.data.sampling_rate = 2;
        cfg.data.target_fps = 60.0;
        cfg.test.num_ensemble_views = views;
        let c = ClipSourceConfig::from_config(&cfg, split).unwrap();
        EpicClips::new(vec![n], c, cfg.data.target_fps)
    }

    /// The frame numbers a clip read, from the grey levels.
    fn numbers(f: &Frames) -> Vec<usize> {
        (0..f.t)
            .map(|i| ((f.data[i * f.frame_len()] as f64) / 6.0).round() as usize)
            .collect()
    }

    /// Clips come from the segment's own frames only, NUM_INPUT_FRAMES over a span of
    /// NUM_INPUT_FRAMES x SAMPLING_RATE frames at TARGET_FPS (the reference's truncated
    /// linspace); test views spread over the segment in order.
    #[test]
    fn clips_are_sampled_inside_the_segment() {
        let d = tempfile::tempdir().unwrap();
        frames(d.path());
        let train = clips(narration(d.path(), 11, 30), Split::Train, 1);
        let mut starts = std::collections::BTreeSet::new();
        for seed in 0..24 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = numbers(&train.read(&train.narrations[0], &[0], &mut rng).unwrap()[0]);
            assert_eq!(n.len(), 4);
            assert!(
                n.iter().all(|&f| (11..=30).contains(&f)),
                "seed {seed}: {n:?}"
            );
            assert!(
                n.windows(2).all(|w| w[1] > w[0]) && n[3] - n[0] == 7,
                "seed {seed}: {n:?}"
            );
            starts.insert(n[0]);
        }
        assert!(
            starts.len() > 3,
            "training clips start anywhere: {starts:?}"
        );
        let test = clips(narration(d.path(), 11, 30), Split::Test, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let views = test.read(&test.narrations[0], &[0, 1], &mut rng).unwrap();
        let (a, b) = (numbers(&views[0]), numbers(&views[1]));
        assert!(a[0] >= 11 && b[3] <= 30 && a[0] < b[0], "{a:?} {b:?}");
        // A segment shorter than a clip repeats its last frame rather than leaving it.
        let short = clips(narration(d.path(), 5, 7), Split::Test, 1);
        let n = numbers(&short.read(&short.narrations[0], &[0], &mut rng).unwrap()[0]);
        assert!(n.iter().all(|&f| (5..=7).contains(&f)), "{n:?}");
        // The sample: a normalised clip and its [verb, noun].
        let s = test.get(1, &mut rng).unwrap();
        assert_eq!(s.input.size()[..2], [3, 4]);
        assert_eq!(Vec::<i64>::try_from(&s.label).unwrap(), [2, 5]);
        assert_eq!((s.source, s.view), (0, 1));
    }

    /// A frame missing inside the segment fails the sample naming the narration and the file.
    #[test]
    fn a_missing_frame_is_named() {
        let d = tempfile::tempdir().unwrap();
        frames(d.path());
        // The middle of the segment: every clip of 8 frames' span reaches into it.
        for n in 17..=24 {
            std::fs::remove_file(frame_file(d.path(), n)).unwrap();
        }
        let c = clips(narration(d.path(), 11, 30), Split::Test, 1);
        let e = c.get(0, &mut ChaCha8Rng::seed_from_u64(0)).unwrap_err();
        assert_eq!(e.kind, "missing");
        assert!(
            e.what.starts_with("narration P01_01_7: ")
                && e.what.contains("/frame_00000000")
                && e.what.ends_with(".jpg: missing"),
            "{}",
            e.what
        );
    }
}
