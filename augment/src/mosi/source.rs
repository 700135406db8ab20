//! The image the windows of one `generate` call slide over, converted once into float planes.
//!
//! Every clip of an image is cut from the same (optionally standardised) image, and the per-pixel
//! part of the pipeline (uint8 -> [0, 1], grayscale, normalisation, mirroring) does not depend on
//! where the window is. So each variant the clips need is computed once for the whole image, and
//! a clip is then a set of row copies out of it. The float operations are those of the tensor
//! pipeline (`u8 as f32 / 255`, luma in channel order, `(x − mean) / std`), so values are
//! bit-identical.

/// Which values a plane set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    /// `(x/255 − mean) / std` per channel.
    Color,
    /// `(luma(x/255) − mean) / std`: grayscale, then normalisation.
    Gray,
    /// `x/255`: input of the colour jitter.
    Unit,
}

impl Tone {
    fn index(self) -> usize {
        match self {
            Tone::Color => 0,
            Tone::Gray => 1,
            Tone::Unit => 2,
        }
    }
}

/// Per-channel normalisation constants, as the float32 tensors the reference pipeline uses.
#[derive(Debug, Clone, Copy)]
pub(super) struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalize {
    #[inline(always)]
    pub fn apply(&self, c: usize, x: f32) -> f32 {
        (x - self.mean[c]) / self.std[c]
    }
}

/// uint8 -> [0, 1] exactly as `to_kind(Float) / 255.0` on a tensor.
#[inline(always)]
pub(super) fn unit(v: u8) -> f32 {
    v as f32 / 255.0
}

/// ITU-R 601 luma in [`crate::transforms::color::luma`]'s order.
#[inline(always)]
fn luma(r: f32, g: f32, b: f32) -> f32 {
    r * 0.299 + g * 0.587 + b * 0.114
}

/// One (possibly standardised) image and the plane sets computed from it so far.
pub(super) struct Source {
    pub h: usize,
    pub w: usize,
    /// `(H, W, 3)` uint8, row-major.
    rgb: Vec<u8>,
    /// `(3, H, W)` float planes per (tone, mirrored), built on first use.
    planes: [Option<Vec<f32>>; 6],
}

impl Source {
    /// # Shapes
    /// `rgb`: `H·W·3` bytes of an `(H, W, 3)` image.
    pub fn new(rgb: Vec<u8>, h: usize, w: usize) -> Self {
        debug_assert_eq!(rgb.len(), h * w * 3);
        Self {
            h,
            w,
            rgb,
            planes: Default::default(),
        }
    }

    /// The `(3, H, W)` planes of `tone`, of the image or of its mirror image (columns reversed).
    pub fn planes(&mut self, tone: Tone, mirrored: bool, norm: &Normalize) -> &[f32] {
        let slot = tone.index() * 2 + mirrored as usize;
        if self.planes[slot].is_none() {
            self.planes[slot] = Some(self.build(tone, mirrored, norm));
        }
        self.planes[slot].as_deref().unwrap_or_default()
    }

    /// Channel by channel, row by row, appended in order: no zero-fill pass over the planes.
    fn build(&self, tone: Tone, mirrored: bool, norm: &Normalize) -> Vec<f32> {
        let (h, w) = (self.h, self.w);
        let n = h * w;
        let mut out = Vec::with_capacity(3 * n);
        // 256-entry tables instead of one conversion per pixel.
        let units: [f32; 256] = std::array::from_fn(|v| unit(v as u8));
        let gray: Vec<f32> = match tone {
            Tone::Gray => self
                .rgb
                .chunks_exact(3)
                .map(|px| {
                    luma(
                        units[px[0] as usize],
                        units[px[1] as usize],
                        units[px[2] as usize],
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        for c in 0..3 {
            let same_as_first = norm.mean[c] == norm.mean[0] && norm.std[c] == norm.std[0];
            if tone == Tone::Gray && c > 0 && same_as_first {
                // Grey planes differ only by their channel's normalisation.
                out.extend_from_within(0..n);
                continue;
            }
            let lut: [f32; 256] = std::array::from_fn(|v| match tone {
                Tone::Unit => units[v],
                _ => norm.apply(c, units[v]),
            });
            for (y, row) in self.rgb.chunks_exact(w * 3).enumerate() {
                let start = out.len();
                match tone {
                    Tone::Gray => {
                        out.extend(gray[y * w..(y + 1) * w].iter().map(|&g| norm.apply(c, g)))
                    }
                    _ => out.extend(row.chunks_exact(3).map(|px| lut[px[c] as usize])),
                }
                if mirrored {
                    out[start..].reverse();
                }
            }
        }
        out
    }
}
