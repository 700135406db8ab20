//! A folder of per-frame images (`img_00001.jpg`, … or any names that sort in frame order), the
//! layout many pre-extracted datasets ship. Frame `i` is the `i`-th file in name order.

use std::path::{Path, PathBuf};

use super::{DecodeError, Frames, Resize, VideoInfo};

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Frame rate assumed for folders, which carry none; equal to the reference's default
/// DATA.TARGET_FPS, so interval sampling takes every SAMPLING_RATE-th file.
pub const FRAME_DIR_FPS: f64 = 30.0;

#[derive(Debug, Clone)]
pub struct FrameDir {
    path: PathBuf,
    files: Vec<PathBuf>,
    info: VideoInfo,
}

fn io(path: &Path, e: std::io::Error) -> DecodeError {
    DecodeError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

pub(crate) fn decode_image(path: &Path) -> Result<image::RgbImage, DecodeError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    if bytes.is_empty() {
        return Err(DecodeError::Empty {
            path: path.to_path_buf(),
        });
    }
    image::load_from_memory(&bytes)
        .map(|i| i.to_rgb8())
        .map_err(|e| DecodeError::Undecodable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

impl FrameDir {
    /// Lists the folder's images and reads the first to learn the frame size.
    pub fn open(path: &Path) -> Result<Self, DecodeError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        let Some(first) = files.first() else {
            return Err(DecodeError::TooFewFrames {
                path: path.to_path_buf(),
                frames: 0,
                needed: 1,
            });
        };
        let img = decode_image(first)?;
        let codec = first
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let info = VideoInfo {
            frames: files.len(),
            fps: FRAME_DIR_FPS,
            width: img.width(),
            height: img.height(),
            codec,
        };
        Ok(Self {
            path: path.to_path_buf(),
            files,
            info,
        })
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Frames `indices` (in that order), resized with the same bilinear rule as video decoding.
    pub fn read(&self, indices: &[usize], resize: Resize) -> Result<Frames, DecodeError> {
        let (out_h, out_w) = resize.apply(self.info.height, self.info.width);
        let mut data = Vec::with_capacity(indices.len() * (out_h * out_w * 3) as usize);
        for &i in indices {
            let file = self.files.get(i).ok_or_else(|| DecodeError::Truncated {
                path: self.path.clone(),
                wanted: i,
                decoded: self.files.len(),
            })?;
            let img = decode_image(file)?;
            if (img.width(), img.height()) != (self.info.width, self.info.height) {
                return Err(DecodeError::MixedFrameSizes {
                    path: self.path.clone(),
                    first: format!("{}x{}", self.info.width, self.info.height),
                    other: format!("{}x{}", img.width(), img.height()),
                    name: file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                });
            }
            let img = if (out_h, out_w) == (img.height(), img.width()) {
                img
            } else {
                image::imageops::resize(&img, out_w, out_h, image::imageops::FilterType::Triangle)
            };
            data.extend_from_slice(img.as_raw());
        }
        Ok(Frames {
            data,
            t: indices.len(),
            height: out_h as usize,
            width: out_w as usize,
            decoded: indices.len(),
        })
    }
}
