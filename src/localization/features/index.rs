//! Which windows a localisation split has, as the reference's EPIC-Kitchens feature dataset
//! (`Epickitchen100localization`) lists them: every video of the length file is cut into
//! windows of TEMPORAL_SCALE positions, one position every two feature rows, starting every
//! DURATION_SCALE positions; training keeps the windows that hold at least one whole annotated
//! segment, testing every window of an annotated video.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::data::dataset::DatasetError;

use super::FeatureError;

/// Seconds of video per feature clip file.
pub const CLIP_SECONDS: i64 = 5;
/// Seconds between feature rows: the reference's constant (8 frames at 60 fps).
pub const FEATURE_STRIDE: f64 = 0.133_333_33;
/// Feature rows per window position.
pub const STRIDE_RATIO: f64 = 2.0;
/// A video's last window must start this many seconds before its end.
const MIN_TAIL: f32 = 0.2;
/// A feature clip shorter than this is not listed.
const MIN_CLIP_SECONDS: f64 = 0.2;

/// One annotated action segment (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub verb: i64,
    pub noun: i64,
}

/// One video of the length file.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub name: String,
    pub duration: f64,
}

/// One sliding window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Index into [`FeatureIndex::videos`].
    pub video: usize,
    /// Seconds; float32 values as the reference computes them with `torch.arange`.
    pub start: f64,
    pub end: f64,
    /// Training: the segments wholly inside, in seconds from the window's start.
    pub segments: Vec<Segment>,
}

/// A feature clip file: its name stem and the seconds it spans.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipFile {
    /// `<video>_<start_ms>_<end_ms>`.
    pub stem: String,
    pub start: f64,
    pub end: f64,
}

/// Window geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// DATA.TEMPORAL_SCALE.
    pub tscale: usize,
    /// DATA.DURATION_SCALE (already resolved: below 1 means TEMPORAL_SCALE).
    pub dscale: usize,
}

impl Grid {
    /// Seconds per window position.
    pub fn position_seconds() -> f64 {
        STRIDE_RATIO * FEATURE_STRIDE
    }

    /// Window starts (float32, as `torch.arange(0, duration, D · stride)`) and ends.
    pub fn windows(&self, duration: f64) -> Vec<(f64, f64)> {
        let step = self.dscale as f64 * Self::position_seconds();
        let len = (self.tscale as f64 * Self::position_seconds()) as f32;
        let count = (duration / step).ceil().max(0.0) as usize;
        let mut starts: Vec<f32> = (0..count).map(|i| (i as f64 * step) as f32).collect();
        if starts
            .last()
            .is_some_and(|&s| (duration as f32 - s) < MIN_TAIL)
        {
            starts.pop();
        }
        starts
            .into_iter()
            .map(|s| (f64::from(s), f64::from(s + len)))
            .collect()
    }
}

/// A split's videos, windows and feature clips.
#[derive(Debug, Clone)]
pub struct FeatureIndex {
    /// Every video of the length file, in its order.
    pub videos: Vec<Video>,
    pub windows: Vec<Window>,
    /// Each video's clip files by start time (one per whole start second, the last listed
    /// winning, as the reference's dict).
    pub clips: HashMap<String, Vec<ClipFile>>,
    /// Each video's annotated segments (seconds), by video index.
    pub segments: HashMap<usize, Vec<Segment>>,
}

/// The files one split reads.
#[derive(Debug, Clone)]
pub struct IndexFiles {
    /// The published narration list (EPIC_100_train.csv or EPIC_100_validation.csv).
    pub annotations: PathBuf,
    pub lengths: PathBuf,
    pub clips: PathBuf,
}

impl FeatureIndex {
    /// Reads a split. `training` keeps only windows holding a whole segment, with their
    /// segments; otherwise every window of an annotated video, without.
    pub fn read(files: &IndexFiles, grid: Grid, training: bool) -> Result<Self, FeatureError> {
        let videos = read_lengths(&files.lengths)?;
        let by_name: HashMap<&str, usize> = videos
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.as_str(), i))
            .collect();
        let mut segments: HashMap<usize, Vec<Segment>> = HashMap::new();
        for (video, seg) in read_segments(&files.annotations)? {
            // Videos missing from the length file have no windows, as in the reference.
            if let Some(&i) = by_name.get(video.as_str()) {
                segments.entry(i).or_default().push(seg);
            }
        }
        let mut windows = Vec::new();
        for (i, v) in videos.iter().enumerate() {
            let Some(segs) = segments.get(&i) else {
                continue;
            };
            for (start, end) in grid.windows(v.duration) {
                let inside: Vec<Segment> = segs
                    .iter()
                    .filter(|s| share_inside(s, start, end) > 0.999)
                    .map(|s| Segment {
                        start: s.start - start,
                        end: s.end - start,
                        ..*s
                    })
                    .collect();
                if training && inside.is_empty() {
                    continue;
                }
                windows.push(Window {
                    video: i,
                    start,
                    end,
                    segments: if training { inside } else { Vec::new() },
                });
            }
        }
        Ok(Self {
            videos,
            windows,
            clips: read_clips(&files.clips)?,
            segments,
        })
    }

    /// Each video with windows and the range of its windows, in window order (the reference's
    /// `_video_name_duration`): windows are listed video by video.
    pub fn video_windows(&self) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut out: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (i, w) in self.windows.iter().enumerate() {
            match out.last_mut() {
                Some((v, range)) if *v == w.video => range.end = i + 1,
                _ => out.push((w.video, i..i + 1)),
            }
        }
        out
    }

    /// The clip files a window's features come from, in time order, and the seconds they span.
    ///
    /// The reference looks up the 5-second clips starting at multiples of 5 s from
    /// floor5(start) to before ceil5(end), and spans from floor5(start) to the last one's end;
    /// for such clips that is every clip overlapping [floor5(start), ceil5(end)). tada takes
    /// the overlap, so a list of longer clips (one file per video, as HACS-style features are
    /// kept) reads too, spanning from the first clip's start.
    pub fn clips_of(&self, w: &Window) -> (Vec<&ClipFile>, (f64, f64)) {
        let name = &self.videos[w.video].name;
        let first = ((w.start / CLIP_SECONDS as f64).floor() as i64 * CLIP_SECONDS) as f64;
        let last = ((w.end / CLIP_SECONDS as f64).ceil() as i64 * CLIP_SECONDS) as f64;
        let found: Vec<&ClipFile> = self
            .clips
            .get(name)
            .into_iter()
            .flatten()
            .filter(|c| c.start < last && c.end > first)
            .collect();
        let start = found.first().map_or(first, |c| c.start.min(first));
        let end = found.last().map_or(first, |c| c.end);
        (found, (start, end))
    }
}

/// The share of segment `s` inside [start, end] (the reference's `ioa_with_anchors`).
fn share_inside(s: &Segment, start: f64, end: f64) -> f64 {
    let inter = (s.end.min(end) - s.start.max(start)).max(0.0);
    inter / (s.end - s.start)
}

fn io_err(path: &Path, source: std::io::Error) -> FeatureError {
    FeatureError::Dataset(DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_err(path: &Path, line: usize, reason: String) -> FeatureError {
    FeatureError::Dataset(DatasetError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    })
}

/// `<video>.MP4,<seconds>` lines; the `.MP4` is dropped from the name.
fn read_lengths(path: &Path) -> Result<Vec<Video>, FeatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let mut out: Vec<Video> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, len) = line.split_once(',').ok_or_else(|| {
            parse_err(
                path,
                n + 1,
                format!("expected `<video>,<seconds>`, got `{line}`"),
            )
        })?;
        let duration: f64 = len.trim().parse().map_err(|_| {
            parse_err(
                path,
                n + 1,
                format!("`{}` is not a number of seconds", len.trim()),
            )
        })?;
        if !(duration.is_finite() && duration > 0.0) {
            return Err(parse_err(path, n + 1, format!("duration {duration} s")));
        }
        let name = name.trim().replace(".MP4", "");
        // A repeated name keeps its first place and its last length, as a Python dict.
        match out.iter_mut().find(|v| v.name == name) {
            Some(v) => v.duration = duration,
            None => out.push(Video { name, duration }),
        }
    }
    Ok(out)
}

/// `<video>,<start_ms>,<end_ms>` lines; clips shorter than 0.2 s are left out.
fn read_clips(path: &Path) -> Result<HashMap<String, Vec<ClipFile>>, FeatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    // (video, start second) -> clip, as the reference keys them.
    let mut keyed: HashMap<(String, i64), ClipFile> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [video, start, end] = fields[..] else {
            return Err(parse_err(
                path,
                n + 1,
                format!("expected `<video>,<start_ms>,<end_ms>`, got `{line}`"),
            ));
        };
        let ms = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| parse_err(path, n + 1, format!("`{s}` is not whole milliseconds")))
        };
        let (s, e) = (ms(start)?, ms(end)?);
        if ((e - s) as f64) / 1000.0 < MIN_CLIP_SECONDS {
            continue;
        }
        keyed.insert(
            (video.to_string(), s / 1000),
            ClipFile {
                stem: format!("{video}_{start}_{end}"),
                start: s as f64 / 1000.0,
                end: e as f64 / 1000.0,
            },
        );
    }
    let mut out: HashMap<String, Vec<ClipFile>> = HashMap::new();
    for ((video, _), clip) in keyed {
        out.entry(video).or_default().push(clip);
    }
    for clips in out.values_mut() {
        clips.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    Ok(out)
}

/// `HH:MM:SS.ss` or `MM:SS.ss` as seconds.
pub fn timestamp_seconds(s: &str) -> Option<f64> {
    let parts: Vec<f64> = s
        .trim()
        .split(':')
        .map(|p| p.parse::<f64>().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [m, s] => Some(m * 60.0 + s),
        [h, m, s] => Some(h * 3600.0 + m * 60.0 + s),
        _ => None,
    }
}

/// (video, segment) of every narration of a published EPIC-Kitchens-100 list; the label columns
/// are optional (the test timestamps have none: verb and noun are then 0).
pub fn read_segments(path: &Path) -> Result<Vec<(String, Segment)>, FeatureError> {
    let invalid = |reason: String| {
        FeatureError::Dataset(DatasetError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    };
    if !path.is_file() {
        return Err(FeatureError::Dataset(DatasetError::NotFound {
            dataset: "epickitchen100localization".into(),
            looked: path.display().to_string(),
        }));
    }
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| invalid(e.to_string()))?;
    let headers = r.headers().map_err(|e| invalid(e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let need = |name: &str| col(name).ok_or_else(|| invalid(format!("no `{name}` column")));
    let (video, start, stop) = (
        need("video_id")?,
        need("start_timestamp")?,
        need("stop_timestamp")?,
    );
    let labels = col("verb_class").zip(col("noun_class"));
    let mut out = Vec::new();
    for (n, rec) in r.records().enumerate() {
        let line = n + 2;
        let rec = rec.map_err(|e| invalid(e.to_string()))?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let field = |i: usize| rec.get(i).unwrap_or_default();
        let time = |i: usize| {
            timestamp_seconds(field(i))
                .ok_or_else(|| parse_err(path, line, format!("`{}` is not a timestamp", field(i))))
        };
        let class = |i: usize| {
            field(i)
                .parse::<i64>()
                .map_err(|_| parse_err(path, line, format!("`{}` is not a class", field(i))))
        };
        let (verb, noun) = match labels {
            Some((v, k)) => (class(v)?, class(k)?),
            None => (0, 0),
        };
        out.push((
            field(video).to_string(),
            Segment {
                start: time(start)?,
                end: time(stop)?,
                verb,
                noun,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_the_reference() {
        assert_eq!(timestamp_seconds("00:01:02.50"), Some(62.5));
        assert_eq!(timestamp_seconds("1:02.5"), Some(62.5));
        assert_eq!(timestamp_seconds("01:00:00.00"), Some(3600.0));
        assert_eq!(timestamp_seconds("12"), None);
    }

    /// bmn_epic's geometry: 53.3 s windows every 26.7 s; a tail shorter than 0.2 s opens no
    /// window.
    #[test]
    fn windows_overlap_by_half_and_skip_a_short_tail() {
        let g = Grid {
            tscale: 200,
            dscale: 100,
        };
        let w = g.windows(60.0);
        assert_eq!(w.len(), 3);
        assert!((w[1].0 - 26.666_666).abs() < 1e-5 && (w[1].1 - 80.0).abs() < 1e-4);
        // 53.3333 + 0.1: the third window would start 0.1 s before the end.
        assert_eq!(g.windows(53.433_332).len(), 2);
        assert_eq!(g.windows(53.6).len(), 3);
    }
}
