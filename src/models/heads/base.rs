//! `BaseHead`: global average pool → dropout → Linear `out`.

use tch::nn::{self, Module};
use tch::Tensor;

use super::{
    activate, dropout, flatten_batch, linear_pytorch_default, pool_channels_last, to_i64,
    HeadOutput, HeadParams, Predictions, KEY_NUM_CLASSES,
};
use crate::config::schema::Activation;
use crate::models::taps::module_path;
use crate::models::{ModelError, Taps};

/// The reference's classification head (`head.out.{weight,bias}`).
#[derive(Debug)]
pub struct BaseHead {
    out: nn::Linear,
    dropout_rate: f64,
    activation: Activation,
    num_outputs: i64,
    tap: String,
}

impl BaseHead {
    pub fn new(path: &nn::Path, dim: i64, p: &HeadParams) -> Result<Self, ModelError> {
        let k = to_i64(KEY_NUM_CLASSES, p.num_classes)?;
        let out_path = path / "out";
        Ok(Self {
            tap: module_path(&out_path),
            out: linear_pytorch_default(out_path, dim, k),
            dropout_rate: p.dropout_rate,
            activation: p.activation,
            num_outputs: k,
        })
    }

    pub fn num_outputs(&self) -> i64 {
        self.num_outputs
    }

    /// Features are returned before dropout, as the reference does.
    ///
    /// # Shapes
    /// (N, D, T, H, W) (pooled first) or (N, D) -> predictions (N, K), features (N, D).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> HeadOutput {
        let x = if xs.dim() == 5 {
            pool_channels_last(xs)
        } else {
            xs.shallow_clone()
        };
        let out = self.out.forward(&dropout(&x, self.dropout_rate, train));
        taps.record(&self.tap, &out);
        let out = if train {
            out
        } else {
            activate(&out, self.activation)
        };
        HeadOutput {
            predictions: Predictions::Tensor(flatten_batch(&out)),
            features: flatten_batch(&x),
        }
    }
}
