//! PIL's `Image.transform(size, AFFINE, …)` and `Image.rotate` with BILINEAR or BICUBIC
//! resampling and a fill colour, in the double arithmetic of libImaging's `Geometry.c`
//! (`affine_transform`, `bilinear_filter32RGB`, `bicubic_filter32RGB`): each output pixel
//! centre is mapped into the input; outside it the pixel keeps the fill colour.

use super::{Clip, Resample};

/// Border added around a plane so that every neighbour index of a sample is in range: the
/// bicubic 4x4 neighbourhood starts up to 2 pixels before the frame and ends up to 2 after.
const PAD: usize = 2;

/// Geometry.c clamps a neighbour's column into the frame, and takes the previous row's value
/// for a row outside it, which for every row that can occur is the clamped row's value. So a
/// plane padded by replicating its edges gives the same neighbours without clamping.
fn pad(src: &[u8], h: usize, w: usize, dst: &mut [u8]) {
    let pw = w + 2 * PAD;
    for (py, out) in dst.chunks_exact_mut(pw).enumerate() {
        let y = py.saturating_sub(PAD).min(h - 1);
        let row = &src[y * w..(y + 1) * w];
        out[..PAD].fill(row[0]);
        out[PAD..PAD + w].copy_from_slice(row);
        out[PAD + w..].fill(row[w - 1]);
    }
}

/// Where one output pixel samples the padded input: the index of the first (top-left)
/// neighbour of its 2x2 (bilinear) or 4x4 (bicubic) neighbourhood and the fractional offsets;
/// `None` outside the input (the pixel keeps the fill colour).
#[derive(Clone, Copy)]
struct Sample {
    first: usize,
    dx: f64,
    dy: f64,
}

/// The sample of every output pixel of an `h x w` frame under the (output -> input) matrix.
fn samples(a: [f64; 6], h: usize, w: usize, resample: Resample) -> Vec<Option<Sample>> {
    let pw = w + 2 * PAD;
    // Bicubic starts one neighbour up and left.
    let back = match resample {
        Resample::Bilinear => 0,
        Resample::Bicubic => 1,
    };
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let xin = x as f64 + 0.5;
            let yin = y as f64 + 0.5;
            let xx = a[0] * xin + a[1] * yin + a[2];
            let yy = a[3] * xin + a[4] * yin + a[5];
            // Also false for NaN, which the C comparisons let through; a matrix from a finite
            // angle, shear or shift never makes one.
            if !(xx >= 0.0 && xx < w as f64 && yy >= 0.0 && yy < h as f64) {
                out.push(None);
                continue;
            }
            let (xx, yy) = (xx - 0.5, yy - 0.5);
            let (fx, fy) = (xx.floor(), yy.floor());
            // fx, fy >= -1, so the first neighbour is at least PAD - 2 = 0 in the padded plane.
            let col = (fx as i64 + (PAD - back) as i64) as usize;
            let row = (fy as i64 + (PAD - back) as i64) as usize;
            out.push(Some(Sample {
                first: row * pw + col,
                dx: xx - fx,
                dy: yy - fy,
            }));
        }
    }
    out
}

/// `BILINEAR` of Geometry.c: `a + (b − a)·d`, rows first, truncated.
#[inline(always)]
fn bilinear(src: &[u8], pw: usize, s: &Sample) -> u8 {
    let lerp = |at: usize| {
        let (a, b) = (i32::from(src[at]), i32::from(src[at + 1]));
        f64::from(a) + f64::from(b - a) * s.dx
    };
    let (v1, v2) = (lerp(s.first), lerp(s.first + pw));
    (v1 + (v2 - v1) * s.dy) as u8
}

/// `BICUBIC` of Geometry.c (a = −1 in Horner form) on four levels: the coefficients are
/// integer sums there.
#[inline(always)]
fn cubic_int(v: &[u8], d: f64) -> f64 {
    let [v0, v1, v2, v3] = [0, 1, 2, 3].map(|i| i32::from(v[i]));
    let p1 = f64::from(v1);
    let p2 = f64::from(-v0 + v2);
    let p3 = f64::from(2 * (v0 - v1) + v2 - v3);
    let p4 = f64::from(-v0 + v1 - v2 + v3);
    p1 + d * (p2 + d * (p3 + d * p4))
}

/// The same on four doubles (the vertical pass), in C's evaluation order.
#[inline(always)]
fn cubic(v: [f64; 4], d: f64) -> f64 {
    let p1 = v[1];
    let p2 = -v[0] + v[2];
    let p3 = 2.0 * (v[0] - v[1]) + v[2] - v[3];
    let p4 = -v[0] + v[1] - v[2] + v[3];
    p1 + d * (p2 + d * (p3 + d * p4))
}

#[inline(always)]
fn bicubic(src: &[u8], pw: usize, s: &Sample) -> u8 {
    let row = |r: usize| {
        let at = s.first + r * pw;
        cubic_int(&src[at..at + 4], s.dx)
    };
    let v = cubic([row(0), row(1), row(2), row(3)], s.dy);
    if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        v as u8
    }
}

/// `Image.transform(size, Image.AFFINE, a, resample, fillcolor=fill)` on every frame; `a` maps
/// output pixel centres to input coordinates.
pub(crate) fn affine(clip: &mut Clip, a: [f64; 6], resample: Resample, fill: [u8; 3]) {
    let (t, h, w) = (clip.t, clip.h, clip.w);
    if h == 0 || w == 0 {
        return;
    }
    let samples = samples(a, h, w, resample);
    let pw = w + 2 * PAD;
    let mut src = vec![0u8; (h + 2 * PAD) * pw];
    for (p, plane) in clip.planes().enumerate() {
        // Planes are channel-major.
        let fill = fill[p / t];
        pad(plane, h, w, &mut src);
        for (v, s) in plane.iter_mut().zip(&samples) {
            *v = match (s, resample) {
                (None, _) => fill,
                (Some(s), Resample::Bilinear) => bilinear(&src, pw, s),
                (Some(s), Resample::Bicubic) => bicubic(&src, pw, s),
            };
        }
    }
}

/// Python's float `%`: the result takes the divisor's sign.
fn py_mod(x: f64, m: f64) -> f64 {
    let r = x % m;
    if r == 0.0 {
        0.0f64.copysign(m)
    } else if (r < 0.0) != (m < 0.0) {
        r + m
    } else {
        r
    }
}

/// Python's `round(x, 15)`: correctly rounded to 15 decimals, then back to the nearest double.
fn round15(x: f64) -> f64 {
    format!("{x:.15}").parse().unwrap_or(x)
}

/// Image.transpose of one square or any plane: ROTATE_90 (quarter turns counter-clockwise 1),
/// ROTATE_180 (2), ROTATE_270 (3).
fn quarter_turns(clip: &mut Clip, turns: u8) {
    let (h, w) = (clip.h, clip.w);
    let mut src = vec![0u8; h * w];
    for plane in clip.planes() {
        src.copy_from_slice(plane);
        for y in 0..h {
            for x in 0..w {
                // turns 1 and 3 are only used on square frames (h == w).
                let (sy, sx) = match turns {
                    1 => (x, w - 1 - y),
                    2 => (h - 1 - y, w - 1 - x),
                    _ => (h - 1 - x, y),
                };
                plane[y * w + x] = src[sy * w + sx];
            }
        }
    }
}

/// `Image.rotate(degrees, resample, fillcolor=fill)` (counter-clockwise about the centre, same
/// size) on every frame, with PIL's shortcuts: 0 is a copy, 180 and (square frames) 90 and 270
/// are transpositions.
pub(crate) fn rotate(clip: &mut Clip, degrees: f64, resample: Resample, fill: [u8; 3]) {
    let angle = py_mod(degrees, 360.0);
    if angle == 0.0 {
        return;
    }
    if angle == 180.0 {
        return quarter_turns(clip, 2);
    }
    if (angle == 90.0 || angle == 270.0) && clip.w == clip.h {
        return quarter_turns(clip, if angle == 90.0 { 1 } else { 3 });
    }
    let (cx, cy) = (clip.w as f64 / 2.0, clip.h as f64 / 2.0);
    // math.radians multiplies by pi / 180.
    let rad = -(angle * (std::f64::consts::PI / 180.0));
    let (cos, sin) = (round15(rad.cos()), round15(rad.sin()));
    let neg_sin = round15(-rad.sin());
    let mut m = [cos, sin, 0.0, neg_sin, cos, 0.0];
    // The centre to the origin, rotated, and back, as Image.rotate composes it.
    m[2] = m[0] * -cx + m[1] * -cy + 0.0;
    m[5] = m[3] * -cx + m[4] * -cy + 0.0;
    m[2] += cx;
    m[5] += cy;
    affine(clip, m, resample, fill);
}
