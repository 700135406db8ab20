//! The lookup-table ops (PIL's `ImageOps` and the reference's `solarize_add`): each builds a
//! 256-entry table per channel plane, from the plane's own histogram where the op needs one,
//! and maps the plane through it. PIL's `point` clips table entries to [0, 255].

use super::Clip;

type Lut = [u8; 256];

fn identity() -> Lut {
    std::array::from_fn(|i| i as u8)
}

fn map(plane: &mut [u8], lut: &Lut) {
    for v in plane {
        *v = lut[*v as usize];
    }
}

fn histogram(plane: &[u8]) -> [u64; 256] {
    let mut h = [0u64; 256];
    for &v in plane {
        h[v as usize] += 1;
    }
    h
}

/// One table for every plane of the clip.
fn map_all(clip: &mut Clip, lut: &Lut) {
    for plane in clip.planes() {
        map(plane, lut);
    }
}

/// `ImageOps.autocontrast` (no cutoff): each plane's darkest level to 0, lightest to 255.
pub(crate) fn autocontrast(clip: &mut Clip) {
    for plane in clip.planes() {
        let h = histogram(plane);
        let lo = h.iter().position(|&c| c > 0).unwrap_or(0);
        let hi = h.iter().rposition(|&c| c > 0).unwrap_or(0);
        if hi <= lo {
            continue;
        }
        let scale = 255.0 / (hi - lo) as f64;
        let offset = -(lo as i64) as f64 * scale;
        let lut: Lut = std::array::from_fn(|ix| {
            // Python's int() truncates toward zero.
            ((ix as f64 * scale + offset) as i64).clamp(0, 255) as u8
        });
        map(plane, &lut);
    }
}

/// `ImageOps.equalize`: each plane's cumulative histogram, in Pillow's integer steps.
pub(crate) fn equalize(clip: &mut Clip) {
    for plane in clip.planes() {
        let h = histogram(plane);
        let used: Vec<u64> = h.iter().copied().filter(|&c| c > 0).collect();
        if used.len() <= 1 {
            continue;
        }
        let step = (used.iter().sum::<u64>() - used[used.len() - 1]) / 255;
        if step == 0 {
            continue;
        }
        let mut n = step / 2;
        let mut lut = identity();
        for (i, entry) in lut.iter_mut().enumerate() {
            *entry = (n / step).min(255) as u8;
            n += h[i];
        }
        map(plane, &lut);
    }
}

/// `ImageOps.invert`.
pub(crate) fn invert(clip: &mut Clip) {
    map_all(clip, &std::array::from_fn(|i| 255 - i as u8));
}

/// `ImageOps.posterize`: keep the `bits` high bits. 8 or more is the identity (the reference
/// skips the call); fewer than 1 gives black, as Pillow before 13 did (Pillow 13 raises).
pub(crate) fn posterize(clip: &mut Clip, bits: i64) {
    if bits >= 8 {
        return;
    }
    let mask = if bits <= 0 {
        0
    } else {
        !((1u8 << (8 - bits)) - 1)
    };
    map_all(clip, &std::array::from_fn(|i| i as u8 & mask));
}

/// `ImageOps.solarize`: levels at or above `threshold` inverted.
pub(crate) fn solarize(clip: &mut Clip, threshold: i64) {
    map_all(
        clip,
        &std::array::from_fn(|i| {
            if (i as i64) < threshold {
                i as u8
            } else {
                255 - i as u8
            }
        }),
    );
}

/// The reference's `solarize_add`: `add` added to levels under 128, capped at 255.
pub(crate) fn solarize_add(clip: &mut Clip, add: i64) {
    map_all(
        clip,
        &std::array::from_fn(|i| {
            if i < 128 {
                (i as i64 + add).clamp(0, 255) as u8
            } else {
                i as u8
            }
        }),
    );
}
