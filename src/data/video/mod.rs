//! Video sources: container files decoded through FFmpeg (feature `video`, on by default) and
//! folders of per-frame images. Both give uint8 RGB `(T, H, W, 3)` frames for the indices a clip
//! needs, which is what the clip transforms of `tada-augment` take.

#[cfg(feature = "video")]
mod convert;
mod error;
#[cfg(feature = "video")]
mod ffmpeg;
pub(crate) mod frame_dir;
mod frames;
#[cfg(feature = "video")]
mod grid;
#[cfg(feature = "video")]
pub mod index;

use std::path::Path;

use crate::data::media_file::check_regular;

pub use error::DecodeError;

pub use frame_dir::FrameDir;
pub use frames::Frames;

/// What a source knows about its video before decoding any frame.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Number of frames: the container's count (or duration x rate) while decoding agrees with
    /// it, otherwise the frames counted by decoding the file (see `ffmpeg.rs`).
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

/// Facts about the video at `path` (a file, or a folder of frame images). For a file the frame
/// count is the one a clip is chosen from: its last frame is decoded, and a count the container
/// got wrong is replaced by the frames counted.
pub fn probe(path: &Path) -> Result<VideoInfo, DecodeError> {
    if is_frame_dir(path) {
        return FrameDir::open(path).map(|d| d.info().clone());
    }
    let mut last = None;
    read_with(path, Resize::ShortSide(8), |info| {
        last = Some(info.clone());
        Ok(info.frames.checked_sub(1).into_iter().collect())
    })?;
    last.ok_or_else(|| DecodeError::Undecodable {
        path: path.to_path_buf(),
        reason: "no frame count".into(),
    })
}

/// Several clips of the video at `path` from one decode: `choose` gives every clip's frame
/// indices from the video's [`VideoInfo`], and the distinct frames of all of them are decoded
/// once, in one pass (seeking past key frames between clips, `ffmpeg.rs`). Each clip is
/// byte-identical to what [`read_with`] gives for its indices alone. The frames decoded are
/// counted on the first clip (`Frames::decoded`), 0 on the others.
pub fn read_clips_with(
    path: &Path,
    resize: Resize,
    mut choose: impl FnMut(&VideoInfo) -> Result<Vec<Vec<usize>>, DecodeError>,
) -> Result<Vec<Frames>, DecodeError> {
    let mut lens = Vec::new();
    let all = read_with(path, resize, |info| {
        let clips = choose(info)?;
        lens = clips.iter().map(Vec::len).collect();
        Ok(clips.concat())
    })?;
    Ok(all.split(&lens))
}

/// Frames `indices` (in that order; repeats allowed) of the video at `path`.
pub fn read_frames(path: &Path, indices: &[usize], resize: Resize) -> Result<Frames, DecodeError> {
    read_with(path, resize, |_| Ok(indices.to_vec()))
}

/// Opens the video, asks `choose` which frames to take given its [`VideoInfo`] (frame count and
/// rate decide a clip's indices), and decodes those. Frame `i` is the `i`-th frame in
/// presentation order. `choose` is asked again, with the counted frames, when decoding shows
/// that the container's frame count was wrong.
pub fn read_with(
    path: &Path,
    resize: Resize,
    mut choose: impl FnMut(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    if is_frame_dir(path) {
        let dir = FrameDir::open(path)?;
        let indices = choose(dir.info())?;
        return dir.read(&indices, resize);
    }
    check_file(path)?;
    read_file(path, resize, choose)
}

/// Refuses what FFmpeg must not open: a missing or empty file gets its own error before FFmpeg
/// gives a vaguer one, and anything but a regular file (a FIFO would block the open forever, a
/// device would stream endlessly) is refused without opening it for long.
fn check_file(path: &Path) -> Result<(), DecodeError> {
    match check_regular(path, None)? {
        0 => Err(DecodeError::Empty {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

#[cfg(feature = "video")]
fn read_file(
    path: &Path,
    resize: Resize,
    choose: impl FnMut(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    ffmpeg::read_with(path, resize, choose)
}

#[cfg(not(feature = "video"))]
fn read_file(
    path: &Path,
    _: Resize,
    _: impl FnMut(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    Err(DecodeError::NoVideoSupport {
        path: path.to_path_buf(),
    })
}

/// Finds (in the cache) or builds the key-frame index of the video file at `path`
/// (`index.rs`); `None` for a frame folder, whose frames are files of their own.
#[cfg(feature = "video")]
pub fn index_keyframes(path: &Path) -> Result<Option<index::Found>, DecodeError> {
    if is_frame_dir(path) {
        return Ok(None);
    }
    check_file(path)?;
    ffmpeg::index_keyframes(path).map(|(_, found)| Some(found))
}
