//! A line plot of a few series over training steps: axes with rounded ticks, a legend, a title.

use image::{Rgb, RgbImage};

use super::draw::{fill_rect, line};
use super::text::{draw_text, text_width, BLACK, CHAR_WIDTH, LINE_HEIGHT, WHITE};
use super::VizError;

/// Distinguishable line colours (Tableau's first four).
pub const SERIES_COLOURS: [[u8; 3]; 4] =
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]];

const GRID: [u8; 3] = [225, 225, 225];

/// One named curve: `(x, y)` points in x order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A plot to render.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub series: Vec<Series>,
}

/// About `n` round tick values covering `[lo, hi]` (steps of 1, 2 or 5 × 10^k).
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn tick_text(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

impl LinePlot {
    /// The plot as a `width × height` picture; y spans 0 (or the lowest value) to the highest.
    pub fn render(&self, width: u32, height: u32) -> Result<RgbImage, VizError> {
        let points = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0f64, f64::MIN);
        for &(x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            return Err(VizError::Empty);
        }
        let (x1, y1) = (x1.max(x0 + 1.0), y1.max(y0 + 1e-3));
        let mut img = RgbImage::from_pixel(width, height, Rgb(WHITE));
        let (yt, xt) = (ticks(y0, y1, 5), ticks(x0, x1, 6));
        let label_w = yt
            .iter()
            .map(|v| text_width(&tick_text(*v)))
            .max()
            .unwrap_or(0);
        let (left, right) = (label_w as i64 + 14, width as i64 - 12);
        let (top, bottom) = (
            LINE_HEIGHT as i64 * 2 + 8,
            height as i64 - 2 * LINE_HEIGHT as i64 - 10,
        );
        if right - left < 20 || bottom - top < 20 {
            return Err(VizError::TooSmall { width, height });
        }
        let px = |x: f64| left + ((x - x0) / (x1 - x0) * (right - left) as f64).round() as i64;
        let py = |y: f64| bottom - ((y - y0) / (y1 - y0) * (bottom - top) as f64).round() as i64;
        for &v in &yt {
            line(&mut img, (left, py(v)), (right, py(v)), 1, GRID);
            let t = tick_text(v);
            let x = left - 6 - text_width(&t) as i64;
            draw_text(&mut img, x, py(v) - LINE_HEIGHT as i64 / 2, &t, BLACK);
        }
        for &v in &xt {
            line(&mut img, (px(v), bottom), (px(v), bottom + 4), 1, BLACK);
            let t = tick_text(v);
            let x = px(v) - text_width(&t) as i64 / 2;
            draw_text(&mut img, x, bottom + 6, &t, BLACK);
        }
        line(&mut img, (left, top), (left, bottom), 1, BLACK);
        line(&mut img, (left, bottom), (right, bottom), 1, BLACK);
        let xl = (left + right) / 2 - text_width(&self.x_label) as i64 / 2;
        draw_text(
            &mut img,
            xl,
            bottom + 8 + LINE_HEIGHT as i64,
            &self.x_label,
            BLACK,
        );
        draw_text(&mut img, left, 4, &self.title, BLACK);
        self.draw_series(&mut img, left, &|x, y| (px(x), py(y)));
        Ok(img)
    }

    /// Every series as a 2-px polyline (a dot when it has one point), and its legend entry
    /// under the title starting at `left`.
    fn draw_series(&self, img: &mut RgbImage, left: i64, to_px: &dyn Fn(f64, f64) -> (i64, i64)) {
        let mut lx = left;
        for (i, s) in self.series.iter().enumerate() {
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            let pts: Vec<(i64, i64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| to_px(x, y))
                .collect();
            for pair in pts.windows(2) {
                line(img, pair[0], pair[1], 2, colour);
            }
            if let [(x, y)] = pts[..] {
                fill_rect(img, x - 2, y - 2, x + 3, y + 3, colour);
            }
            // Legend entry: a short thick stroke and the name, on the line under the title.
            let ly = 8 + LINE_HEIGHT as i64 + LINE_HEIGHT as i64 / 2;
            fill_rect(img, lx, ly - 1, lx + 20, ly + 2, colour);
            lx = draw_text(img, lx + 24, ly - LINE_HEIGHT as i64 / 2, &s.name, BLACK);
            lx += 2 * CHAR_WIDTH as i64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let text = |v: Vec<f64>| v.into_iter().map(tick_text).collect::<Vec<_>>();
        assert_eq!(
            text(ticks(0.0, 1.0, 5)),
            ["0", "0.2", "0.4", "0.6", "0.8", "1"]
        );
        assert_eq!(text(ticks(0.0, 160.0, 6)), ["0", "50", "100", "150"]);
        assert_eq!(
            text(ticks(-0.3, 0.1, 4)),
            ["-0.3", "-0.2", "-0.1", "0", "0.1"]
        );
    }

    #[test]
    fn curves_are_drawn_in_their_colours_with_a_legend() {
        let plot = LinePlot {
            title: "curriculum".into(),
            x_label: "step".into(),
            series: vec![
                Series {
                    name: "IoU".into(),
                    points: (0..50).map(|i| (i as f64, 0.8 - i as f64 * 0.01)).collect(),
                },
                Series {
                    name: "\u{3bb}".into(),
                    points: (0..50).map(|i| (i as f64, i as f64 * 0.02)).collect(),
                },
            ],
        };
        let img = plot.render(480, 300).unwrap();
        let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
        assert!(count(SERIES_COLOURS[0]) > 200, "first curve and its legend");
        assert!(
            count(SERIES_COLOURS[1]) > 200,
            "second curve and its legend"
        );
        assert!(matches!(
            LinePlot {
                series: vec![],
                ..plot.clone()
            }
            .render(480, 300),
            Err(VizError::Empty)
        ));
        assert!(matches!(
            plot.render(30, 30),
            Err(VizError::TooSmall { .. })
        ));
    }
}
