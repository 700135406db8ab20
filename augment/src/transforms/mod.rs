//! Transforms on float clips `(3, T, H, W)` in [0, 1].

pub mod clip;
pub mod color;
pub mod color_inplace;
pub mod rand_augment;
pub mod spatial;
pub mod temporal;
