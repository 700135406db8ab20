//! Small real videos for the data tests, made with the `ffmpeg` command-line tool (installed by
//! scripts/setup.sh). Frame `n` carries its number: its luma is `16 + 4n`, so decoded content
//! can be checked against what was encoded.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A container and codec the toolkit must read.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// H.264 in mp4, with B-frames.
    Mp4,
    /// MPEG-4 part 2 in avi, as UCF101 / HMDB51 ship.
    Avi,
    /// VP9 in webm, as SSv2 ships.
    Webm,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Mp4, Kind::Avi, Kind::Webm];

    pub fn ext(self) -> &'static str {
        match self {
            Kind::Mp4 => "mp4",
            Kind::Avi => "avi",
            Kind::Webm => "webm",
        }
    }

    fn codec_args(self) -> &'static [&'static str] {
        match self {
            Kind::Mp4 => &["-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p"],
            Kind::Avi => &["-c:v", "mpeg4", "-qscale:v", "3"],
            Kind::Webm => &[
                "-c:v",
                "libvpx-vp9",
                "-b:v",
                "300k",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ],
        }
    }
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI is installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `frames`-frame, 25 fps, `width x height` video at `path`, key frame every 10 frames; frame
/// `n` has luma `16 + 4n` (keep `frames` <= 55) over a test pattern's chroma.
pub fn make_video(path: &Path, kind: Kind, frames: usize, width: usize, height: usize) -> PathBuf {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let src = format!(
        "testsrc=size={width}x{height}:rate=25:duration={}",
        frames as f64 / 25.0
    );
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        &src,
        "-vf",
        "geq=lum='16+4*N':cb=128:cr=128",
        "-g",
        "10",
    ];
    args.extend_from_slice(kind.codec_args());
    let p = path.to_string_lossy().into_owned();
    args.push(&p);
    ffmpeg(&args);
    path.to_path_buf()
}

/// Every frame of `path` as the ffmpeg CLI decodes it to RGB24, one `Vec` per frame.
pub fn cli_frames(path: &Path, width: usize, height: usize) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks(width * height * 3)
        .map(|c| c.to_vec())
        .collect()
}

/// Mean byte value of a frame (tracks the encoded frame number: ~4.66 per frame).
pub fn mean(frame: &[u8]) -> f64 {
    frame.iter().map(|&b| b as f64).sum::<f64>() / frame.len() as f64
}
