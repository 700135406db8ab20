//! Transforms on float clips `(3, T, H, W)` in [0, 1], plus the normalised-clip and batch
//! augmentations of supervised training (random erasing, mixup/CutMix).

pub mod clip;
pub mod color;
pub mod color_inplace;
<<<<<<< HEAD
pub mod mixup;
pub mod random_erasing;
=======
pub mod rand_augment;
>>>>>>> h17r
pub mod spatial;
pub mod temporal;
