//! Decoded FFmpeg frames to tightly packed RGB24 rows (resized on the way when asked).

use std::path::Path;

use ff::software::scaling;
use ff::util::frame::video::Video as VideoFrame;
use ffmpeg_next as ff;

use super::DecodeError;

pub(super) fn undecodable(path: &Path, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Undecodable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// RGB24 conversion of decoded frames into tightly packed rows.
pub(super) struct Converter {
    scaler: Option<(scaling::Context, ff::format::Pixel, u32, u32)>,
    out_h: u32,
    out_w: u32,
    rgb: VideoFrame,
}

impl Converter {
    pub(super) fn new(out_h: u32, out_w: u32) -> Self {
        Self {
            scaler: None,
            out_h,
            out_w,
            rgb: VideoFrame::empty(),
        }
    }

    pub(super) fn size(&self) -> (u32, u32) {
        (self.out_h, self.out_w)
    }

    /// Bicubic is the CLI's default, so a same-size conversion gives frames byte-equal to
    /// `ffmpeg -pix_fmt rgb24` (tested); a resize on decode is bilinear like the reference's
    /// `interpolate(mode="bilinear")` that it replaces.
    fn flags(&self, in_w: u32, in_h: u32) -> scaling::Flags {
        if (in_w, in_h) == (self.out_w, self.out_h) {
            scaling::Flags::BICUBIC
        } else {
            scaling::Flags::BILINEAR
        }
    }

    pub(super) fn convert(
        &mut self,
        path: &Path,
        frame: &VideoFrame,
    ) -> Result<Vec<u8>, DecodeError> {
        let key = (frame.format(), frame.width(), frame.height());
        let stale = !matches!(&self.scaler, Some((_, f, w, h)) if (*f, *w, *h) == key);
        if stale {
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                ff::format::Pixel::RGB24,
                self.out_w,
                self.out_h,
                self.flags(key.1, key.2),
            )
            .map_err(|e| undecodable(path, e))?;
            self.scaler = Some((ctx, key.0, key.1, key.2));
        }
        let (ctx, ..) = self.scaler.as_mut().expect("scaler set above");
        ctx.run(frame, &mut self.rgb)
            .map_err(|e| undecodable(path, e))?;
        // swscale pads rows to its alignment; copy row by row into a packed buffer.
        let row = self.out_w as usize * 3;
        let stride = self.rgb.stride(0);
        let plane = self.rgb.data(0);
        let mut out = Vec::with_capacity(row * self.out_h as usize);
        for y in 0..self.out_h as usize {
            out.extend_from_slice(&plane[y * stride..y * stride + row]);
        }
        Ok(out)
    }
}
