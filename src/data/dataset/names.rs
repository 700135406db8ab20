//! Class names for reports (`tada test`): the dataset's own list where its annotation format
//! has one (UCF101 classInd.txt, HMDB51 split files, Kinetics csv labels, SSv2 labels json,
//! image folders), the direction of motion for the embedded synthetic videos, and `class {i}`
//! wherever a dataset names none (the reference's pre-processed `path label` lists).

use crate::config::schema::{DataConfig, Dataset};

use super::{annotations, Split};

/// Names of classes `0..count` of `split` of `dataset`. Never fails: an annotation that cannot
/// be read here (the caller has read it already) leaves the generic names.
pub fn class_names(
    dataset: Option<Dataset>,
    data: &DataConfig,
    split: Split,
    count: usize,
) -> Vec<String> {
    let listed = match dataset {
        Some(Dataset::SyntheticVideos) => synthetic_video_classes(count),
        Some(Dataset::SyntheticImages) | None => Vec::new(),
        Some(d) => annotations::read_entries(d, data, split)
            .map(|l| l.classes)
            .unwrap_or_default(),
    };
    fill_class_names(listed, count)
}

/// `listed` cut or extended to `count` names, `class {i}` for the missing ones (and for empty
/// names in a list).
pub fn fill_class_names(listed: Vec<String>, count: usize) -> Vec<String> {
    let mut listed = listed.into_iter();
    (0..count)
        .map(|i| match listed.next() {
            Some(n) if !n.trim().is_empty() => n,
            _ => format!("class {i}"),
        })
        .collect()
}

/// The embedded synthetic videos' classes are directions of motion, `360° k / count`
/// (data/sources/synthetic_videos.rs).
fn synthetic_video_classes(count: usize) -> Vec<String> {
    (0..count)
        .map(|k| format!("motion {:.0}°", 360.0 * k as f64 / count as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_class_names_become_generic() {
        let names = fill_class_names(vec!["run".into(), " ".into()], 3);
        assert_eq!(names, ["run", "class 1", "class 2"]);
        assert_eq!(fill_class_names(vec!["a".into(), "b".into()], 1), ["a"]);
    }

    #[test]
    fn synthetic_videos_are_named_by_direction() {
        let data = DataConfig::default();
        let names = class_names(Some(Dataset::SyntheticVideos), &data, Split::Test, 4);
        assert_eq!(
            names,
            ["motion 0°", "motion 90°", "motion 180°", "motion 270°"]
        );
        let none = class_names(None, &data, Split::Test, 2);
        assert_eq!(none, ["class 0", "class 1"]);
    }
}
