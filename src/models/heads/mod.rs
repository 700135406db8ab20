//! Heads (module `head`), selected by VIDEO.HEAD.NAME. Every head returns the reference's pair
//! (predictions, features): raw logits in training mode, activated scores in evaluation mode,
//! and the pooled backbone features the linear layer saw (the reference calls them "logits").

mod base;
mod mosi;
pub mod projection;
pub mod slowfast;
mod transformer;
mod two_heads;

#[cfg(test)]
mod tests;

use tch::nn;
use tch::Tensor;

use crate::config::schema::{Activation, BnConfig, HeadConfig, HeadName, PretrainConfig};
use crate::localization::{bmn, BaseBmn};
use crate::models::backbones::Features;
use crate::models::{ModelError, Taps};

pub use base::BaseHead;
pub use mosi::{mosi_num_classes, MoSIHead, MoSIHeadKind};
pub use projection::{ProjectionConfig, ProjectionMlp};
pub use transformer::TransformerHead;
pub use two_heads::{BaseHeadx2, TransformerHeadx2, TwoHeadParams, NOUN, VERB};

const KEY_NUM_CLASSES: &str = "VIDEO.HEAD.NUM_CLASSES";
const KEY_DROPOUT: &str = "VIDEO.HEAD.DROPOUT_RATE";

/// What a head (or a whole model) predicts.
#[derive(Debug)]
pub enum Predictions {
    /// One (N, K) tensor: BaseHead, TransformerHead, and MoSIHeadJoint outside MoSINet.
    Tensor(Tensor),
    /// Named (N, K) tensors: the MoSI outputs `move_joint`, `move_x`, `move_y`; the two-head
    /// models' `verb_class` (N, K_verb) and `noun_class` (N, K_noun), in that order; BMN's
    /// `confidence_map` (N, 2, D, T), `start` (N, T) and `end` (N, T).
    Named(Vec<(String, Tensor)>),
}

impl Predictions {
    /// The prediction named `name`; a single unnamed tensor is returned for any name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        match self {
            Self::Tensor(t) => Some(t),
            Self::Named(v) => v.iter().find(|(n, _)| n == name).map(|(_, t)| t),
        }
    }

    /// Names of the predictions; empty for a single unnamed tensor.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Self::Tensor(_) => Vec::new(),
            Self::Named(v) => v.iter().map(|(n, _)| n.as_str()).collect(),
        }
    }

    /// The only prediction, named or not; `None` when there are several.
    pub fn single(&self) -> Option<&Tensor> {
        match self {
            Self::Tensor(t) => Some(t),
            Self::Named(v) if v.len() == 1 => Some(&v[0].1),
            Self::Named(_) => None,
        }
    }
}

/// A head's result.
#[derive(Debug)]
pub struct HeadOutput {
    pub predictions: Predictions,
    /// (N, D) features the classifier saw (see each head for before/after dropout).
    pub features: Tensor,
}

/// A classification head.
#[derive(Debug)]
pub enum Head {
    Base(BaseHead),
    MoSI(MoSIHead),
    Transformer(TransformerHead),
    /// EPIC-Kitchens' verb and noun heads: predictions named `verb_class`, `noun_class`.
    BaseX2(BaseHeadx2),
    TransformerX2(TransformerHeadx2),
    /// `ContrastiveHead`: the projection MLP under `head.mlp`; its prediction is the
    /// L2-normalised embedding.
    Contrastive(Box<ProjectionMlp>),
    /// BaseBMN: predictions named `confidence_map`, `start`, `end`; built by
    /// [`crate::models::VideoModel`] from the DATA and VIDEO keys it reads.
    Bmn(Box<BaseBmn>),
}

impl Head {
    /// `dim` is the feature width (VIDEO.BACKBONE.NUM_OUT_FEATURES); `pretrain` sizes the MoSI
    /// heads and the projection MLP, whose BNs follow `bn`.
    pub fn new(
        path: &nn::Path,
        head: &HeadConfig,
        dim: i64,
        pretrain: &PretrainConfig,
        bn: &BnConfig,
    ) -> Result<Self, ModelError> {
        let p = || HeadParams::from_config(head);
        Ok(match head.name {
            // Sized by PRETRAIN.CONTRASTIVE, not by NUM_CLASSES: there are no classes.
            HeadName::ContrastiveHead => {
                let c = ProjectionConfig::from_config(dim, &pretrain.contrastive, bn)?;
                Self::Contrastive(Box::new(ProjectionMlp::new(&(path / "mlp"), &c)?))
            }
            // SlowFastHead's pathway pooling happens in Self::forward_features.
            HeadName::BaseHead | HeadName::SlowFastHead => {
                Self::Base(BaseHead::new(path, dim, &p()?)?)
            }
            HeadName::TransformerHead => {
                Self::Transformer(TransformerHead::new(path, dim, &p()?, head.pre_logits)?)
            }
            HeadName::BaseHeadx2 => Self::BaseX2(BaseHeadx2::new(
                path,
                dim,
                &TwoHeadParams::from_config(head)?,
            )),
            HeadName::TransformerHeadx2 => Self::TransformerX2(TransformerHeadx2::new(
                path,
                dim,
                &TwoHeadParams::from_config(head)?,
                head.pre_logits,
            )),
            HeadName::MoSIHeadJoint => Self::mosi(path, MoSIHeadKind::Joint, dim, &p()?, pretrain)?,
            HeadName::MoSIHeadOnlyX => Self::mosi(path, MoSIHeadKind::OnlyX, dim, &p()?, pretrain)?,
            HeadName::MoSIHeadOnlyY => Self::mosi(path, MoSIHeadKind::OnlyY, dim, &p()?, pretrain)?,
            HeadName::BaseBmn => {
                return Err(ModelError::invalid(
                    "VIDEO.HEAD.NAME",
                    "BaseBMN reads the feature sequences of VIDEO.BACKBONE.META_ARCH \
                     SimpleLocalizationConv",
                ))
            }
        })
    }

    fn mosi(
        path: &nn::Path,
        kind: MoSIHeadKind,
        dim: i64,
        p: &HeadParams,
        pretrain: &PretrainConfig,
    ) -> Result<Self, ModelError> {
        Ok(Self::MoSI(MoSIHead::new(path, kind, dim, p, pretrain)?))
    }

    /// Number of outputs of the classifier layer (of the verb head for a two-head model; see
    /// [`Self::outputs_per_head`]).
    pub fn num_outputs(&self) -> i64 {
        self.outputs_per_head()[0]
    }

    /// Outputs of each classifier layer: one entry, or `[verb, noun]` for a two-head model.
    pub fn outputs_per_head(&self) -> Vec<i64> {
        match self {
            Self::Base(h) => vec![h.num_outputs()],
            Self::MoSI(h) => vec![h.num_outputs()],
            Self::Transformer(h) => vec![h.num_outputs()],
            Self::BaseX2(h) => h.num_outputs().to_vec(),
            Self::TransformerX2(h) => h.num_outputs().to_vec(),
            Self::Contrastive(h) => vec![h.out_dim()],
            // The two confidence channels (regression, classification).
            Self::Bmn(_) => vec![2],
        }
    }

    /// # Shapes
    /// (N, D, T, H, W) or (N, D) -> predictions (N, K), features (N, D); see each head.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> HeadOutput {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// The head on what a backbone returned: a feature map as [`Self::forward_taps`]; SlowFast's
    /// pathways pooled and concatenated first ([`slowfast::pool_pathways`]), as SlowFastHead
    /// does.
    ///
    /// # Shapes
    /// (N, D, T, H, W), (N, D), or pathways (N, D_p, T_p, H, W) with Σ D_p = D ->
    /// predictions (N, K), features (N, D).
    pub fn forward_features(&self, xs: &Features, train: bool, taps: &mut Taps) -> HeadOutput {
        match xs {
            Features::Map(x) => self.forward_taps(x, train, taps),
            Features::Pathways(v) => self.forward_taps(&slowfast::pool_pathways(v), train, taps),
        }
    }

    /// [`Self::forward_t`], recording the classifier layer's raw output under its module path.
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> HeadOutput {
        match self {
            Self::Base(h) => h.forward_taps(xs, train, taps),
            Self::MoSI(h) => h.forward_taps(xs, train, taps),
            Self::Transformer(h) => h.forward_taps(xs, train, taps),
            Self::BaseX2(h) => h.forward_taps(xs, train, taps),
            Self::TransformerX2(h) => h.forward_taps(xs, train, taps),
            Self::Bmn(h) => {
                let out = h.forward(xs);
                taps.record("head.x_2d_p", &out.confidence_map);
                HeadOutput {
                    predictions: Predictions::Named(vec![
                        (bmn::CONFIDENCE_MAP.into(), out.confidence_map),
                        (bmn::START.into(), out.start),
                        (bmn::END.into(), out.end),
                    ]),
                    features: xs.shallow_clone(),
                }
            }
            Self::Contrastive(h) => {
                let embedding = h.forward_t(xs, train);
                taps.record("head.mlp", &embedding);
                let features = if xs.dim() == 5 {
                    // (N, D, T, H, W) -> (N, D)
                    xs.mean_dim([2i64, 3, 4].as_slice(), false, xs.kind())
                } else {
                    xs.shallow_clone()
                };
                HeadOutput {
                    predictions: Predictions::Tensor(embedding),
                    features,
                }
            }
        }
    }
}

/// The VIDEO.HEAD values every head reads, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadParams {
    pub num_classes: usize,
    pub dropout_rate: f64,
    pub activation: Activation,
}

impl HeadParams {
    pub fn from_config(head: &HeadConfig) -> Result<Self, ModelError> {
        if let Some(list) = &head.num_classes_per_head {
            return Err(ModelError::invalid(
                KEY_NUM_CLASSES,
                format!(
                    "the list {list:?} is for the two-head BaseHeadx2 / TransformerHeadx2; {:?} \
                     takes one class count",
                    head.name
                ),
            ));
        }
        let num_classes = head
            .num_classes
            .ok_or_else(|| ModelError::missing(KEY_NUM_CLASSES, "every head"))?;
        if num_classes == 0 {
            return Err(ModelError::invalid(KEY_NUM_CLASSES, "must be at least 1"));
        }
        if !(0.0..1.0).contains(&head.dropout_rate) {
            return Err(ModelError::invalid(
                KEY_DROPOUT,
                format!("must be in [0, 1), got {}", head.dropout_rate),
            ));
        }
        Ok(Self {
            num_classes,
            dropout_rate: head.dropout_rate,
            activation: head.activation,
        })
    }
}

fn to_i64(key: &str, v: usize) -> Result<i64, ModelError> {
    i64::try_from(v).map_err(|_| ModelError::invalid(key, format!("{v} is too large")))
}

/// nn.Linear with PyTorch's default initialisation: weight and bias U(±1/√fan_in).
fn linear_pytorch_default(path: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        // Kaiming-uniform with a = √5 (gain 1/√3) gives the bound 1/√fan_in.
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Uniform,
            fan: nn::init::FanInOut::FanIn,
            non_linearity: nn::init::NonLinearity::ExplicitGain(1.0 / 3f64.sqrt()),
        },
        // None = U(±1/√d_in), PyTorch's bias default.
        bs_init: None,
        bias: true,
    };
    nn::linear(path, d_in, d_out, config)
}

/// The evaluation-mode activation over the class dimension (the last one).
fn activate(xs: &Tensor, activation: Activation) -> Tensor {
    match activation {
        Activation::Softmax => xs.softmax(-1, None),
        Activation::Sigmoid => xs.sigmoid(),
        Activation::Identity => xs.shallow_clone(),
    }
}

fn dropout(xs: &Tensor, rate: f64, train: bool) -> Tensor {
    if rate > 0.0 {
        xs.dropout(rate, train)
    } else {
        xs.shallow_clone()
    }
}

/// Global average pool to channels-last, as the reference heads do before their Linear.
///
/// # Shapes
/// (N, C, T, H, W) -> (N, 1, 1, 1, C).
fn pool_channels_last(xs: &Tensor) -> Tensor {
    // (N, C, T, H, W) -> (N, C, 1, 1, 1) -> (N, 1, 1, 1, C)
    xs.adaptive_avg_pool3d([1, 1, 1]).permute([0, 2, 3, 4, 1])
}

/// # Shapes
/// (N, …) -> (N, product of the rest).
fn flatten_batch(xs: &Tensor) -> Tensor {
    let n = xs.size()[0];
    // (N, 1, 1, 1, K) or (N, K) -> (N, K)
    xs.reshape([n, -1])
}
