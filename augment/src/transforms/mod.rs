//! Transforms on float clips `(3, T, H, W)` in [0, 1].

pub mod color;
