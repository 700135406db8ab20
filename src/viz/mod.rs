//! Pictures a person can read: labelled tile grids of MoSI clips, ParamCrop views boxed over
//! their source with a legend, line plots of a run's curriculum, confusion-matrix heat maps.
//! Everything draws into an [`image::RgbImage`]; text comes from a pre-rasterised font, so no
//! font file is needed.

pub mod confusion;
pub mod draw;
pub mod grid;
pub mod plot;
pub mod text;
pub mod views;

use std::path::{Path, PathBuf};

/// Why a picture could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    #[error("nothing to draw")]
    Empty,
    #[error("tiles differ in size: {got:?}, expected {expected:?}")]
    TileSize {
        expected: (u32, u32),
        got: (u32, u32),
    },
    #[error("a {width}x{height} picture is too small for the plot")]
    TooSmall { width: u32, height: u32 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: image::ImageError,
    },
}

/// Writes `img` as a PNG at `path`.
pub fn write_png(path: &Path, img: &image::RgbImage) -> Result<(), VizError> {
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| VizError::Write {
            path: path.to_path_buf(),
            source,
        })
}
