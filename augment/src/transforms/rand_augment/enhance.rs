//! PIL's `ImageEnhance` (Color, Contrast, Brightness, Sharpness): `Image.blend` of a degenerate
//! image and the image by the factor, in libImaging's float32 arithmetic (`Blend.c`), with the
//! degenerate images of `Convert.c` (integer luma) and `Filter.c` (the SMOOTH kernel).

use super::Clip;

/// `Image.blend(degenerate, image, alpha)` for one alpha, as `ImagingBlend` branches on it.
#[derive(Clone, Copy)]
enum Blend {
    /// alpha 0: a copy of the degenerate image.
    Degenerate,
    /// alpha 1: a copy of the image.
    Image,
    /// alpha in [0, 1]: no clipping.
    Interpolate(f32),
    /// Otherwise: clipped to [0, 255].
    Extrapolate(f32),
}

impl Blend {
    /// Pillow passes the Python float to C as `float`.
    fn new(factor: f64) -> Blend {
        let a = factor as f32;
        if a == 0.0 {
            Blend::Degenerate
        } else if a == 1.0 {
            Blend::Image
        } else if (0.0..=1.0).contains(&a) {
            Blend::Interpolate(a)
        } else {
            Blend::Extrapolate(a)
        }
    }

    /// One level: `in1 + alpha·(in2 − in1)` in float32, truncated (C's cast).
    #[inline(always)]
    fn apply(self, degenerate: u8, image: u8) -> u8 {
        let (a, b) = (i32::from(degenerate), i32::from(image));
        match self {
            Blend::Degenerate => degenerate,
            Blend::Image => image,
            Blend::Interpolate(alpha) => (a as f32 + alpha * (b - a) as f32) as u8,
            Blend::Extrapolate(alpha) => {
                let v = a as f32 + alpha * (b - a) as f32;
                if v <= 0.0 {
                    0
                } else if v >= 255.0 {
                    255
                } else {
                    v as u8
                }
            }
        }
    }
}

/// `Convert.c`'s RGB -> L: ITU-R 601-2 luma in 16-bit fixed point, rounded.
#[inline(always)]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// Every plane blended with one constant degenerate level per frame.
fn blend_const(clip: &mut Clip, blend: Blend, level_of_frame: impl Fn(&[&mut [u8]; 3]) -> u8) {
    for f in 0..clip.t {
        let planes = clip.frame(f);
        let d = level_of_frame(&planes);
        for plane in planes {
            for v in plane.iter_mut() {
                *v = blend.apply(d, *v);
            }
        }
    }
}

/// `ImageEnhance.Color`: blend with the frame's luma (as grey).
pub(crate) fn color(clip: &mut Clip, factor: f64) {
    let blend = Blend::new(factor);
    for f in 0..clip.t {
        let [r, g, b] = clip.frame(f);
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let y = luma(*r, *g, *b);
            (*r, *g, *b) = (blend.apply(y, *r), blend.apply(y, *g), blend.apply(y, *b));
        }
    }
}

/// `ImageEnhance.Contrast`: blend with the frame's mean luma, rounded to a level.
pub(crate) fn contrast(clip: &mut Clip, factor: f64) {
    blend_const(clip, Blend::new(factor), |[r, g, b]| {
        let sum: u64 = r
            .iter()
            .zip(g.iter())
            .zip(b.iter())
            .map(|((&r, &g), &b)| u64::from(luma(r, g, b)))
            .sum();
        let count = r.len() as u64;
        let mean = if count == 0 {
            0.0
        } else {
            sum as f64 / count as f64
        };
        // int(mean + 0.5): truncation of a non-negative value.
        (mean + 0.5) as u8
    });
}

/// `ImageEnhance.Brightness`: blend with black.
pub(crate) fn brightness(clip: &mut Clip, factor: f64) {
    blend_const(clip, Blend::new(factor), |_| 0);
}

/// `ImageFilter.SMOOTH` of one plane (`Filter.c`'s 3x3 float path): weights 1 1 1 / 1 5 1 /
/// 1 1 1 over 13, plus 0.5, clipped and truncated; the border rows and columns are copied.
/// Planes under 3x3 come back unchanged.
fn smooth(src: &[u8], dst: &mut [u8], h: usize, w: usize) {
    dst.copy_from_slice(src);
    if h < 3 || w < 3 {
        return;
    }
    // Pillow converts the kernel to float32 and divides it by the float32 scale.
    let k1 = 1.0f32 / 13.0;
    let k5 = 5.0f32 / 13.0;
    let row3 = |row: &[u8], x: usize, kc: f32| {
        f32::from(row[x - 1]) * k1 + f32::from(row[x]) * kc + f32::from(row[x + 1]) * k1
    };
    for y in 1..h - 1 {
        let above = &src[(y - 1) * w..y * w];
        let row = &src[y * w..(y + 1) * w];
        let below = &src[(y + 1) * w..(y + 2) * w];
        let out = &mut dst[y * w + 1..(y + 1) * w - 1];
        for (i, out) in out.iter_mut().enumerate() {
            let x = i + 1;
            // The order of Filter.c: the next row, this row, the previous row.
            let mut ss = 0.5f32;
            ss += row3(below, x, k1);
            ss += row3(row, x, k5);
            ss += row3(above, x, k1);
            *out = ss.clamp(0.0, 255.0) as u8;
        }
    }
}

/// `ImageEnhance.Sharpness`: blend with the SMOOTH-filtered frame.
pub(crate) fn sharpness(clip: &mut Clip, factor: f64) {
    let blend = Blend::new(factor);
    let (h, w) = (clip.h, clip.w);
    let mut smoothed = vec![0u8; h * w];
    for plane in clip.planes() {
        smooth(plane, &mut smoothed, h, w);
        for (v, &d) in plane.iter_mut().zip(&smoothed) {
            *v = blend.apply(d, *v);
        }
    }
}
