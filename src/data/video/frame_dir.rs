//! A folder of per-frame images (`img_00001.jpg`, … or any names that sort in frame order), the
//! layout many pre-extracted datasets ship. Frame `i` is the `i`-th image file in name order;
//! images are read only from regular files and with a size bound (`media_file.rs`).

use std::path::{Path, PathBuf};

use super::{DecodeError, Frames, Resize, VideoInfo};
use crate::data::media_file::{check_regular, read_bounded, MAX_IMAGE_BYTES};

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

/// Decodes one image file: only a regular file, read with a size bound (a FIFO named `.jpg`
/// would block the read forever, a link to `/dev/zero` would fill memory).
pub(crate) fn decode_image(path: &Path) -> Result<image::RgbImage, DecodeError> {
    let bytes = read_bounded(path, MAX_IMAGE_BYTES)?;
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

fn is_frame_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The folder's frame images in name order. An entry with an image name that is not a regular
/// file (a FIFO, a folder, a link to a device) fails the whole video: reading it would hang or
/// never end, and skipping it would shift every later frame.
fn list_frames(path: &Path) -> Result<Vec<PathBuf>, DecodeError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io(path, e))? {
        let entry = entry.map_err(|e| io(path, e))?;
        let p = entry.path();
        if !is_frame_name(&p) {
            continue;
        }
        // The entry's own type costs no system call; only links need following.
        let regular = match entry.file_type() {
            Ok(t) if t.is_file() => true,
            Ok(t) if t.is_symlink() => std::fs::metadata(&p).is_ok_and(|m| m.is_file()),
            _ => false,
        };
        if !regular {
            // The error says what the entry is instead (a FIFO, a folder, a missing target).
            check_regular(&p, None)?;
        }
        files.push(p);
    }
    files.sort();
    Ok(files)
}

impl FrameDir {
    /// Lists the folder's images and reads the first to learn the frame size.
    pub fn open(path: &Path) -> Result<Self, DecodeError> {
        let files = list_frames(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_named_as_a_frame_that_is_no_file_fails_the_folder() {
        let d = tempfile::tempdir().unwrap();
        image::RgbImage::new(4, 4)
            .save(d.path().join("img_00001.png"))
            .unwrap();
        std::fs::create_dir(d.path().join("img_00002.jpg")).unwrap();
        let e = FrameDir::open(d.path()).unwrap_err();
        assert_eq!(e.kind(), "not a regular file", "{e}");
        assert!(
            e.to_string().contains("img_00002.jpg: is a directory"),
            "{e}"
        );
        std::fs::remove_dir(d.path().join("img_00002.jpg")).unwrap();
        // A link to nothing: missing, named.
        std::os::unix::fs::symlink(d.path().join("gone.png"), d.path().join("img_00003.png"))
            .unwrap();
        let e = FrameDir::open(d.path()).unwrap_err();
        assert!(matches!(e, DecodeError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("img_00003.png"), "{e}");
        // Links to images are frames like files.
        std::fs::remove_file(d.path().join("img_00003.png")).unwrap();
        std::os::unix::fs::symlink(
            d.path().join("img_00001.png"),
            d.path().join("img_00004.png"),
        )
        .unwrap();
        assert_eq!(FrameDir::open(d.path()).unwrap().info().frames, 2);
    }
}
