//! Checks shared by the tests that make pictures (MoSI grids, ParamCrop views, the curriculum
//! plot): the pictures decode, their tiles are large, and their labels and boxes left pixels.

use std::collections::BTreeSet;
use std::path::Path;

use image::{GenericImageView, RgbImage};
use tada::tasks::contrastive::curriculum::CURRICULUM_PNG;
use tada::viz::plot::SERIES_COLOURS;
use tada::viz::views::VIEW_COLOURS;

/// Gap below every tile row of a grid.
const GAP: u32 = 4;

fn distinct(img: &RgbImage, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> usize {
    let set: BTreeSet<[u8; 3]> = xs
        .flat_map(|x| ys.clone().map(move |y| (x, y)))
        .map(|(x, y)| img.get_pixel(x, y).0)
        .collect();
    set.len()
}

/// A grid of `rows` rows of `tile`-px tiles (the rows end at the bottom of the picture) whose
/// row-label strip on the left has text in every row.
pub fn assert_labelled_rows(img: &RgbImage, rows: u32, tile: u32) {
    let (w, h) = img.dimensions();
    assert!(
        h >= rows * (tile + GAP),
        "{rows} rows of {tile} px in {w}x{h}"
    );
    for r in 0..rows {
        let y0 = h - (rows - r) * (tile + GAP);
        assert!(
            distinct(img, 0..60.min(w), y0..y0 + tile) >= 2,
            "row {r}'s label strip is uniform"
        );
    }
}

/// The `(tag, PNG)` images of `tag` in the first event file of `dir`, with their steps.
fn logged(dir: &Path, tag: &str) -> (Vec<i64>, Vec<RgbImage>) {
    let events = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let images = tada::train::tensorboard::reader::images(&events).unwrap();
    let mine: Vec<_> = images.iter().filter(|i| i.0 == tag).collect();
    let pngs = mine
        .iter()
        .map(|i| image::load_from_memory(&i.4).unwrap().to_rgb8())
        .collect();
    (mine.iter().map(|i| i.1).collect(), pngs)
}

/// MoSI grids of `rows` labelled rows (32-px clips enlarged to 128 px) at `steps`.
pub fn assert_mosi_grids_logged(dir: &Path, steps: &[i64], rows: u32) {
    let (at, pngs) = logged(dir, "mosi/clips");
    assert_eq!(at, steps);
    for png in &pngs {
        assert_labelled_rows(png, rows, 128);
    }
}

/// ParamCrop views at `steps`: two rows of four 40-px frames enlarged to 160 px under a legend,
/// with both views' boxes in their colours.
pub fn assert_views_logged(dir: &Path, steps: &[i64]) {
    let (at, pngs) = logged(dir, "paramcrop/views");
    assert_eq!(at, steps);
    for png in &pngs {
        let (w, h) = png.dimensions();
        assert!(w >= 4 * 160 && h >= 2 * 160, "{w}x{h}");
        assert!(distinct(png, 0..w, 0..20) >= 3, "the legend is blank");
        let frames = png.view(0, 24, w, h - 24).to_image();
        for colour in &VIEW_COLOURS[..2] {
            let n = frames.pixels().filter(|p| p.0 == *colour).count();
            assert!(n > 100, "{n} pixels of box colour {colour:?}");
        }
    }
}

/// `paramcrop_curriculum.png` of a contrastive run: IoU and centre distance, and λ only with
/// ParamCrop.
pub fn assert_curriculum_plot(run: &Path, paramcrop: bool) {
    let png = image::open(run.join(CURRICULUM_PNG)).unwrap().to_rgb8();
    let count = |c: [u8; 3]| png.pixels().filter(|p| p.0 == c).count();
    assert!(count(SERIES_COLOURS[0]) > 100, "no IoU curve");
    assert!(count(SERIES_COLOURS[1]) > 100, "no centre distance curve");
    assert_eq!(count(SERIES_COLOURS[2]) > 0, paramcrop, "lambda curve");
}
