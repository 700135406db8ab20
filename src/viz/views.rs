//! Crop views drawn over their source clip: the frames enlarged, each view's box (2-px colour
//! with a black halo) on the frames it covers, every frame's index, and a legend naming the
//! colours with the views' IoU.

use image::{Rgb, RgbImage};

use super::draw::{fill_rect, haloed_box, upscale, upscale_factor};
use super::grid::{spaced, LabelledGrid, MIN_TILE};
use super::text::{draw_label, draw_text, text_width, BLACK, LINE_HEIGHT, WHITE};
use super::VizError;

/// Box colours of view 1, view 2, …: bright hues that the black halo separates from any content.
pub const VIEW_COLOURS: [[u8; 3]; 4] =
    [[255, 230, 0], [0, 230, 255], [255, 80, 255], [120, 255, 60]];

/// Where one view sits in its source: `[start, end)` in pixels (x, y) and frames (t).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewBox {
    pub x: [i64; 2],
    pub y: [i64; 2],
    pub t: [i64; 2],
}

/// Every frame enlarged `factor` times with the boxes of the views that cover it.
pub fn boxed_frames(frames: &[RgbImage], boxes: &[ViewBox], factor: u32) -> Vec<RgbImage> {
    (0..frames.len())
        .map(|t| boxed(&frames[t], t, boxes, factor))
        .collect()
}

/// Frame `t` enlarged `factor` times with the boxes of the views whose span holds `t`.
fn boxed(frame: &RgbImage, t: usize, boxes: &[ViewBox], factor: u32) -> RgbImage {
    let f = factor as i64;
    let mut big = upscale(frame, factor);
    for (v, b) in boxes.iter().enumerate() {
        if (b.t[0]..b.t[1]).contains(&(t as i64)) {
            let r = [b.x[0] * f, b.y[0] * f, b.x[1] * f, b.y[1] * f];
            haloed_box(&mut big, r, VIEW_COLOURS[v % VIEW_COLOURS.len()]);
        }
    }
    big
}

/// The legend line: a swatch per view, `view 1 / view 2`, then `, IoU 0.42` when given.
pub fn legend(width: u32, views: usize, iou: Option<f64>) -> RgbImage {
    let h = LINE_HEIGHT + 8;
    let mut img = RgbImage::from_pixel(width, h, Rgb(WHITE));
    let mut x = 6i64;
    for v in 0..views {
        if v > 0 {
            x = draw_text(&mut img, x, 4, " / ", BLACK);
        }
        let colour = VIEW_COLOURS[v % VIEW_COLOURS.len()];
        fill_rect(&mut img, x, 4, x + 14, 4 + 14, BLACK);
        fill_rect(&mut img, x + 1, 5, x + 13, 4 + 13, colour);
        x = draw_text(&mut img, x + 18, 4, &format!("view {}", v + 1), BLACK);
    }
    if let Some(iou) = iou {
        draw_text(&mut img, x, 4, &format!(", IoU {iou:.2}"), BLACK);
    }
    img
}

/// `frames` (up to `max_frames` of them, evenly spaced) with the views' boxes, `per_row` tiles a
/// row, each tile at least [`MIN_TILE`] px and labelled with its frame index, under a legend.
pub fn views_picture(
    frames: &[RgbImage],
    boxes: &[ViewBox],
    iou: Option<f64>,
    max_frames: usize,
    per_row: usize,
) -> Result<RgbImage, VizError> {
    let first = frames.first().ok_or(VizError::Empty)?;
    let factor = upscale_factor(first.width(), first.height(), MIN_TILE);
    let tiles: Vec<RgbImage> = spaced(frames.len(), max_frames)
        .into_iter()
        .map(|t| {
            let mut tile = boxed(&frames[t], t, boxes, factor);
            draw_label(&mut tile, 2, 2, &format!("t {t}"), WHITE, BLACK);
            tile
        })
        .collect();
    let rows: Vec<Vec<RgbImage>> = tiles.chunks(per_row.max(1)).map(<[_]>::to_vec).collect();
    let grid = LabelledGrid {
        rows,
        ..LabelledGrid::default()
    }
    .render()?;
    let legend_w = grid
        .width()
        .max(text_width("view 1 / view 2, IoU 0.00") + 60);
    let top = legend(legend_w, boxes.len(), iou);
    Ok(stack(&top, &grid))
}

/// `a` above `b` on white, left-aligned.
pub fn stack(a: &RgbImage, b: &RgbImage) -> RgbImage {
    let mut out = RgbImage::from_pixel(
        a.width().max(b.width()),
        a.height() + b.height(),
        Rgb(WHITE),
    );
    image::imageops::replace(&mut out, a, 0, 0);
    image::imageops::replace(&mut out, b, 0, a.height() as i64);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct(img: &RgbImage, x: std::ops::Range<u32>, y: std::ops::Range<u32>) -> usize {
        let set: std::collections::BTreeSet<[u8; 3]> = x
            .flat_map(|x| y.clone().map(move |y| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y).0)
            .collect();
        set.len()
    }

    #[test]
    fn boxes_show_on_red_frames_with_legend_and_frame_indices() {
        let frames = vec![RgbImage::from_pixel(40, 30, Rgb([255, 0, 0])); 8];
        let boxes = [
            ViewBox {
                x: [5, 25],
                y: [5, 25],
                t: [0, 4],
            },
            ViewBox {
                x: [10, 35],
                y: [2, 20],
                t: [2, 8],
            },
        ];
        let img = views_picture(&frames, &boxes, Some(0.42), 8, 4).unwrap();
        let legend_h = LINE_HEIGHT + 8;
        // 30 px high frames: factor 5 → 200 × 150 tiles, two rows of four.
        assert_eq!(img.height(), legend_h + 4 + 2 * 154);
        assert!(distinct(&img, 0..img.width(), 0..legend_h) >= 4, "legend");
        let tile0 = |x: u32, y: u32| img.get_pixel(4 + x, legend_h + 4 + y).0;
        // View 1's box on frame 0 at x = 25 px, its halo just outside.
        assert_eq!(tile0(25, 60), VIEW_COLOURS[0]);
        assert_eq!(tile0(24, 60), BLACK);
        assert_eq!(tile0(60, 60), [255, 0, 0], "inside untouched");
        // Frame 0 has no view-2 box; frame 7 (second row, last tile) has no view-1 box.
        assert_ne!(tile0(50, 10), VIEW_COLOURS[1]);
        assert!(
            distinct(&img, 4..60, legend_h + 4..legend_h + 24) >= 2,
            "frame index"
        );
    }
}
