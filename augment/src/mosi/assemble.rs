//! Writing one clip into the output: rows copied out of precomputed planes (or a jittered clip
//! buffer), with the static mask folded into the copy.
//!
//! A static-masked frame is the still frame everywhere except a square box, where it is the
//! frame itself. So each output row is at most three segments, each a straight copy from one of
//! two source rows; no frame is written twice.

use super::source::Normalize;

/// docs/mosi.md#static-mask: outside the box every frame shows frame `still`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MaskBox {
    pub still: usize,
    /// Top-left corner and side of the box that keeps moving.
    pub x0: usize,
    pub y0: usize,
    pub side: usize,
}

/// The `(start, len, from_still)` column segments of output row `y` of a frame.
fn segments(mask: Option<MaskBox>, y: usize, s: usize) -> [(usize, usize, bool); 3] {
    match mask {
        Some(m) if (m.y0..m.y0 + m.side).contains(&y) => [
            (0, m.x0, true),
            (m.x0, m.side, false),
            (m.x0 + m.side, s - m.x0 - m.side, true),
        ],
        Some(_) => [(0, s, true), (0, 0, true), (0, 0, true)],
        None => [(0, s, false), (0, 0, false), (0, 0, false)],
    }
}

/// Frame origins in a `(3, H, W)` plane set: row and column of each frame's top-left pixel.
pub(super) struct Windows<'a> {
    pub planes: &'a [f32],
    pub plane_w: usize,
    pub origins: &'a [(usize, usize)],
}

/// Copies a clip out of a plane set.
///
/// # Shapes
/// `dst`: `(3, T, S, S)` with `T = origins.len()`; planes `(3, H, W)`.
pub(super) fn copy_clip(dst: &mut [f32], src: &Windows, s: usize, mask: Option<MaskBox>) {
    let t = src.origins.len();
    let plane_len = src.planes.len() / 3;
    for (c, dst_c) in dst.chunks_exact_mut(t * s * s).enumerate() {
        let plane = &src.planes[c * plane_len..(c + 1) * plane_len];
        for (ti, frame) in dst_c.chunks_exact_mut(s * s).enumerate() {
            let still = mask.map_or(ti, |m| m.still);
            for (y, row) in frame.chunks_exact_mut(s).enumerate() {
                for (x0, len, from_still) in segments(mask, y, s) {
                    if len == 0 {
                        continue;
                    }
                    let (r, col) = src.origins[if from_still { still } else { ti }];
                    let at = (r + y) * src.plane_w + col + x0;
                    row[x0..x0 + len].copy_from_slice(&plane[at..at + len]);
                }
            }
        }
    }
}

/// Normalises a `(3, T, S, S)` clip in [0, 1] into `dst`, mirrored (the reference's clip flip)
/// and masked as asked, in that order.
///
/// # Shapes
/// `dst`, `clip`: `(3, T, S, S)`.
pub(super) fn finish_clip(
    dst: &mut [f32],
    clip: &[f32],
    t: usize,
    s: usize,
    norm: &Normalize,
    mirror: bool,
    mask: Option<MaskBox>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { finish_clip_avx2(dst, clip, t, s, norm, mirror, mask) };
        return;
    }
    finish(dst, clip, t, s, norm, mirror, mask);
}

/// [`finish`] compiled for AVX2: twice the lanes for the division of the normalisation; the same
/// IEEE operations, so the same values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn finish_clip_avx2(
    dst: &mut [f32],
    clip: &[f32],
    t: usize,
    s: usize,
    norm: &Normalize,
    mirror: bool,
    mask: Option<MaskBox>,
) {
    finish(dst, clip, t, s, norm, mirror, mask);
}

#[inline(always)]
fn finish(
    dst: &mut [f32],
    clip: &[f32],
    t: usize,
    s: usize,
    norm: &Normalize,
    mirror: bool,
    mask: Option<MaskBox>,
) {
    let frame = s * s;
    for (c, dst_c) in dst.chunks_exact_mut(t * frame).enumerate() {
        let clip_c = &clip[c * t * frame..(c + 1) * t * frame];
        for (ti, out) in dst_c.chunks_exact_mut(frame).enumerate() {
            let still = mask.map_or(ti, |m| m.still);
            for (y, row) in out.chunks_exact_mut(s).enumerate() {
                for (x0, len, from_still) in segments(mask, y, s) {
                    if len == 0 {
                        continue;
                    }
                    let f = if from_still { still } else { ti };
                    let src = &clip_c[f * frame + y * s..f * frame + (y + 1) * s];
                    let out = &mut row[x0..x0 + len];
                    if mirror {
                        // Output column x shows clip column s − 1 − x.
                        let src = &src[s - x0 - len..s - x0];
                        for (o, &v) in out.iter_mut().zip(src.iter().rev()) {
                            *o = norm.apply(c, v);
                        }
                    } else {
                        for (o, &v) in out.iter_mut().zip(&src[x0..x0 + len]) {
                            *o = norm.apply(c, v);
                        }
                    }
                }
            }
        }
    }
}
