//! SimCLR: one encoder, and the other videos of the batch as negatives (NT-Xent). In a
//! distributed run the negatives are the other videos of the global batch: every rank gathers
//! every rank's embeddings (with their gradients) and computes the global loss.

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
    let (z1, z2) = (z.narrow(0, 0, b), z.narrow(0, b, b));
    match crate::dist::world() {
        // (B, D) per rank -> (W·B, D), rank order in both views so rows stay paired. Every
        // rank's loss is the global one; the gather's backward sums the W copies' gradients
        // and DDP averages over the W ranks, which gives the one-process gradient.
        Some(w) => Ok(nt_xent(
            &w.group.all_gather_grad(&z1)?,
            &w.group.all_gather_grad(&z2)?,
            temperature,
        )),
        None => Ok(nt_xent(&z1, &z2, temperature)),
    }
}
