//! Where feature rows sit in time and which 5-second clip file holds each: the layout the
//! reference's EPIC-Kitchens feature dataset reads (its feature zoo), and tada's localisation
//! reader with it (docs/extract-features.md).
//!
//! Row `k` is centred at `c_k = (k·I + I − 1) / FPS` seconds (I = DATA.CLIP_INTERVAL frames,
//! FPS = DATA.TARGET_FPS). Clip `m` spans `[5m, min(5m + 5, duration)]` and holds, in order,
//! the rows whose centre lies in that closed span; a clip shorter than
//! [`MIN_CLIP_SECONDS`] is not written (the reader skips it).

/// Length of a clip file's span, in seconds.
pub const CLIP_SECONDS: f64 = 5.0;

/// Clips shorter than this are not written: the reference's reader drops them.
pub const MIN_CLIP_SECONDS: f64 = 0.2;

/// The list of written clips, one `<video>,<start_ms>,<end_ms>` line each.
pub const CLIPS_LIST: &str = "5s_clips.txt";

/// The video durations, one `<video>.MP4,<seconds>` line each.
pub const LENGTHS_LIST: &str = "epic_videos_len.txt";

/// What made the features.
pub const METADATA: &str = "features.json";

/// Folder of the per-clip classifier logits.
pub const CLS_DIR: &str = "cls";

/// The sliding rows of a video: where row `k` is centred.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowGrid {
    /// DATA.CLIP_INTERVAL: frames at `target_fps` between two rows.
    pub interval: usize,
    /// DATA.TARGET_FPS.
    pub target_fps: f64,
}

impl RowGrid {
    /// Centre of row `k`, in seconds.
    pub fn centre(&self, k: usize) -> f64 {
        (k * self.interval + self.interval - 1) as f64 / self.target_fps
    }

    /// Centre of row `k` in frames at `target_fps` (`centre(k) · target_fps`).
    pub fn centre_frames(&self, k: usize) -> usize {
        k * self.interval + self.interval - 1
    }

    /// Number of rows of a video of `duration` seconds: those centred at or before its end.
    pub fn rows(&self, duration: f64) -> usize {
        let mut n = 0;
        while self.centre(n) <= duration {
            n += 1;
        }
        n
    }
}

/// One clip file of a video: its span and its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpan {
    pub start_ms: u64,
    pub end_ms: u64,
    /// First row (global index `k`) and number of rows.
    pub first_row: usize,
    pub rows: usize,
}

impl ClipSpan {
    /// `<video>_<start_ms>_<end_ms>`, the file stem.
    pub fn stem(&self, video: &str) -> String {
        format!("{video}_{}_{}", self.start_ms, self.end_ms)
    }
}

/// The clip files of a video of `duration` seconds, in time order.
pub fn clip_spans(grid: &RowGrid, duration: f64) -> Vec<ClipSpan> {
    let rows = grid.rows(duration);
    let mut spans = Vec::new();
    let mut m = 0u64;
    while (m as f64) * CLIP_SECONDS < duration {
        let start = m as f64 * CLIP_SECONDS;
        let end = (start + CLIP_SECONDS).min(duration);
        m += 1;
        if end - start < MIN_CLIP_SECONDS {
            continue;
        }
        let inside: Vec<usize> = (0..rows)
            .filter(|&k| (start..=end).contains(&grid.centre(k)))
            .collect();
        spans.push(ClipSpan {
            start_ms: (start * 1000.0).round() as u64,
            end_ms: (end * 1000.0).round() as u64,
            first_row: inside.first().copied().unwrap_or(0),
            rows: inside.len(),
        });
    }
    spans
}

/// A video's lines in the two list files.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoRecord {
    pub name: String,
    pub duration: f64,
    /// `(start_ms, end_ms)` of its written clips, in time order.
    pub clips: Vec<(u64, u64)>,
}

/// The `epic_videos_len.txt` line of a video (the reference strips `.MP4` from the name,
/// whatever the file's own extension).
pub fn length_line(r: &VideoRecord) -> String {
    format!("{}.MP4,{}", r.name, r.duration)
}

/// The `5s_clips.txt` lines of a video.
pub fn clip_lines(r: &VideoRecord) -> impl Iterator<Item = String> + '_ {
    r.clips.iter().map(|(s, e)| format!("{},{s},{e}", r.name))
}

/// Records read back from the two list files' text; lines that do not parse are ignored (a
/// video without a length line is not finished, so it is redone).
pub fn parse_lists(lengths: &str, clips: &str) -> Vec<VideoRecord> {
    let mut records: Vec<VideoRecord> = lengths
        .lines()
        .filter_map(|l| {
            let (name, secs) = l.trim().rsplit_once(',')?;
            Some(VideoRecord {
                name: name.strip_suffix(".MP4").unwrap_or(name).to_string(),
                duration: secs.parse().ok()?,
                clips: Vec::new(),
            })
        })
        .collect();
    for line in clips.lines() {
        let mut parts = line.trim().rsplitn(3, ',');
        let (Some(e), Some(s), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(s), Ok(e)) = (s.parse(), e.parse()) else {
            continue;
        };
        if let Some(r) = records.iter_mut().find(|r| r.name == name) {
            r.clips.push((s, e));
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPIC: RowGrid = RowGrid {
        interval: 8,
        target_fps: 60.0,
    };

    #[test]
    fn rows_are_centred_every_interval_from_its_last_frame() {
        assert!((EPIC.centre(0) - 7.0 / 60.0).abs() < 1e-12);
        assert!((EPIC.centre(1) - 15.0 / 60.0).abs() < 1e-12);
        // 7/60 <= 0.12 < 15/60.
        assert_eq!(EPIC.rows(0.12), 1);
        assert_eq!(EPIC.rows(0.1), 0);
    }

    #[test]
    fn clips_are_five_seconds_and_the_short_tail_is_dropped() {
        let spans = clip_spans(&EPIC, 10.1);
        let names: Vec<String> = spans.iter().map(|s| s.stem("P01_01")).collect();
        assert_eq!(names, ["P01_01_0_5000", "P01_01_5000_10000"]);
        let spans = clip_spans(&EPIC, 10.25);
        assert_eq!(spans.last().unwrap().stem("v"), "v_10000_10250");
        // Every row is in exactly one clip here (no centre falls on a multiple of 5 s).
        let total: usize = spans.iter().map(|s| s.rows).sum();
        assert_eq!(total, EPIC.rows(10.25));
        assert_eq!(spans[1].first_row, spans[0].rows);
    }

    #[test]
    fn a_centre_on_a_boundary_is_in_both_clips() {
        // Interval 2 at 1 fps: centres at 1, 3, 5, 7, 9 s; the one at 5 s is in both clips.
        let g = RowGrid {
            interval: 2,
            target_fps: 1.0,
        };
        let spans = clip_spans(&g, 9.0);
        assert_eq!((spans[0].first_row, spans[0].rows), (0, 3));
        assert_eq!((spans[1].first_row, spans[1].rows), (2, 3));
    }

    #[test]
    fn a_tail_between_two_centres_is_a_clip_without_rows() {
        // Centres every 0.4 s at 0.3 + 0.4k: 9.9 and 10.3 s straddle the 10-10.24 s tail.
        let g = RowGrid {
            interval: 4,
            target_fps: 10.0,
        };
        let spans = clip_spans(&g, 10.24);
        assert_eq!(spans.len(), 3);
        assert_eq!((spans[2].end_ms, spans[2].rows), (10240, 0));
    }

    #[test]
    fn lists_read_back_what_they_wrote() {
        let r = VideoRecord {
            name: "P01_01".into(),
            duration: 10.25,
            clips: vec![(0, 5000), (5000, 10000), (10000, 10250)],
        };
        let lengths = length_line(&r) + "\n";
        let clips: String = clip_lines(&r).map(|l| l + "\n").collect();
        assert_eq!(lengths, "P01_01.MP4,10.25\n");
        assert_eq!(parse_lists(&lengths, &clips), vec![r]);
    }
}
