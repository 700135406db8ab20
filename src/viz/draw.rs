//! Drawing primitives: filled rectangles, lines, haloed box outlines and nearest-neighbour
//! upscaling. A handful of axis-aligned shapes and polylines is all the pictures need, so they
//! are drawn here rather than through an image-processing crate.

use image::imageops::{resize, FilterType};
use image::{Rgb, RgbImage};

/// Fills `[x0, x1) × [y0, y1)`, clipped to the image.
pub fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, Rgb(colour));
        }
    }
}

/// Draws the outline of `[x0, x1) × [y0, y1)`, `width` px thick inwards, clipped to the image.
pub fn outline(img: &mut RgbImage, r: [i64; 4], width: i64, colour: [u8; 3]) {
    let [x0, y0, x1, y1] = r;
    let width = width.min((x1 - x0 + 1) / 2).min((y1 - y0 + 1) / 2).max(1);
    fill_rect(img, x0, y0, x1, y0 + width, colour);
    fill_rect(img, x0, y1 - width, x1, y1, colour);
    fill_rect(img, x0, y0, x0 + width, y1, colour);
    fill_rect(img, x1 - width, y0, x1, y1, colour);
}

/// A 2-px `colour` outline of `[x0, x1) × [y0, y1)` with a 1-px black halo on both sides,
/// so the box reads on any content (bright colour on dark, black edge on bright).
pub fn haloed_box(img: &mut RgbImage, r: [i64; 4], colour: [u8; 3]) {
    let [x0, y0, x1, y1] = r;
    outline(img, [x0 - 1, y0 - 1, x1 + 1, y1 + 1], 4, super::text::BLACK);
    outline(img, [x0, y0, x1, y1], 2, colour);
}

/// A line from `a` to `b`, `width` px thick (a square brush along Bresenham's path).
pub fn line(img: &mut RgbImage, a: (i64, i64), b: (i64, i64), width: i64, colour: [u8; 3]) {
    let (dx, dy) = ((b.0 - a.0).abs(), -(b.1 - a.1).abs());
    let (sx, sy) = ((b.0 - a.0).signum(), (b.1 - a.1).signum());
    let (mut x, mut y, mut err) = (a.0, a.1, dx + dy);
    let lo = (width - 1) / 2;
    loop {
        fill_rect(img, x - lo, y - lo, x - lo + width, y - lo + width, colour);
        if (x, y) == b {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// The integer factor that brings the shorter side of a `w × h` picture to at least `min_side`.
pub fn upscale_factor(w: u32, h: u32, min_side: u32) -> u32 {
    min_side.div_ceil(w.min(h).max(1)).max(1)
}

/// `img` enlarged `factor` times with nearest-neighbour sampling (pixels stay crisp squares).
pub fn upscale(img: &RgbImage, factor: u32) -> RgbImage {
    if factor <= 1 {
        return img.clone();
    }
    resize(
        img,
        img.width() * factor,
        img.height() * factor,
        FilterType::Nearest,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_haloed_box_reads_on_red_and_on_white() {
        for background in [[255, 0, 0], [255, 255, 255]] {
            let mut img = RgbImage::from_pixel(40, 40, Rgb(background));
            haloed_box(&mut img, [10, 10, 30, 30], [255, 230, 0]);
            // Halo, colour, colour, halo across the left edge; inside and outside untouched.
            let row: Vec<[u8; 3]> = (8..13).map(|x| img.get_pixel(x, 20).0).collect();
            assert_eq!(
                row,
                [background, [0; 3], [255, 230, 0], [255, 230, 0], [0; 3]]
            );
            assert_eq!(img.get_pixel(20, 20).0, background);
            assert_eq!(img.get_pixel(2, 2).0, background);
        }
    }

    #[test]
    fn lines_reach_both_ends_and_upscaling_keeps_pixels_square() {
        let mut img = RgbImage::new(20, 20);
        line(&mut img, (1, 18), (17, 2), 1, [9, 9, 9]);
        assert_eq!(img.get_pixel(1, 18).0, [9; 3]);
        assert_eq!(img.get_pixel(17, 2).0, [9; 3]);
        assert_eq!(img.get_pixel(9, 10).0, [9; 3]);
        assert_eq!(upscale_factor(48, 64, 128), 3);
        assert_eq!(upscale_factor(200, 150, 128), 1);
        let big = upscale(&img, 3);
        assert_eq!(big.dimensions(), (60, 60));
        assert_eq!(big.get_pixel(5, 56).0, [9; 3]);
        assert_eq!(big.get_pixel(3, 54).0, img.get_pixel(1, 18).0);
    }
}
