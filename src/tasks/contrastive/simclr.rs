//! SimCLR: one encoder, and the other videos of the batch as negatives (NT-Xent).

use tch::Tensor;

use super::embedding::embedding;
use super::loss::{nt_xent, Contrast};
use crate::models::VideoModel;
use crate::tasks::TaskError;

/// SimCLR's loss for the `b` view pairs `(v1[i], v2[i])`.
///
/// # Shapes
/// `v1`, `v2`: `(B, C, T, H, W)` views of the same B videos.
pub(super) fn contrast(
    model: &VideoModel,
    v1: &Tensor,
    v2: &Tensor,
    b: i64,
    temperature: f64,
) -> Result<Contrast, TaskError> {
    // One pass over both views: BN statistics come from all 2B clips.
    let z = embedding(model, &Tensor::cat(&[v1, v2], 0))?; // (2B, D)
    Ok(nt_xent(&z.narrow(0, 0, b), &z.narrow(0, b, b), temperature))
}
