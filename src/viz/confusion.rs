//! A confusion matrix as a heat map: rows are true classes, columns predicted ones, each cell
//! shaded by its share of the row (white 0 → dark blue 1), so per-class recall reads along the
//! diagonal whatever the class sizes.

use image::{Rgb, RgbImage};

use super::draw::{fill_rect, line};
use super::text::{draw_text, text_width, BLACK, CHAR_WIDTH, LINE_HEIGHT, WHITE};

/// Above this many classes the class names are left out (cells get too small to label).
pub const MAX_LABELLED: usize = 40;

/// Side of the matrix in pixels that the cell size aims for.
const TARGET: u32 = 640;

/// Side of one cell: 48 px for a few classes, down to 3 px for hundreds.
fn cell_size(n: usize) -> u32 {
    (TARGET / n.max(1) as u32).clamp(3, 48)
}

/// White → dark blue by `share` in [0, 1].
fn shade(share: f64) -> [u8; 3] {
    let s = share.clamp(0.0, 1.0);
    let mix = |from: f64, to: f64| (from + (to - from) * s).round() as u8;
    [mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0)]
}

/// The heat map of `counts[true][predicted]`, with class names (or indices) on both axes up
/// to [`MAX_LABELLED`] classes, counts in the cells when they fit, and axis titles.
pub fn render(counts: &[Vec<u64>], class_names: &[String]) -> RgbImage {
    let n = counts
        .len()
        .max(counts.iter().map(Vec::len).max().unwrap_or(0));
    let cell = cell_size(n);
    let labelled = n <= MAX_LABELLED;
    let name = |i: usize| -> String {
        let name = class_names.get(i).cloned().unwrap_or_else(|| i.to_string());
        // Long names are cut so the matrix keeps most of the picture.
        name.chars().take(18).collect()
    };
    let lh = LINE_HEIGHT as i64;
    let row_w = if labelled {
        (0..n).map(|i| text_width(&name(i))).max().unwrap_or(0) + 8
    } else {
        0
    };
    // Column labels are indices (names would overlap); the row labels say which is which.
    let col_h = if labelled { lh as u32 + 4 } else { 0 };
    let left = row_w.max(lh as u32 + 8) as i64 + 4;
    let top = 2 * lh + 8 + col_h as i64;
    let side = n as i64 * cell as i64;
    let title = "rows: true class, columns: predicted";
    let width = (left + side + 12)
        .max(text_width(title) as i64 + 8)
        .max(text_width("predicted") as i64 + left + 4);
    let height = top + side + 8;
    let mut img = RgbImage::from_pixel(width as u32, height as u32, Rgb(WHITE));
    draw_text(&mut img, 4, 2, title, BLACK);
    draw_text(&mut img, left, lh + 4, "predicted", BLACK);
    let c = cell as i64;
    for (t, row) in counts.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (p, &k) in row.iter().enumerate() {
            let share = if total > 0 {
                k as f64 / total as f64
            } else {
                0.0
            };
            let (x, y) = (left + p as i64 * c, top + t as i64 * c);
            fill_rect(&mut img, x, y, x + c, y + c, shade(share));
            let text = k.to_string();
            if labelled && k > 0 && text_width(&text) + 2 < cell && lh + 2 < c {
                let fg = if share > 0.5 { WHITE } else { BLACK };
                let tx = x + (c - text_width(&text) as i64) / 2;
                draw_text(&mut img, tx, y + (c - lh) / 2, &text, fg);
            }
        }
    }
    if labelled {
        for i in 0..n {
            let y = top + i as i64 * c + (c - lh) / 2;
            draw_text(&mut img, 4, y, &name(i), BLACK);
            let idx = i.to_string();
            if (idx.len() as u32 * CHAR_WIDTH) < cell + 2 || n <= 10 {
                let x = left + i as i64 * c + (c - text_width(&idx) as i64) / 2;
                draw_text(&mut img, x, top - lh - 2, &idx, BLACK);
            }
        }
    }
    // Frame around the matrix.
    let (r, b) = (left + side, top + side);
    for (a, z) in [((left, top), (r, top)), ((left, b), (r, b))] {
        line(&mut img, a, z, 1, BLACK);
    }
    for (a, z) in [((left, top), (left, b)), ((r, top), (r, b))] {
        line(&mut img, a, z, 1, BLACK);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_cells_are_dark_and_labels_are_drawn() {
        let counts = vec![vec![9, 1, 0], vec![0, 5, 5], vec![0, 0, 0]];
        let names: Vec<String> = ["walk", "run", "jump"].map(String::from).to_vec();
        let img = render(&counts, &names);
        let c = cell_size(3) as i64;
        let lh = LINE_HEIGHT as i64;
        let left = (text_width("walk") + 8).max(lh as u32 + 8) as i64 + 4;
        let top = 2 * lh + 8 + lh + 4;
        let at = |t: i64, p: i64| {
            img.get_pixel((left + p * c + 2) as u32, (top + t * c + 2) as u32)
                .0
        };
        assert_eq!(at(0, 0), shade(0.9));
        assert_eq!(at(1, 1), shade(0.5));
        assert_eq!(at(0, 2), WHITE, "no predictions");
        assert_eq!(at(2, 2), WHITE, "an empty row stays white");
        assert!(shade(0.9)[0] < shade(0.1)[0]);
        // Every row's name strip has text in it.
        for t in 0..3 {
            let y0 = (top + t * c) as u32;
            let dark = (0..left as u32 - 4)
                .flat_map(|x| (y0..y0 + c as u32).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y)[0] < 128)
                .count();
            assert!(dark > 5, "row {t} has no label");
        }
    }

    #[test]
    fn a_hundred_classes_fit_without_labels() {
        let counts: Vec<Vec<u64>> = (0..100)
            .map(|t| (0..100).map(|p| u64::from(t == p) * 3 + 1).collect())
            .collect();
        let img = render(&counts, &[]);
        assert!(
            img.width() <= 1000 && img.height() <= 1000,
            "{:?}",
            img.dimensions()
        );
        let c = cell_size(100);
        assert!(c >= 3);
        // Ragged or empty input is drawn, not a panic.
        render(&[vec![1], vec![]], &[]);
        render(&[], &[]);
    }
}
