//! Video sources: container files decoded through FFmpeg (feature `video`, on by default) and
//! folders of per-frame images. Both give uint8 RGB `(T, H, W, 3)` frames for the indices a clip
//! needs, which is what the clip transforms of `tada-augment` take.

mod error;
#[cfg(feature = "video")]
mod ffmpeg;
pub(crate) mod frame_dir;
mod frames;

use std::path::Path;

pub use error::DecodeError;
pub use frame_dir::FrameDir;
pub use frames::Frames;

/// What a source knows about its video before decoding any frame.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Number of frames (from the container; estimated from duration x rate when it has none).
    pub frames: usize,
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    /// Codec name, or the image format of a frame folder.
    pub codec: String,
}

/// Resizing done while decoding, before any augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resize {
    #[default]
    None,
    /// Scale so that the short side has this many pixels (long side truncated, as the
    /// reference's short-side rule).
    ShortSide(u32),
}

impl Resize {
    /// Output (height, width) for an input of (height, width).
    pub fn apply(self, height: u32, width: u32) -> (u32, u32) {
        match self {
            Resize::None => (height, width),
            Resize::ShortSide(s) => {
                let (h, w) = tada_augment::transforms::spatial::short_side_size(
                    height as i64,
                    width as i64,
                    s as i64,
                );
                (h.max(1) as u32, w.max(1) as u32)
            }
        }
    }
}

/// Is `path` something the frame-folder reader handles (a directory)?
fn is_frame_dir(path: &Path) -> bool {
    path.is_dir()
}

/// Facts about the video at `path` (a file, or a folder of frame images).
pub fn probe(path: &Path) -> Result<VideoInfo, DecodeError> {
    if is_frame_dir(path) {
        return FrameDir::open(path).map(|d| d.info().clone());
    }
    check_file(path)?;
    probe_file(path)
}

/// Frames `indices` (in that order; repeats allowed) of the video at `path`.
pub fn read_frames(path: &Path, indices: &[usize], resize: Resize) -> Result<Frames, DecodeError> {
    read_with(path, resize, |_| Ok(indices.to_vec()))
}

/// Opens the video once, asks `choose` which frames to take given its [`VideoInfo`] (frame
/// count and rate decide a clip's indices), and decodes those.
pub fn read_with(
    path: &Path,
    resize: Resize,
    choose: impl FnOnce(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    if is_frame_dir(path) {
        let dir = FrameDir::open(path)?;
        let indices = choose(dir.info())?;
        return dir.read(&indices, resize);
    }
    check_file(path)?;
    read_file(path, resize, choose)
}

/// Missing and empty files get their own errors, before FFmpeg gives a vaguer one.
fn check_file(path: &Path) -> Result<(), DecodeError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DecodeError::Missing {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(DecodeError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        Ok(m) if m.len() == 0 => Err(DecodeError::Empty {
            path: path.to_path_buf(),
        }),
        Ok(_) => Ok(()),
    }
}

#[cfg(feature = "video")]
fn probe_file(path: &Path) -> Result<VideoInfo, DecodeError> {
    ffmpeg::probe(path)
}

#[cfg(feature = "video")]
fn read_file(
    path: &Path,
    resize: Resize,
    choose: impl FnOnce(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    ffmpeg::read_with(path, resize, choose)
}

#[cfg(not(feature = "video"))]
fn probe_file(path: &Path) -> Result<VideoInfo, DecodeError> {
    Err(DecodeError::NoVideoSupport {
        path: path.to_path_buf(),
    })
}

#[cfg(not(feature = "video"))]
fn read_file(
    path: &Path,
    _: Resize,
    _: impl FnOnce(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    Err(DecodeError::NoVideoSupport {
        path: path.to_path_buf(),
    })
}
