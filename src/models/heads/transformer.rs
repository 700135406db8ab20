//! `TransformerHead` (ViViT / TimeSformer baselines): dropout → optional pre-logits → `linear`.

use tch::nn::{self, Module};
use tch::Tensor;

use super::{activate, dropout, to_i64, HeadOutput, HeadParams, Predictions, KEY_NUM_CLASSES};
use crate::config::schema::Activation;
use crate::models::taps::module_path;
use crate::models::{ModelError, Taps};

/// The reference's transformer initialisation for Linear layers: trunc-normal(std 0.02, cut at
/// ±2 absolute) weights and zero biases. ±2 is 100 standard deviations, so the cut never fires
/// and a plain N(0, 0.02²) draw has the same distribution.
pub(super) fn linear_transformer_init(path: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(path, d_in, d_out, config)
}

/// Head over already-pooled (N, D) features: `head.linear`, plus `head.pre_logits.fc` (+ tanh)
/// when VIDEO.HEAD.PRE_LOGITS is set.
#[derive(Debug)]
pub struct TransformerHead {
    pre_logits: Option<nn::Linear>,
    linear: nn::Linear,
    dropout_rate: f64,
    activation: Activation,
    num_outputs: i64,
    tap: String,
}

impl TransformerHead {
    pub fn new(
        path: &nn::Path,
        dim: i64,
        p: &HeadParams,
        pre_logits: bool,
    ) -> Result<Self, ModelError> {
        let k = to_i64(KEY_NUM_CLASSES, p.num_classes)?;
        let pre_logits =
            pre_logits.then(|| linear_transformer_init(path / "pre_logits" / "fc", dim, dim));
        let linear_path = path / "linear";
        Ok(Self {
            pre_logits,
            tap: module_path(&linear_path),
            linear: linear_transformer_init(linear_path, dim, k),
            dropout_rate: p.dropout_rate,
            activation: p.activation,
            num_outputs: k,
        })
    }

    pub fn num_outputs(&self) -> i64 {
        self.num_outputs
    }

    /// Features are the input itself.
    ///
    /// # Shapes
    /// (N, D) -> predictions (N, K), features (N, D).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> HeadOutput {
        let mut out = dropout(xs, self.dropout_rate, train);
        if let Some(fc) = &self.pre_logits {
            out = fc.forward(&out).tanh();
        }
        let out = self.linear.forward(&out);
        taps.record(&self.tap, &out);
        let out = if train {
            out
        } else {
            activate(&out, self.activation)
        };
        HeadOutput {
            predictions: Predictions::Tensor(out),
            features: xs.shallow_clone(),
        }
    }
}
