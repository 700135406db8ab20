//! Pictures of training views: clips back to RGB frames, animated GIFs, PNG grids.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgb, RgbImage, RgbaImage};
use tch::{Kind, Tensor};

/// Why a picture could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum VisualizeError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {source}")]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("expected a (3, T, H, W) clip, got {0:?}")]
    BadClip(Vec<i64>),
    #[error("nothing to draw")]
    Empty,
}

/// Undoes normalisation and returns one RGB image per frame.
///
/// # Shapes
/// `clip`: `(3, T, H, W)` float, normalised with `mean`/`std`.
pub fn clip_frames(
    clip: &Tensor,
    mean: [f64; 3],
    std: [f64; 3],
) -> Result<Vec<RgbImage>, VisualizeError> {
    let size = clip.size();
    if size.len() != 4 || size[0] != 3 {
        return Err(VisualizeError::BadClip(size));
    }
    let (t, h, w) = (size[1], size[2], size[3]);
    let m = Tensor::from_slice(&mean.map(|v| v as f32)).view([3, 1, 1, 1]);
    let s = Tensor::from_slice(&std.map(|v| v as f32)).view([3, 1, 1, 1]);
    let rgb = ((clip.to_device(tch::Device::Cpu).to_kind(Kind::Float) * s + m) * 255.0)
        .round()
        .clamp(0.0, 255.0);
    // (3, T, H, W) -> (T, H, W, 3) bytes.
    let bytes = rgb.permute([1, 2, 3, 0]).contiguous().to_kind(Kind::Uint8);
    let flat =
        Vec::<u8>::try_from(bytes.view([-1])).map_err(|_| VisualizeError::BadClip(size.clone()))?;
    let frame_len = (h * w * 3) as usize;
    (0..t as usize)
        .map(|i| {
            RgbImage::from_raw(
                w as u32,
                h as u32,
                flat[i * frame_len..(i + 1) * frame_len].to_vec(),
            )
            .ok_or_else(|| VisualizeError::BadClip(size.clone()))
        })
        .collect()
}

/// Writes frames as a looping animated GIF, `delay_ms` per frame.
pub fn write_gif(path: &Path, frames: &[RgbImage], delay_ms: u32) -> Result<(), VisualizeError> {
    let io = |source| VisualizeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let enc = |source| VisualizeError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut gif = GifEncoder::new_with_speed(BufWriter::new(file), 10);
    gif.set_repeat(Repeat::Infinite).map_err(enc)?;
    let frames = frames.iter().map(|f| {
        let rgba: RgbaImage = image::DynamicImage::ImageRgb8(f.clone()).to_rgba8();
        Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(delay_ms, 1))
    });
    gif.encode_frames(frames).map_err(enc)
}

/// Lays images out in a grid (rows of equal-size tiles, 2-pixel white gutters).
pub fn grid(rows: &[Vec<RgbImage>]) -> Result<RgbImage, VisualizeError> {
    let first = rows.iter().flatten().next().ok_or(VisualizeError::Empty)?;
    let (tw, th) = (first.width(), first.height());
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let gap = 2;
    let mut out = RgbImage::from_pixel(
        cols * (tw + gap) + gap,
        rows.len() as u32 * (th + gap) + gap,
        Rgb([255, 255, 255]),
    );
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            image::imageops::replace(
                &mut out,
                tile,
                (gap + c as u32 * (tw + gap)) as i64,
                (gap + r as u32 * (th + gap)) as i64,
            );
        }
    }
    Ok(out)
}

/// Writes a PNG.
pub fn write_png(path: &Path, img: &RgbImage) -> Result<(), VisualizeError> {
    img.save(path).map_err(|source| VisualizeError::Encode {
        path: path.to_path_buf(),
        source,
    })
}

/// Distinct colours for the views of a crop.
pub const VIEW_COLOURS: [[u8; 3]; 4] =
    [[255, 60, 60], [60, 140, 255], [60, 220, 90], [240, 200, 40]];

/// Draws the outline of the box `[x0, x1) x [y0, y1)` (pixels, clipped to the image), 2 px wide.
pub fn draw_box(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, x1) = (x0.clamp(0, w - 1), (x1 - 1).clamp(0, w - 1));
    let (y0, y1) = (y0.clamp(0, h - 1), (y1 - 1).clamp(0, h - 1));
    for d in 0..2 {
        for x in x0..=x1 {
            for y in [(y0 + d).min(y1), (y1 - d).max(y0)] {
                img.put_pixel(x as u32, y as u32, Rgb(colour));
            }
        }
        for y in y0..=y1 {
            for x in [(x0 + d).min(x1), (x1 - d).max(x0)] {
                img.put_pixel(x as u32, y as u32, Rgb(colour));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_round_trips_through_gif_and_png() {
        let dir = std::env::temp_dir().join(format!("tada-vis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A (3, 4, 6, 10) clip whose frames differ, normalised with mean 0.5, std 0.25.
        let raw = Tensor::arange(3 * 4 * 6 * 10, (Kind::Float, tch::Device::Cpu))
            .view([3, 4, 6, 10])
            .remainder(256.0)
            / 255.0;
        let clip = (&raw - 0.5) / 0.25;
        let frames = clip_frames(&clip, [0.5; 3], [0.25; 3]).unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!((frames[0].width(), frames[0].height()), (10, 6));
        let expected = (raw.get(0).get(2).get(3).get(7).double_value(&[]) * 255.0).round() as u8;
        assert_eq!(frames[2].get_pixel(7, 3)[0], expected);

        let gif = dir.join("clip.gif");
        write_gif(&gif, &frames, 80).unwrap();
        let decoded =
            image::codecs::gif::GifDecoder::new(std::io::BufReader::new(File::open(&gif).unwrap()))
                .unwrap();
        use image::AnimationDecoder;
        let back = decoded.into_frames().collect_frames().unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back[0].buffer().dimensions(), (10, 6));

        let png = dir.join("grid.png");
        write_png(
            &png,
            &grid(&[frames.clone(), frames[..2].to_vec()]).unwrap(),
        )
        .unwrap();
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (4 * 12 + 2, 2 * 8 + 2));
        assert!(matches!(
            clip_frames(
                &Tensor::zeros([2, 2], (Kind::Float, tch::Device::Cpu)),
                [0.0; 3],
                [1.0; 3]
            ),
            Err(VisualizeError::BadClip(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn boxes_are_drawn_on_their_outline_only() {
        let mut img = RgbImage::new(20, 10);
        draw_box(&mut img, 5, 2, 15, 8, [255, 0, 0]);
        assert_eq!(img.get_pixel(5, 2)[0], 255);
        assert_eq!(img.get_pixel(14, 7)[0], 255);
        assert_eq!(img.get_pixel(10, 5)[0], 0, "inside stays untouched");
        assert_eq!(img.get_pixel(2, 2)[0], 0, "outside stays untouched");
        draw_box(&mut img, -5, -5, 40, 40, [0, 255, 0]);
        assert_eq!(img.get_pixel(0, 0)[1], 255, "clipped to the image");
    }
}
