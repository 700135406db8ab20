//! Cubes in normalised coordinates and the affine warp that crops them.
//!
//! Coordinates follow `grid_sample`: every axis spans [-1, 1], `align_corners = false`. Axis
//! order is the grid's (x, y, z) = (W, H, T), not tensor order: getting this wrong silently
//! swaps time and width.

use tch::Tensor;

use super::ParamCropError;

/// A batch of axis-aligned cubes.
///
/// # Shapes
/// `scale`, `centre`: `(B, 3)` in (w, h, t) order. `scale` is the side as a fraction of the
/// source extent (the cube spans `centre ± scale` in normalised units).
#[derive(Debug)]
pub struct Cube {
    pub scale: Tensor,
    pub centre: Tensor,
}

impl Cube {
    /// The affine matrices mapping output to source coordinates.
    ///
    /// # Shapes
    /// `(B, 3, 4)`: `[diag(scale) | centre]`.
    pub fn theta(&self) -> Tensor {
        Tensor::cat(
            &[self.scale.diag_embed(0, -2, -1), self.centre.unsqueeze(-1)],
            -1,
        )
    }

    /// Cuts each cube out of `clip` and resizes it to `out = [T, H, W]` by trilinear sampling
    /// (border padding, which a cube inside the source never reaches).
    ///
    /// # Shapes
    /// `clip`: `(B, C, T, H, W)` float -> `(B, C, out[0], out[1], out[2])`.
    pub fn crop(&self, clip: &Tensor, out: [i64; 3]) -> Result<Tensor, ParamCropError> {
        crop_with_theta(clip, &self.theta(), out)
    }
}

/// [`Cube::crop`] for a ready affine matrix (e.g. one passed through gradient reversal).
pub fn crop_with_theta(
    clip: &Tensor,
    theta: &Tensor,
    out: [i64; 3],
) -> Result<Tensor, ParamCropError> {
    let size = clip.size();
    if size.len() != 5 {
        return Err(ParamCropError::BadClip(size));
    }
    let b = theta.size().first().copied().unwrap_or(0);
    if b != size[0] {
        return Err(ParamCropError::BatchMismatch {
            cubes: b,
            clips: size[0],
        });
    }
    let grid = Tensor::f_affine_grid_generator(
        &theta.to_kind(clip.kind()),
        [size[0], size[1], out[0], out[1], out[2]],
        false,
    )?;
    // interpolation 0 = (tri)linear, padding 1 = border.
    Ok(clip.f_grid_sampler(&grid, 0, 1, false)?)
}

/// Overlap of two cubes: volume IoU, spatial (w, h) IoU and temporal (t) IoU, per sample.
#[derive(Debug)]
pub struct CubeOverlap {
    pub iou: Tensor,
    pub spatial: Tensor,
    pub temporal: Tensor,
}

/// IoU of two batches of cubes. IoU does not change when an axis is stretched, so normalised
/// units give the same number as source pixels and frames.
///
/// # Shapes
/// each field `(B,)`.
pub fn iou(a: &Cube, b: &Cube) -> CubeOverlap {
    let lo = (&a.centre - &a.scale).maximum(&(&b.centre - &b.scale));
    let hi = (&a.centre + &a.scale).minimum(&(&b.centre + &b.scale));
    let overlap = (hi - lo).clamp_min(0.0);
    let side_a = &a.scale * 2.0;
    let side_b = &b.scale * 2.0;
    let ratio = |idx: &[i64]| {
        let idx = Tensor::from_slice(idx).to_device(overlap.device());
        let prod = |t: &Tensor| t.index_select(1, &idx).prod_dim_int(1, false, t.kind());
        let inter = prod(&overlap);
        &inter / (prod(&side_a) + prod(&side_b) - &inter)
    };
    CubeOverlap {
        iou: ratio(&[0, 1, 2]),
        spatial: ratio(&[0, 1]),
        temporal: ratio(&[2]),
    }
}

/// Euclidean distance between cube centres in normalised units, over (w, h, t).
///
/// # Shapes
/// `(B,)`.
pub fn centre_distance(a: &Cube, b: &Cube) -> Tensor {
    let d = &a.centre - &b.centre;
    d.square().sum_dim_intlist(1, false, d.kind()).sqrt()
}

#[cfg(test)]
#[path = "cube_tests.rs"]
mod tests;
