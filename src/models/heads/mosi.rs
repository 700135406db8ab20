//! MoSI heads: `MoSIHeadJoint` (`head.out_joint`), `MoSIHeadOnlyX` and `MoSIHeadOnlyY` (both
//! `head.out_x` — the reference names OnlyY's layer `out_x` too, and its checkpoints keep that).

use tch::nn::{self, Module};
use tch::Tensor;

use super::{
    activate, dropout, flatten_batch, linear_pytorch_default, pool_channels_last, to_i64,
    HeadOutput, HeadParams, Predictions, KEY_NUM_CLASSES,
};
use crate::config::schema::{Activation, DataMode, PretrainConfig};
use crate::models::taps::module_path;
use crate::models::{ModelError, Taps};

/// Which MoSI head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoSIHeadKind {
    /// Classifies the joint (x, y) speed; returns an unnamed tensor (MoSINet names it
    /// `move_joint`).
    Joint,
    /// Classifies the x speed; returns `move_x`.
    OnlyX,
    /// Classifies the y speed; returns `move_y`.
    OnlyY,
}

impl MoSIHeadKind {
    fn layer_name(self) -> &'static str {
        match self {
            Self::Joint => "out_joint",
            Self::OnlyX | Self::OnlyY => "out_x",
        }
    }

    fn output_name(self) -> Option<&'static str> {
        match self {
            Self::Joint => None,
            Self::OnlyX => Some("move_x"),
            Self::OnlyY => Some("move_y"),
        }
    }
}

/// Output size of a MoSI head (docs/models.md#mosi-head-sizes, docs/mosi.md#speed-set-and-labels):
/// `n` speeds per axis (VIDEO.HEAD.NUM_CLASSES); the still class [0, 0] is dropped when
/// PRETRAIN.ZERO_OUT is set. A coupled joint head (DECOUPLE false) classifies every speed
/// combination.
pub fn mosi_num_classes(
    kind: MoSIHeadKind,
    n: usize,
    p: &PretrainConfig,
) -> Result<usize, ModelError> {
    let still = usize::from(!p.zero_out);
    // The reference takes len(DATA_MODE) of the string: "x"/"y" → 1, "xy" → 2.
    let axes: u32 = match p.data_mode {
        DataMode::X | DataMode::Y => 1,
        DataMode::Xy => 2,
    };
    let moving = n.saturating_sub(1);
    let k = match kind {
        MoSIHeadKind::Joint if p.decouple => Some(axes as usize * moving + still),
        MoSIHeadKind::Joint => n.checked_pow(axes),
        MoSIHeadKind::OnlyX | MoSIHeadKind::OnlyY => Some(moving + still),
    };
    match k {
        Some(k) if k >= 1 => Ok(k),
        Some(_) => Err(ModelError::invalid(
            KEY_NUM_CLASSES,
            format!("{n} speeds with PRETRAIN.ZERO_OUT leave the MoSI head no classes"),
        )),
        None => Err(ModelError::invalid(
            KEY_NUM_CLASSES,
            format!("{n} is too large"),
        )),
    }
}

/// A MoSI speed classifier: pool → dropout → Linear → (eval) activation over the classes, then
/// the mean over the three singleton (T, H, W) dims.
#[derive(Debug)]
pub struct MoSIHead {
    kind: MoSIHeadKind,
    out: nn::Linear,
    dropout_rate: f64,
    activation: Activation,
    num_outputs: i64,
    tap: String,
}

impl MoSIHead {
    pub fn new(
        path: &nn::Path,
        kind: MoSIHeadKind,
        dim: i64,
        p: &HeadParams,
        pretrain: &PretrainConfig,
    ) -> Result<Self, ModelError> {
        let k = to_i64(
            KEY_NUM_CLASSES,
            mosi_num_classes(kind, p.num_classes, pretrain)?,
        )?;
        let out_path = path / kind.layer_name();
        Ok(Self {
            kind,
            tap: module_path(&out_path),
            out: linear_pytorch_default(out_path, dim, k),
            dropout_rate: p.dropout_rate,
            activation: p.activation,
            num_outputs: k,
        })
    }

    pub fn kind(&self) -> MoSIHeadKind {
        self.kind
    }

    pub fn num_outputs(&self) -> i64 {
        self.num_outputs
    }

    /// Features are returned after dropout, as the reference does.
    ///
    /// # Shapes
    /// (N, D, T, H, W) -> predictions (N, K), features (N, D).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> HeadOutput {
        let x = dropout(&pool_channels_last(xs), self.dropout_rate, train);
        // (N, 1, 1, 1, D) -> (N, 1, 1, 1, K)
        let out = self.out.forward(&x);
        taps.record(&self.tap, &out);
        let out = if train {
            out
        } else {
            // (N, 1, 1, 1, K) -> (N, K)
            activate(&out, self.activation).mean_dim([1, 2, 3].as_slice(), false, None)
        };
        let out = flatten_batch(&out);
        let predictions = match self.kind.output_name() {
            None => Predictions::Tensor(out),
            Some(name) => Predictions::Named(vec![(name.to_string(), out)]),
        };
        HeadOutput {
            predictions,
            features: flatten_batch(&x),
        }
    }
}
