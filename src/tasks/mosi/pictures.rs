//! One image's MoSI clips as a labelled grid: a row per generated clip (`x -2 · y 0 · class 3`),
//! a column per shown frame (`t 0`, …), tiles enlarged to at least 128 px.

use image::RgbImage;
use tada_augment::mosi::{Labels, SpeedSet};

use crate::viz::grid::{spaced, LabelledGrid};
use crate::viz::VizError;

/// The row label of clip `k` of `set`: its speeds and the class the loss scores it as.
pub fn row_label(set: &SpeedSet, k: usize) -> String {
    let [sx, sy] = set.speeds.get(k).copied().unwrap_or([0, 0]);
    let class = match &set.labels {
        Labels::Joint { move_joint } => move_joint.get(k).map(|c| c.to_string()),
        Labels::Separate { move_x, move_y } => move_x
            .get(k)
            .zip(move_y.get(k))
            .map(|(x, y)| format!("x{x} y{y}")),
    };
    let class = class.unwrap_or_else(|| "?".into());
    format!("x {sx} \u{b7} y {sy} \u{b7} class {class}")
}

/// The grid of `clips` (the frames of clip k in row k, in `set`'s order), showing up to
/// `max_frames` evenly spaced frames of each.
pub fn clip_grid(
    set: &SpeedSet,
    clips: &[Vec<RgbImage>],
    max_frames: usize,
    title: Option<String>,
) -> Result<RgbImage, VizError> {
    let frames = clips.iter().map(Vec::len).max().unwrap_or(0);
    let shown = spaced(frames, max_frames);
    LabelledGrid {
        title,
        rows: clips
            .iter()
            .map(|clip| shown.iter().filter_map(|&t| clip.get(t).cloned()).collect())
            .collect(),
        row_labels: (0..clips.len()).map(|k| row_label(set, k)).collect(),
        col_labels: shown.iter().map(|t| format!("t {t}")).collect(),
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tada_augment::mosi::{LabelMode, SpeedConfig};

    #[test]
    fn rows_name_speed_and_class() {
        let joint = SpeedSet::new(&SpeedConfig::default()).unwrap();
        let k = joint.speeds.iter().position(|s| *s == [-1, 0]).unwrap();
        assert_eq!(
            row_label(&joint, k),
            format!("x -1 \u{b7} y 0 \u{b7} class {k}")
        );
        let separate = SpeedSet::new(&SpeedConfig {
            label_mode: LabelMode::Separate,
            ..SpeedConfig::default()
        })
        .unwrap();
        let last = separate.speeds.len() - 1;
        assert_eq!(separate.speeds[last], [0, 0]);
        assert!(row_label(&separate, last).ends_with("class x2 y2"));
    }
}
