//! Still images as MoSI samples for the loader: each image becomes one clip per speed class
//! (`(K, 3, T, S, S)`) with its labels, generated on the worker threads.
//!
//! Image files are read through [`read_image`]: only regular files, at most
//! [`MAX_IMAGE_BYTES`], so a FIFO or a link to `/dev/zero` named `.jpg` is a skipped sample, not
//! a hang (`tada data check` uses the same reader).

use std::path::{Path, PathBuf};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tada_augment::mosi::{Labels, MosiGenerator, Split as MosiSplit};
use tch::Tensor;

use crate::data::dataset::{Entry, Split};
use crate::data::loader::{Sample, SampleError, SampleSource};
use crate::data::media_file::{read_bounded, MediaFileError, MAX_IMAGE_BYTES};
use crate::data::sources::synthetic_images::synthetic_image;
use crate::data::video::{read_with, DecodeError, Resize};

/// Why an image file could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    File(#[from] MediaFileError),
    #[error("{}: empty file", path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a readable image ({reason})", path.display())]
    Undecodable { path: PathBuf, reason: String },
}

impl ImageError {
    /// A short kind for summaries, as [`DecodeError::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File(MediaFileError::Missing { .. }) => "missing",
            Self::File(MediaFileError::NotRegular { .. }) => "not a regular file",
            Self::File(MediaFileError::TooLarge { .. }) => "too large",
            Self::File(MediaFileError::Io { .. }) => "unreadable",
            Self::Empty { .. } => "empty",
            Self::Undecodable { .. } => "undecodable",
        }
    }
}

/// Reads and decodes the image file `path` (JPEG, PNG, …) to RGB.
pub fn read_image(path: &Path) -> Result<image::RgbImage, ImageError> {
    let bytes = read_bounded(path, MAX_IMAGE_BYTES)?;
    if bytes.is_empty() {
        return Err(ImageError::Empty {
            path: path.to_path_buf(),
        });
    }
    image::load_from_memory(&bytes)
        .map(|i| i.to_rgb8())
        .map_err(|e| ImageError::Undecodable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Where the images come from.
#[derive(Debug, Clone)]
pub enum ImageOrigin {
    /// Image files (an image list or folder dataset).
    Files(Vec<Entry>),
    /// One frame of each video (a video dataset's entries), drawn uniformly from the whole
    /// video every time the sample is read, as the reference's MoSI does on UCF101 / HMDB51.
    VideoFrames(Vec<Entry>),
    /// tada's embedded synthetic images: `count` pictures of `height x width` from `seed`.
    Synthetic {
        count: usize,
        seed: u64,
        height: usize,
        width: usize,
    },
}

/// MoSI pretraining samples over a set of images.
pub struct MosiImages {
    origin: ImageOrigin,
    generator: MosiGenerator,
    split: MosiSplit,
    /// Joint labels `(K)` or [move_x, move_y] rows `(K, 2)`, flattened; the same for every
    /// image. Kept as numbers because a `Tensor` cannot be shared between worker threads.
    labels: Vec<i64>,
    label_shape: Vec<i64>,
}

impl MosiImages {
    pub fn new(origin: ImageOrigin, generator: MosiGenerator, split: Split) -> Self {
        let (labels, label_shape) = match &generator.speed_set().labels {
            Labels::Joint { move_joint } => (move_joint.clone(), vec![move_joint.len() as i64]),
            Labels::Separate { move_x, move_y } => (
                move_x
                    .iter()
                    .zip(move_y)
                    .flat_map(|(x, y)| [*x, *y])
                    .collect(),
                vec![move_x.len() as i64, 2],
            ),
        };
        let split = match split {
            Split::Train => MosiSplit::Train,
            Split::Val | Split::Test => MosiSplit::Test,
        };
        Self {
            origin,
            generator,
            split,
            labels,
            label_shape,
        }
    }

    pub fn generator(&self) -> &MosiGenerator {
        &self.generator
    }

    /// The still image of sample `index` as `(H, W, 3)` uint8, the generator's input. A video's
    /// frame is the first draw from `rng`, before the generator's own.
    fn image(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Tensor, SampleError> {
        let decode_error = |e: DecodeError| SampleError {
            kind: e.kind(),
            what: e.to_string(),
        };
        match &self.origin {
            ImageOrigin::Files(entries) => {
                let img = read_image(&entries[index].path).map_err(|e| SampleError {
                    kind: e.kind(),
                    what: e.to_string(),
                })?;
                let (w, h) = (img.width() as i64, img.height() as i64);
                // (H, W, 3) uint8, as the generator takes it.
                Ok(Tensor::from_slice(img.as_raw()).view([h, w, 3]))
            }
            ImageOrigin::VideoFrames(entries) => {
                let path = &entries[index].path;
                let frames = read_with(path, Resize::None, |info| {
                    if info.frames == 0 {
                        return Err(DecodeError::TooFewFrames {
                            path: path.clone(),
                            frames: 0,
                            needed: 1,
                        });
                    }
                    Ok(vec![rng.random_range(0..info.frames)])
                })
                .map_err(decode_error)?;
                // (1, H, W, 3) -> (H, W, 3)
                Ok(frames.to_tensor().squeeze_dim(0))
            }
            ImageOrigin::Synthetic {
                seed,
                height,
                width,
                ..
            } => Ok(synthetic_image(*seed, index as u64, *height, *width)),
        }
    }
}

impl SampleSource for MosiImages {
    fn len(&self) -> usize {
        match &self.origin {
            ImageOrigin::Files(e) | ImageOrigin::VideoFrames(e) => e.len(),
            ImageOrigin::Synthetic { count, .. } => *count,
        }
    }

    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        let t0 = std::time::Instant::now();
        let image = self.image(index, rng)?;
        let decode_seconds = t0.elapsed().as_secs_f64();
        let s = self
            .generator
            .generate(&image, self.split, rng)
            .map_err(|e| SampleError {
                kind: "bad image",
                what: match &self.origin {
                    ImageOrigin::Files(entries) | ImageOrigin::VideoFrames(entries) => {
                        format!("{}: {e}", entries[index].path.display())
                    }
                    ImageOrigin::Synthetic { .. } => format!("synthetic image {index}: {e}"),
                },
            })?;
        Ok(Sample {
            input: s.clips,
            label: Tensor::from_slice(&self.labels).view(self.label_shape.as_slice()),
            source: index,
            view: 0,
            decode_seconds,
        })
    }
}
