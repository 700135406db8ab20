//! A tiny EPIC-Kitchens-100 written to disk in the published format, so the whole EPIC path
//! (csv lists, frame folders, two heads, test, submission) runs with no real data: the
//! annotation lists `EPIC_100_{train,validation,test_timestamps}.csv` and JPEG frames
//! `<participant>/rgb_frames/<video>/frame_0000000001.jpg`.
//!
//! Each video is a run of segments over a still background, with a few empty frames between
//! them. In a segment one object is shown: the **verb** is how it moves (up, down, growing,
//! shrinking, still: motions a horizontal flip, which training applies at random, leaves as
//! they are), the **noun** what it looks like (a colour and a shape of a fixed table); its
//! size and position vary. So verb and noun are independent and each is learnable from its
//! own cue.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyEpic {
    /// Verb classes (motions of [`VERB_MOTIONS`]), 2 to 5.
    pub verbs: usize,
    /// Noun classes (object looks), 2 to [`NOUN_LOOKS`]`.len()`.
    pub nouns: usize,
    /// Videos per list: train, validation, test timestamps.
    pub videos: [usize; 3],
    pub segments_per_video: usize,
    pub frames_per_segment: usize,
    /// Frame side in pixels.
    pub size: u32,
    pub seed: u64,
}

impl Default for TinyEpic {
    fn default() -> Self {
        Self {
            verbs: 4,
            nouns: 3,
            videos: [4, 2, 1],
            segments_per_video: 6,
            frames_per_segment: 8,
            size: 32,
            seed: 0,
        }
    }
}

/// The nouns' looks: colour, and whether the object is a square (else a disc).
pub const NOUN_LOOKS: [([u8; 3], bool, &str); 6] = [
    ([230, 40, 40], true, "red box"),
    ([40, 200, 60], false, "green ball"),
    ([50, 80, 230], true, "blue box"),
    ([240, 220, 40], false, "yellow ball"),
    ([240, 240, 240], true, "white box"),
    ([200, 60, 220], false, "purple ball"),
];

/// The verbs: name, vertical travel over the segment (in frame heights, down positive) and
/// the object's size at the end relative to its start.
pub const VERB_MOTIONS: [(&str, f32, f32); 5] = [
    ("move up", -0.5, 1.0),
    ("move down", 0.5, 1.0),
    ("grow", 0.0, 2.2),
    ("shrink", 0.0, 0.45),
    ("stay", 0.0, 1.0),
];

/// Frames left empty between two segments.
const GAP: usize = 2;

/// Why the tiny dataset could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TinyEpicError {
    #[error("tiny EPIC: {0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Image {
        path: PathBuf,
        source: image::ImageError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TinyEpicError + '_ {
    move |source| TinyEpicError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the dataset under `root`: the lists in `root` (DATA.ANNO_DIR) and the frames under
/// it too (DATA.DATA_ROOT_DIR). Participants P01 (train), P02 (validation), P03 (test).
pub fn write_tiny_epic(root: &Path, t: &TinyEpic) -> Result<(), TinyEpicError> {
    if !(2..=VERB_MOTIONS.len()).contains(&t.verbs) || !(2..=NOUN_LOOKS.len()).contains(&t.nouns) {
        return Err(TinyEpicError::Invalid(format!(
            "2 to {} verbs and 2 to {} nouns, got {} and {}",
            VERB_MOTIONS.len(),
            NOUN_LOOKS.len(),
            t.verbs,
            t.nouns
        )));
    }
    if t.size < 16 || t.frames_per_segment < 2 || t.segments_per_video == 0 {
        return Err(TinyEpicError::Invalid(
            "frames of at least 16 pixels, segments of at least 2 frames".into(),
        ));
    }
    std::fs::create_dir_all(root).map_err(io(root))?;
    let lists = [
        ("EPIC_100_train.csv", "P01", true),
        ("EPIC_100_validation.csv", "P02", true),
        ("EPIC_100_test_timestamps.csv", "P03", false),
    ];
    for (l, (file, participant, labelled)) in lists.iter().enumerate() {
        let mut csv = String::from(match labelled {
            true => "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n",
            false => "narration_id,participant_id,video_id,start_timestamp,stop_timestamp,start_frame,stop_frame\n",
        });
        for v in 0..t.videos[l] {
            let video = format!("{participant}_{:02}", v + 1);
            let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
            rng.set_stream((l * 1000 + v) as u64);
            let rows = write_video(root, participant, &video, t, &mut rng)?;
            for (s, (start, stop, verb, noun)) in rows.into_iter().enumerate() {
                let id = format!("{video}_{s}");
                let time = |f: usize| format!("00:00:{:05.2}", f as f64 / 60.0);
                let (ts, te) = (time(start), time(stop));
                csv.push_str(&match labelled {
                    true => {
                        let vn = VERB_MOTIONS[verb].0;
                        let nn = NOUN_LOOKS[noun].2;
                        format!(
                            "{id},{participant},{video},{ts},{ts},{te},{start},{stop},\"{vn} {nn}\",{vn},{verb},{nn},{noun},\"['{nn}']\",\"[{noun}]\"\n"
                        )
                    }
                    false => format!("{id},{participant},{video},{ts},{te},{start},{stop}\n"),
                });
            }
        }
        let path = root.join(file);
        std::fs::write(&path, csv).map_err(io(&path))?;
    }
    Ok(())
}

/// Writes one video's frames; returns its segments `(start, stop, verb, noun)`, 1-based.
fn write_video(
    root: &Path,
    participant: &str,
    video: &str,
    t: &TinyEpic,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<(usize, usize, usize, usize)>, TinyEpicError> {
    let dir = root.join(participant).join("rgb_frames").join(video);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let s = t.size as f32;
    let bg = [
        rng.random_range(40..110u8),
        rng.random_range(40..110u8),
        rng.random_range(40..110u8),
    ];
    let mut frame = 1usize;
    let mut rows = Vec::new();
    let save = |img: &image::RgbImage, n: usize| {
        let path = crate::data::dataset::annotations::epic::frame_file(&dir, n);
        img.save(&path)
            .map_err(|source| TinyEpicError::Image { path, source })
    };
    let background = |x: u32, y: u32| {
        // A gentle still gradient: the object's motion is the only change.
        let g = ((x + y) * 40 / (2 * t.size)) as u8;
        image::Rgb([bg[0] + g, bg[1] + g, bg[2] + g])
    };
    for _ in 0..t.segments_per_video {
        for _ in 0..GAP {
            save(&image::RgbImage::from_fn(t.size, t.size, background), frame)?;
            frame += 1;
        }
        let (verb, noun) = (rng.random_range(0..t.verbs), rng.random_range(0..t.nouns));
        let (colour, square, _) = NOUN_LOOKS[noun];
        let (_, travel, growth) = VERB_MOTIONS[verb];
        let n = t.frames_per_segment as f32;
        let r0 = s * rng.random_range(0.10..0.15);
        let (cx, cy) = (
            s / 2.0 + rng.random_range(-0.1..0.1) * s,
            s / 2.0 + rng.random_range(-0.05..0.05) * s,
        );
        let start = frame;
        for i in 0..t.frames_per_segment {
            // Progress through the segment in [-0.5, 0.5]: the path is centred on (cx, cy).
            let p = i as f32 / (n - 1.0) - 0.5;
            let (ox, oy) = (cx, cy + travel * s * p);
            let r = r0 * growth.powf(p + 0.5);
            let img = image::RgbImage::from_fn(t.size, t.size, |x, y| {
                let (dx, dy) = (x as f32 + 0.5 - ox, y as f32 + 0.5 - oy);
                let inside = match square {
                    true => dx.abs() <= r && dy.abs() <= r,
                    false => dx * dx + dy * dy <= r * r,
                };
                match inside {
                    true => image::Rgb(colour),
                    false => background(x, y),
                }
            });
            save(&img, frame)?;
            frame += 1;
        }
        rows.push((start, frame - 1, verb, noun));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::annotations::epic::{read_list, EpicList, Media};

    /// The lists read back with the published parser, every segment's frames on disk and the
    /// object of its noun's colour in them.
    #[test]
    fn the_tiny_dataset_reads_back_in_the_published_format() {
        let d = tempfile::tempdir().unwrap();
        let t = TinyEpic {
            videos: [2, 1, 1],
            segments_per_video: 3,
            ..TinyEpic::default()
        };
        write_tiny_epic(d.path(), &t).unwrap();
        let train = read_list(d.path(), d.path(), EpicList::Train).unwrap();
        assert_eq!(train.narrations.len(), 6);
        let first = &train.narrations[0];
        assert_eq!(
            (first.id.as_str(), first.start_frame),
            ("P01_01_0", GAP + 1)
        );
        assert_eq!(first.frames(), t.frames_per_segment);
        let Media::Frames(dir) = &first.media else {
            panic!("{:?}", first.media)
        };
        assert_eq!(dir, &d.path().join("P01/rgb_frames/P01_01"));
        for n in &train.narrations {
            assert!((n.verb as usize) < t.verbs && (n.noun as usize) < t.nouns);
            let mid = crate::data::dataset::annotations::epic::frame_file(
                dir.parent().unwrap().join(&n.video_id).as_path(),
                n.start_frame + t.frames_per_segment / 2,
            );
            let img = image::open(&mid).unwrap().to_rgb8();
            let want = NOUN_LOOKS[n.noun as usize].0;
            // JPEG shifts colours a little: some pixel is near the noun's colour.
            let near = img
                .pixels()
                .any(|p| (0..3).all(|c| (i32::from(p.0[c]) - i32::from(want[c])).abs() < 40));
            assert!(near, "{}: no {:?} object in {}", n.id, want, mid.display());
        }
        assert!(train
            .verbs
            .iter()
            .all(|v| v.is_empty() || VERB_MOTIONS.iter().any(|m| m.0 == v)));
        let test = read_list(d.path(), d.path(), EpicList::TestTimestamps).unwrap();
        assert_eq!(test.narrations.len(), 3);
        assert!(write_tiny_epic(d.path(), &TinyEpic { verbs: 6, ..t }).is_err());
    }
}
