//! The reference's level functions (`LEVEL_TO_ARG`): a clipped magnitude (0–10, or up to
//! `mmax`) and the drawn sign to the op's argument, with the same float operations in the same
//! order so that the arguments are equal to the bit.

use super::{OpKind, LEVEL_DENOM};

/// The argument an op runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LevelArg {
    /// AutoContrast, Equalize, Invert.
    None,
    /// Degrees (Rotate), enhance factor, shear factor, or translation as a fraction of the size.
    Float(f64),
    /// Bits kept (Posterize), threshold (Solarize) or addend (SolarizeAdd).
    Int(i64),
}

/// `-v` when the draw says so (`_randomly_negate`).
fn signed(v: f64, negate: bool) -> f64 {
    if negate {
        -v
    } else {
        v
    }
}

/// Python's `int()` of a non-negative float: truncation.
fn int(v: f64) -> i64 {
    v as i64
}

/// The argument of `op` at `magnitude` (already clipped) with sign `negate` (read by the signed
/// ops only).
pub(crate) fn level_arg(op: OpKind, magnitude: f64, negate: bool) -> LevelArg {
    let level = magnitude / LEVEL_DENOM;
    match op {
        OpKind::AutoContrast | OpKind::Equalize | OpKind::Invert => LevelArg::None,
        OpKind::Rotate => LevelArg::Float(signed(level * 30.0, negate)),
        OpKind::ShearX | OpKind::ShearY => LevelArg::Float(signed(level * 0.3, negate)),
        // The reference's default translate_pct; creat_auto_augmentation sets no other.
        OpKind::TranslateXRel | OpKind::TranslateYRel => {
            LevelArg::Float(signed(level * 0.45, negate))
        }
        OpKind::Color | OpKind::Contrast | OpKind::Brightness | OpKind::Sharpness => {
            LevelArg::Float(level * 1.8 + 0.1)
        }
        OpKind::ColorIncreasing
        | OpKind::ContrastIncreasing
        | OpKind::BrightnessIncreasing
        | OpKind::SharpnessIncreasing => {
            // Away from the identity factor 1 towards 0 or 2, kept >= 0.1.
            let f = 1.0 + signed(level * 0.9, negate);
            LevelArg::Float(if f > 0.1 { f } else { 0.1 })
        }
        OpKind::Posterize => LevelArg::Int(int(level * 4.0)),
        OpKind::PosterizeIncreasing => LevelArg::Int(4 - int(level * 4.0)),
        OpKind::Solarize => LevelArg::Int(int(level * 256.0)),
        OpKind::SolarizeIncreasing => LevelArg::Int(256 - int(level * 256.0)),
        OpKind::SolarizeAdd => LevelArg::Int(int(level * 110.0)),
    }
}
