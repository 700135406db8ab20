//! EPIC-Kitchens-100 action recognition as published (epic-kitchens-100-annotations):
//! `EPIC_100_train.csv`, `EPIC_100_validation.csv` (header `narration_id, participant_id,
//! video_id, narration_timestamp, start_timestamp, stop_timestamp, start_frame, stop_frame,
//! narration, verb, verb_class, noun, noun_class, all_nouns, all_noun_classes`) and
//! `EPIC_100_test_timestamps.csv` (the same without labels), columns found by their header
//! names. A narration is a segment `start_frame..=stop_frame` (1-based) of its video, labelled
//! with a verb and a noun; the action is the pair.
//!
//! Media, looked for per video in DATA_ROOT_DIR: the reference's pre-cut segment
//! `<narration_id>.MP4` when it exists, else the published RGB frames
//! `<participant_id>/rgb_frames/<video_id>/frame_0000000001.jpg`, else the same without
//! `rgb_frames/` (`<participant_id>/<video_id>/frame_…jpg`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::schema::Dataset;
use crate::data::dataset::{DatasetError, Entry, EntryList, Split};

use super::text::parse_err;
use super::{not_found, Dirs, Read};

/// Which published list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpicList {
    Train,
    Validation,
    /// The challenge's unlabelled segments (TASK_TYPE submission).
    TestTimestamps,
}

impl EpicList {
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Train => "EPIC_100_train.csv",
            Self::Validation => "EPIC_100_validation.csv",
            Self::TestTimestamps => "EPIC_100_test_timestamps.csv",
        }
    }

    /// The list a split reads: training the train csv, validation and testing the
    /// validation csv (the labelled held-out set, as the reference's).
    pub fn of(split: Split) -> Self {
        match split {
            Split::Train => Self::Train,
            Split::Val | Split::Test => Self::Validation,
        }
    }

    fn labelled(self) -> bool {
        self != Self::TestTimestamps
    }
}

/// Where a narration's frames are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// The reference's pre-cut segment video: all its frames are the segment.
    Clip(PathBuf),
    /// The video's frame folder; the segment is files `start_frame..=stop_frame`.
    Frames(PathBuf),
}

impl Media {
    pub fn path(&self) -> &Path {
        match self {
            Self::Clip(p) | Self::Frames(p) => p,
        }
    }
}

/// One labelled segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narration {
    pub id: String,
    pub video_id: String,
    /// 1-based, inclusive.
    pub start_frame: usize,
    pub stop_frame: usize,
    /// 0 for the unlabelled test timestamps (as the reference).
    pub verb: i64,
    pub noun: i64,
    pub media: Media,
}

impl Narration {
    pub fn frames(&self) -> usize {
        self.stop_frame + 1 - self.start_frame
    }
}

/// The file of frame `number` (1-based) in an EPIC frame folder.
pub fn frame_file(dir: &Path, number: usize) -> PathBuf {
    dir.join(format!("frame_{number:010}.jpg"))
}

/// A list's narrations, with the verb and noun names by class index (empty for the test
/// timestamps).
#[derive(Debug, Clone, PartialEq)]
pub struct Narrations {
    pub narrations: Vec<Narration>,
    pub verbs: Vec<String>,
    pub nouns: Vec<String>,
    pub source: PathBuf,
}

/// Where a list's columns are.
struct Columns {
    id: usize,
    participant: usize,
    video: usize,
    start: usize,
    stop: usize,
    /// `verb_class`, `noun_class` (the labelled lists).
    labels: Option<(usize, usize)>,
    /// `verb`, `noun`: the class names, when present.
    names: Option<(usize, usize)>,
}

impl Columns {
    fn find(headers: &csv::StringRecord, list: EpicList) -> Result<Self, String> {
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == name)
                .ok_or_else(|| format!("no `{name}` column in the header"))
        };
        let optional = |name: &str| headers.iter().position(|h| h == name);
        Ok(Self {
            id: col("narration_id")?,
            participant: col("participant_id")?,
            video: col("video_id")?,
            start: col("start_frame")?,
            stop: col("stop_frame")?,
            labels: match list.labelled() {
                true => Some((col("verb_class")?, col("noun_class")?)),
                false => None,
            },
            names: optional("verb").zip(optional("noun")),
        })
    }
}

/// Reads `list` from DATA.ANNO_DIR, media under DATA.DATA_ROOT_DIR.
pub fn read_list(anno: &Path, root: &Path, list: EpicList) -> Result<Narrations, DatasetError> {
    let path = anno.join(list.file_name());
    if !path.is_file() {
        return Err(not_found(
            Dataset::Epickitchen100,
            path.display().to_string(),
        ));
    }
    let invalid = |reason: String| DatasetError::Invalid {
        path: path.clone(),
        reason,
    };
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(&path)
        .map_err(|e| invalid(e.to_string()))?;
    let headers = r.headers().map_err(|e| invalid(e.to_string()))?.clone();
    let cols = Columns::find(&headers, list).map_err(invalid)?;
    let mut media = MediaFinder::new(root);
    let mut out = Narrations {
        narrations: Vec::new(),
        verbs: Vec::new(),
        nouns: Vec::new(),
        source: path.clone(),
    };
    for rec in r.records() {
        let rec = rec.map_err(|e| invalid(e.to_string()))?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let n = row(&rec, &cols, &path, &mut media)?;
        if let Some((v, k)) = cols.names {
            name_class(
                &mut out.verbs,
                n.verb as usize,
                rec.get(v).unwrap_or_default(),
            );
            name_class(
                &mut out.nouns,
                n.noun as usize,
                rec.get(k).unwrap_or_default(),
            );
        }
        out.narrations.push(n);
    }
    Ok(out)
}

/// One row of a list as a narration; errors name the file, the line and the field.
fn row(
    rec: &csv::StringRecord,
    cols: &Columns,
    path: &Path,
    media: &mut MediaFinder,
) -> Result<Narration, DatasetError> {
    let line = rec.position().map_or(0, |p| p.line() as usize);
    let bad = |reason: String| parse_err(path, line, reason);
    let field = |i: usize, name: &str| match rec.get(i) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad(format!("`{name}` is empty"))),
    };
    let number = |i: usize, name: &str| -> Result<usize, DatasetError> {
        let v = field(i, name)?;
        v.parse::<usize>()
            .map_err(|_| bad(format!("`{name}` `{v}` is not a non-negative integer")))
    };
    let id = field(cols.id, "narration_id")?.to_string();
    let (start, stop) = (
        number(cols.start, "start_frame")?,
        number(cols.stop, "stop_frame")?,
    );
    if start == 0 || stop < start {
        return Err(bad(format!(
            "narration {id}: frames {start}..={stop} are no segment (frames count from 1, \
             stop_frame >= start_frame)"
        )));
    }
    let (verb, noun) = match cols.labels {
        Some((v, n)) => (number(v, "verb_class")?, number(n, "noun_class")?),
        None => (0, 0),
    };
    let participant = field(cols.participant, "participant_id")?;
    let video_id = field(cols.video, "video_id")?.to_string();
    Ok(Narration {
        media: media.find(&id, participant, &video_id),
        id,
        video_id,
        start_frame: start,
        stop_frame: stop,
        verb: verb as i64,
        noun: noun as i64,
    })
}

/// Records `name` as the name of class `index` (the first row to name it wins).
fn name_class(names: &mut Vec<String>, index: usize, name: &str) {
    if names.len() <= index {
        names.resize(index + 1, String::new());
    }
    if names[index].is_empty() {
        names[index] = name.to_string();
    }
}

/// Which of the three layouts DATA_ROOT_DIR holds, decided once per video for its frames.
struct MediaFinder<'a> {
    root: &'a Path,
    frame_dirs: HashMap<String, PathBuf>,
}

impl<'a> MediaFinder<'a> {
    fn new(root: &'a Path) -> Self {
        Self {
            root,
            frame_dirs: HashMap::new(),
        }
    }

    fn find(&mut self, id: &str, participant: &str, video: &str) -> Media {
        let clip = self.root.join(format!("{id}.MP4"));
        if clip.is_file() {
            return Media::Clip(clip);
        }
        let root = self.root;
        let dir = self.frame_dirs.entry(video.to_string()).or_insert_with(|| {
            let published = root.join(participant).join("rgb_frames").join(video);
            match published.is_dir() {
                true => published,
                // When neither exists the short layout is named, so a missing frame error
                // names a path the user can compare with the brief's layout.
                false => root.join(participant).join(video),
            }
        });
        Media::Frames(dir.clone())
    }
}

/// `split` as [`Entry`]s (path: the segment's video or frame folder, label: the verb), for
/// what reads any dataset's entries (class names, `tada data check`).
pub(crate) fn read(dirs: &Dirs, split: Split) -> Result<Read, DatasetError> {
    let n = read_list(&dirs.anno, &dirs.root, EpicList::of(split))?;
    let entries = n
        .narrations
        .into_iter()
        .map(|x| Entry {
            path: x.media.path().to_path_buf(),
            label: x.verb,
            id: x.id,
        })
        .collect();
    Ok(Read {
        list: EntryList {
            entries,
            classes: n.verbs,
        },
        source: n.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n";

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn published_rows_are_read_with_quoted_fields_and_named_classes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("frames");
        std::fs::create_dir_all(root.join("P01/rgb_frames/P01_01")).unwrap();
        write(
            d.path(),
            "EPIC_100_train.csv",
            &format!(
                "{HEADER}P01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,3,door,8,['door'],[8]\n\
                 P02_03_5,P02,P02_03,00:00:04.00,00:00:04.00,00:00:05.00,240,300,\"take knife, fork\",take,0,knife,4,\"['knife', 'fork']\",\"[4, 7]\"\n"
            ),
        );
        let n = read_list(d.path(), &root, EpicList::Train).unwrap();
        assert_eq!(n.narrations.len(), 2);
        let a = &n.narrations[0];
        assert_eq!(
            (a.id.as_str(), a.start_frame, a.stop_frame),
            ("P01_01_0", 8, 202)
        );
        assert_eq!((a.verb, a.noun, a.frames()), (3, 8, 195));
        // The published layout where it exists, the short one otherwise.
        assert_eq!(a.media, Media::Frames(root.join("P01/rgb_frames/P01_01")));
        assert_eq!(
            n.narrations[1].media,
            Media::Frames(root.join("P02/P02_03"))
        );
        assert_eq!((n.narrations[1].verb, n.narrations[1].noun), (0, 4));
        assert_eq!(n.verbs, ["take", "", "", "open"]);
        assert_eq!(n.nouns[8], "door");
        assert_eq!(frame_file(&root, 8), root.join("frame_0000000008.jpg"));
        // The reference's pre-cut clip wins.
        write(&root, "P01_01_0.MP4", "x");
        let n = read_list(d.path(), &root, EpicList::Train).unwrap();
        assert_eq!(
            n.narrations[0].media,
            Media::Clip(root.join("P01_01_0.MP4"))
        );
    }

    #[test]
    fn test_timestamps_need_no_labels() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "EPIC_100_test_timestamps.csv",
            "narration_id,participant_id,video_id,start_timestamp,stop_timestamp,start_frame,stop_frame\nP01_101_0,P01,P01_101,00:00:00.00,00:00:01.00,1,61\n",
        );
        let n = read_list(d.path(), d.path(), EpicList::TestTimestamps).unwrap();
        assert_eq!(n.narrations.len(), 1);
        assert_eq!((n.narrations[0].verb, n.narrations[0].noun), (0, 0));
        // The labelled lists do need them.
        write(
            d.path(),
            "EPIC_100_validation.csv",
            "narration_id,participant_id,video_id,start_frame,stop_frame\nP01_101_0,P01,P01_101,1,61\n",
        );
        let e = read_list(d.path(), d.path(), EpicList::Validation).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("EPIC_100_validation.csv: no `verb_class` column in the header"),
            "{e}"
        );
    }

    /// Every bad row fails in one line naming the file, the line and the field.
    #[test]
    fn bad_rows_name_file_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let good = "P01_01_0,P01,P01_01,a,b,c,8,202,n,open,3,door,8,x,y\n";
        let cases = [
            (
                "P01_01_1,P01,P01_01,a,b,c,8,x2,n,open,3,door,8,x,y\n",
                "`stop_frame` `x2` is not a non-negative integer",
            ),
            (
                "P01_01_1,P01,P01_01,a,b,c,9,8,n,open,3,door,8,x,y\n",
                "narration P01_01_1: frames 9..=8 are no segment",
            ),
            (
                "P01_01_1,P01,P01_01,a,b,c,0,8,n,open,3,door,8,x,y\n",
                "frames 0..=8 are no segment",
            ),
            (
                "P01_01_1,P01,P01_01,a,b,c,1,8,n,open,-1,door,8,x,y\n",
                "`verb_class` `-1` is not a non-negative integer",
            ),
            (
                "P01_01_1,P01,,a,b,c,1,8,n,open,1,door,8,x,y\n",
                "`video_id` is empty",
            ),
            (
                "P01_01_1,P01,P01_01,a,b,c,1,8,n,open,1,door\n",
                "`noun_class` is empty",
            ),
        ];
        for (row, want) in cases {
            write(
                d.path(),
                "EPIC_100_train.csv",
                &format!("{HEADER}{good}{row}"),
            );
            let e = read_list(d.path(), d.path(), EpicList::Train).unwrap_err();
            let s = e.to_string();
            assert!(
                s.contains("EPIC_100_train.csv:3: ") && s.contains(want),
                "{row}: {s}"
            );
            assert!(!s.contains('\n'));
        }
        write(d.path(), "EPIC_100_train.csv", &format!("{HEADER}{good}"));
        assert!(read_list(d.path(), d.path(), EpicList::Train).is_ok());
        let e = read_list(d.path(), d.path(), EpicList::Validation).unwrap_err();
        assert!(e.to_string().contains("EPIC_100_validation.csv"), "{e}");
    }
}
