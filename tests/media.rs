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

/// Runs the ffmpeg CLI quietly with `args`; returns its stdout.
pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
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
    out.stdout
}

/// A `frames`-frame, 25 fps, `width x height` video at `path`, key frame every 10 frames; frame
/// `n` has luma `16 + 4n` (keep `frames` <= 55) over a test pattern's chroma.
pub fn make_video(path: &Path, kind: Kind, frames: usize, width: usize, height: usize) -> PathBuf {
    make_video_with(path, kind, frames, (width, height), "", &[])
}

/// [`make_video`] with `filter` appended to the video filter chain (e.g. `,setpts=...`) and
/// `out_args` before the output (e.g. `-f h264`). An output of `pipe:1` is written to `path`
/// through the CLI's stdout, as a pipe leaves it (no duration, no index).
pub fn make_video_with(
    path: &Path,
    kind: Kind,
    frames: usize,
    (width, height): (usize, usize),
    filter: &str,
    out_args: &[&str],
) -> PathBuf {
    tada::data::video::index::set_cache_dir(index_dir());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let src = format!(
        "testsrc=size={width}x{height}:rate=25:duration={}",
        frames as f64 / 25.0
    );
    let vf = format!("geq=lum='16+4*N':cb=128:cr=128{filter}");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-vf", &vf, "-g", "10"];
    args.extend_from_slice(kind.codec_args());
    args.extend_from_slice(out_args);
    let p = path.to_string_lossy().into_owned();
    if out_args.contains(&"pipe:1") {
        let bytes = ffmpeg(&args);
        std::fs::write(path, bytes).unwrap();
    } else {
        args.push(&p);
        ffmpeg(&args);
    }
    path.to_path_buf()
}

/// `src` copied into `dst` without re-encoding (`-c copy`), with `args` (e.g.
/// `-output_ts_offset 100`) before the output.
pub fn remux(src: &Path, dst: &Path, in_args: &[&str], args: &[&str]) -> PathBuf {
    let (s, d) = (src.to_string_lossy(), dst.to_string_lossy());
    let mut all: Vec<&str> = in_args.to_vec();
    all.extend_from_slice(&["-i", &s, "-c", "copy"]);
    all.extend_from_slice(args);
    all.push(&d);
    ffmpeg(&all);
    dst.to_path_buf()
}

/// Every frame of `path` as the ffmpeg CLI decodes it to RGB24, one `Vec` per frame, in
/// presentation order (passed through: a variable-rate file is not resampled to a fixed rate).
pub fn cli_frames(path: &Path, width: usize, height: usize) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-fps_mode", "passthrough", "-pix_fmt", "rgb24"])
        .args(["-f", "rawvideo", "-"])
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

/// Where the tests keep the key-frame indices of their videos (tada and the `tada` binary they
/// run), so that the user's cache folder never fills with indices of deleted temporary videos.
pub fn index_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tada-test-index-{}", std::process::id()))
}
