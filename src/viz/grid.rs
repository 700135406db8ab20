//! A grid of equally sized tiles with a label left of every row, a label over every column and
//! an optional title, the tiles enlarged (nearest neighbour) to at least [`MIN_TILE`] px.

use image::{Rgb, RgbImage};

use super::draw::{upscale, upscale_factor};
use super::text::{draw_text, text_width, BLACK, LINE_HEIGHT, WHITE};
use super::VizError;

/// Smallest tile side after upscaling.
pub const MIN_TILE: u32 = 128;

const GAP: u32 = 4;
const PAD: u32 = 6;

/// What to lay out: `rows[r][c]` is a tile; every tile has the size of the first.
#[derive(Debug, Clone, Default)]
pub struct LabelledGrid {
    pub title: Option<String>,
    pub rows: Vec<Vec<RgbImage>>,
    /// One per row (missing ones are blank).
    pub row_labels: Vec<String>,
    /// One per column (missing ones are blank).
    pub col_labels: Vec<String>,
}

impl LabelledGrid {
    /// The picture: white background, black text, tiles upscaled by one integer factor.
    pub fn render(&self) -> Result<RgbImage, VizError> {
        let first = self.rows.iter().flatten().next().ok_or(VizError::Empty)?;
        let factor = upscale_factor(first.width(), first.height(), MIN_TILE);
        let (tw, th) = (first.width() * factor, first.height() * factor);
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
        let label_w = self.row_labels.iter().map(|l| text_width(l)).max();
        let left = label_w.map_or(GAP, |w| w + 2 * PAD);
        let title_h = self.title.as_ref().map_or(0, |_| LINE_HEIGHT + PAD);
        let top = title_h
            + if self.col_labels.is_empty() {
                GAP
            } else {
                LINE_HEIGHT + PAD
            };
        let width = left + cols * (tw + GAP);
        let height = top + self.rows.len() as u32 * (th + GAP);
        let mut out = RgbImage::from_pixel(width, height, Rgb(WHITE));
        if let Some(title) = &self.title {
            draw_text(&mut out, PAD as i64, (PAD / 2) as i64, title, BLACK);
        }
        for (c, label) in self.col_labels.iter().enumerate().take(cols as usize) {
            let x = left + c as u32 * (tw + GAP) + tw.saturating_sub(text_width(label)) / 2;
            draw_text(&mut out, x as i64, (title_h + PAD / 2) as i64, label, BLACK);
        }
        for (r, row) in self.rows.iter().enumerate() {
            let y = top + r as u32 * (th + GAP);
            if let Some(label) = self.row_labels.get(r) {
                let ly = y + th.saturating_sub(LINE_HEIGHT) / 2;
                draw_text(&mut out, PAD as i64, ly as i64, label, BLACK);
            }
            for (c, tile) in row.iter().enumerate() {
                if tile.dimensions() != first.dimensions() {
                    return Err(VizError::TileSize {
                        expected: first.dimensions(),
                        got: tile.dimensions(),
                    });
                }
                let x = left + c as u32 * (tw + GAP);
                image::imageops::replace(&mut out, &upscale(tile, factor), x as i64, y as i64);
            }
        }
        Ok(out)
    }
}

/// Up to `n` evenly spaced indices of `0..len`, first and last included when `n ≥ 2`.
pub fn spaced(len: usize, n: usize) -> Vec<usize> {
    if len <= n || n < 2 {
        return (0..len.min(n.max(1))).collect();
    }
    (0..n).map(|i| i * (len - 1) / (n - 1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_upscaled_and_rows_are_labelled() {
        let tile = |v: u8| RgbImage::from_pixel(48, 40, Rgb([v, 100, 200]));
        let grid = LabelledGrid {
            title: Some("title".into()),
            rows: vec![vec![tile(10), tile(20)], vec![tile(30), tile(40)]],
            row_labels: vec!["x -1 \u{b7} y 0 \u{b7} class 0".into(), "still".into()],
            col_labels: vec!["t 0".into(), "t 7".into()],
        };
        let img = grid.render().unwrap();
        let left = text_width("x -1 \u{b7} y 0 \u{b7} class 0") + 2 * PAD;
        let top = LINE_HEIGHT + PAD + LINE_HEIGHT + PAD;
        // 40 px high tiles: factor 4 → 192 × 160.
        assert_eq!(img.dimensions(), (left + 2 * 196, top + 2 * 164));
        assert_eq!(img.get_pixel(left + 196 + 100, top + 80).0, [20, 100, 200]);
        for r in 0..2u32 {
            let y0 = top + r * 164;
            let colours: std::collections::BTreeSet<[u8; 3]> = (0..left)
                .flat_map(|x| (y0..y0 + 160).map(move |y| (x, y)))
                .map(|(x, y)| img.get_pixel(x, y).0)
                .collect();
            assert!(colours.len() >= 2, "row {r}'s label strip is blank");
        }
        let bad = LabelledGrid {
            rows: vec![vec![tile(1), RgbImage::new(3, 3)]],
            ..LabelledGrid::default()
        };
        assert!(matches!(bad.render(), Err(VizError::TileSize { .. })));
        assert!(matches!(
            LabelledGrid::default().render(),
            Err(VizError::Empty)
        ));
    }

    #[test]
    fn spaced_indices_cover_the_ends() {
        assert_eq!(spaced(16, 4), [0, 5, 10, 15]);
        assert_eq!(spaced(3, 8), [0, 1, 2]);
        assert_eq!(spaced(5, 1), [0]);
    }
}
