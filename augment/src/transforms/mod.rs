//! Transforms on float clips `(3, T, H, W)` in [0, 1] (RandAugment among them), plus the
//! normalised-clip and batch augmentations of supervised training (random erasing,
//! mixup/CutMix).

pub mod clip;
pub mod color;
pub mod color_inplace;
pub mod mixup;
pub mod rand_augment;
pub mod random_erasing;
pub mod spatial;
pub mod temporal;
