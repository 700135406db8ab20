//! What a contrastive model gives for a batch of views: the projection head's embedding.

use tch::Tensor;

use crate::models::VideoModel;
use crate::tasks::TaskError;

/// The embedding a contrastive model predicts.
pub(super) fn embedding(model: &VideoModel, xs: &Tensor) -> Result<Tensor, TaskError> {
    let out = model.forward_t(xs, true);
    out.predictions
        .single()
        .map(Tensor::shallow_clone)
        .ok_or_else(|| TaskError::Invalid("the contrastive head must give one embedding".into()))
}
