//! Text on pictures: Noto Sans Mono glyphs, pre-rasterised at 16 px with anti-aliasing, blended
//! over whatever is underneath. A character the font lacks is spelled out (`λ` → `lambda`) or
//! replaced, never a panic.

use image::{Rgb, RgbImage};
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};

const WEIGHT: FontWeight = FontWeight::Regular;
const SIZE: RasterHeight = RasterHeight::Size16;

/// Height of a line of text in pixels.
pub const LINE_HEIGHT: u32 = SIZE.val() as u32;

/// Advance of one character in pixels (the font is monospaced).
pub const CHAR_WIDTH: u32 = get_raster_width(WEIGHT, SIZE) as u32;

pub const BLACK: [u8; 3] = [0, 0, 0];
pub const WHITE: [u8; 3] = [255, 255, 255];

/// `text` with every character the font lacks replaced: minus signs by `-`, Greek lambda by
/// `lambda`, anything else by `?`.
pub fn drawable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if get_raster(c, WEIGHT, SIZE).is_some() {
            out.push(c);
            continue;
        }
        match c {
            '\u{2212}' | '\u{2013}' | '\u{2014}' => out.push('-'),
            '\u{3bb}' => out.push_str("lambda"),
            '\u{394}' => out.push_str("delta"),
            '\u{d7}' => out.push('x'),
            _ => out.push('?'),
        }
    }
    out
}

/// Width in pixels of `text` once drawn.
pub fn text_width(text: &str) -> u32 {
    drawable(text).chars().count() as u32 * CHAR_WIDTH
}

/// Draws `text` with its top-left corner at `(x, y)` in `colour`, clipped to the image; returns
/// the x just past its end.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, colour: [u8; 3]) -> i64 {
    let mut pen = x;
    for c in drawable(text).chars() {
        // `drawable` only keeps characters the font has.
        if let Some(glyph) = get_raster(c, WEIGHT, SIZE) {
            for (dy, row) in glyph.rows().enumerate() {
                for (dx, &alpha) in row.iter().enumerate() {
                    blend(img, pen + dx as i64, y + dy as i64, colour, alpha);
                }
            }
        }
        pen += CHAR_WIDTH as i64;
    }
    pen
}

/// Draws `text` on a filled `background` box padded by 2 px, so it reads over any picture.
pub fn draw_label(img: &mut RgbImage, x: i64, y: i64, text: &str, fg: [u8; 3], bg: [u8; 3]) {
    let w = text_width(text) as i64 + 4;
    super::draw::fill_rect(img, x, y, x + w, y + LINE_HEIGHT as i64 + 2, bg);
    draw_text(img, x + 2, y + 1, text, fg);
}

fn blend(img: &mut RgbImage, x: i64, y: i64, colour: [u8; 3], alpha: u8) {
    if alpha == 0 || x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 {
        return;
    }
    let p = img.get_pixel_mut(x as u32, y as u32);
    let a = alpha as u32;
    let mix = |under: u8, over: u8| ((under as u32 * (255 - a) + over as u32 * a) / 255) as u8;
    *p = Rgb([
        mix(p[0], colour[0]),
        mix(p[1], colour[1]),
        mix(p[2], colour[2]),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_glyphs_fall_back_instead_of_panicking() {
        assert_eq!(drawable("x \u{2212}2 \u{b7} y 0"), "x -2 \u{b7} y 0");
        assert_eq!(drawable("\u{3bb}"), "lambda");
        assert_eq!(drawable("\u{4e2d}"), "?");
        assert_eq!(text_width("ab"), 2 * CHAR_WIDTH);
    }

    #[test]
    fn text_marks_pixels_only_where_it_is_drawn() {
        let mut img = RgbImage::from_pixel(200, 40, Rgb(WHITE));
        let end = draw_text(&mut img, 4, 4, "class 3 \u{b7} \u{3bb}", BLACK);
        assert_eq!(end, 4 + text_width("class 3 \u{b7} \u{3bb}") as i64);
        let dark = |x0: u32, x1: u32| {
            (x0..x1)
                .flat_map(|x| (0..40).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y)[0] < 128)
                .count()
        };
        assert!(dark(4, end as u32) > 30, "the glyphs darken pixels");
        assert_eq!(dark(end as u32 + 1, 200), 0, "nothing past the text");
        // Off the image: clipped, no panic.
        draw_text(&mut img, 190, 35, "clipped", BLACK);
        draw_text(&mut img, -50, -5, "clipped", BLACK);
    }
}
