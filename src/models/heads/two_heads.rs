//! The EPIC-Kitchens heads: two classifiers on the same features, one for the verb and one for
//! the noun (`BaseHeadx2`, `TransformerHeadx2`). Their predictions are named
//! [`VERB`] and [`NOUN`] ([`Predictions::Named`], in that order), as the reference's dict.

use tch::nn::{self, Module};
use tch::Tensor;

use super::transformer::linear_transformer_init;
use super::{
    activate, dropout, flatten_batch, linear_pytorch_default, pool_channels_last, to_i64,
    HeadOutput, Predictions, KEY_DROPOUT, KEY_NUM_CLASSES,
};
use crate::config::schema::{Activation, HeadConfig};
use crate::models::taps::module_path;
use crate::models::{ModelError, Taps};

/// The name of the verb prediction.
pub const VERB: &str = "verb_class";
/// The name of the noun prediction.
pub const NOUN: &str = "noun_class";

/// The VIDEO.HEAD values a two-head model reads, checked: NUM_CLASSES is `[verb, noun]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoHeadParams {
    pub num_classes: [i64; 2],
    pub dropout_rate: f64,
    pub activation: Activation,
}

impl TwoHeadParams {
    pub fn from_config(head: &HeadConfig) -> Result<Self, ModelError> {
        let name = format!("{:?}", head.name);
        let counts = match (&head.num_classes_per_head, head.num_classes) {
            (Some(v), _) => v.clone(),
            (None, Some(n)) => {
                return Err(ModelError::invalid(
                    KEY_NUM_CLASSES,
                    format!("{name} needs two class counts ([verb, noun]), got {n}"),
                ))
            }
            (None, None) => return Err(ModelError::missing(KEY_NUM_CLASSES, &name)),
        };
        let [verb, noun] = counts.as_slice() else {
            return Err(ModelError::invalid(
                KEY_NUM_CLASSES,
                format!("{name} needs two class counts ([verb, noun]), got {counts:?}"),
            ));
        };
        if *verb == 0 || *noun == 0 {
            return Err(ModelError::invalid(
                KEY_NUM_CLASSES,
                format!("class counts must be at least 1, got {counts:?}"),
            ));
        }
        if !(0.0..1.0).contains(&head.dropout_rate) {
            return Err(ModelError::invalid(
                KEY_DROPOUT,
                format!("must be in [0, 1), got {}", head.dropout_rate),
            ));
        }
        Ok(Self {
            num_classes: [
                to_i64(KEY_NUM_CLASSES, *verb)?,
                to_i64(KEY_NUM_CLASSES, *noun)?,
            ],
            dropout_rate: head.dropout_rate,
            activation: head.activation,
        })
    }
}

/// The two classifiers `linear1` (verb) and `linear2` (noun), with their taps.
#[derive(Debug)]
struct Pair {
    linears: [nn::Linear; 2],
    taps: [String; 2],
    activation: Activation,
}

impl Pair {
    /// `[K_verb, K_noun]`.
    fn num_outputs(&self) -> [i64; 2] {
        [0, 1].map(|i| self.linears[i].ws.size()[0])
    }

    fn predictions(&self, inputs: [&Tensor; 2], train: bool, taps: &mut Taps) -> Predictions {
        let out: Vec<(String, Tensor)> = [VERB, NOUN]
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (name, x))| {
                let out = self.linears[i].forward(x);
                taps.record(&self.taps[i], &out);
                let out = if train {
                    out
                } else {
                    activate(&out, self.activation)
                };
                (name.to_string(), flatten_batch(&out))
            })
            .collect();
        Predictions::Named(out)
    }
}

fn tap_paths(path: &nn::Path) -> [String; 2] {
    ["linear1", "linear2"].map(|n| module_path(&(path / n)))
}

/// `BaseHeadx2`: global average pool → one dropout (the same mask for both heads) → `linear1`
/// (verb) and `linear2` (noun), PyTorch's default Linear init.
///
/// Variables (relative to the path): `linear1.{weight,bias}` (K_verb, D), `linear2.*` (K_noun, D).
#[derive(Debug)]
pub struct BaseHeadx2 {
    pair: Pair,
    dropout_rate: f64,
}

impl BaseHeadx2 {
    pub fn new(path: &nn::Path, dim: i64, p: &TwoHeadParams) -> Self {
        let [kv, kn] = p.num_classes;
        Self {
            pair: Pair {
                linears: [
                    linear_pytorch_default(path / "linear1", dim, kv),
                    linear_pytorch_default(path / "linear2", dim, kn),
                ],
                taps: tap_paths(path),
                activation: p.activation,
            },
            dropout_rate: p.dropout_rate,
        }
    }

    pub fn num_outputs(&self) -> [i64; 2] {
        self.pair.num_outputs()
    }

    /// Features are returned before dropout, flattened to (N, D) (the reference returns them
    /// as the pool left them, (N, 1, 1, 1, D) for a 5-D input).
    ///
    /// # Shapes
    /// (N, D, T, H, W) (pooled first) or (N, D) -> predictions `verb_class` (N, K_verb) and
    /// `noun_class` (N, K_noun), features (N, D).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> HeadOutput {
        let x = if xs.dim() == 5 {
            pool_channels_last(xs)
        } else {
            xs.shallow_clone()
        };
        let dropped = dropout(&x, self.dropout_rate, train);
        HeadOutput {
            predictions: self.pair.predictions([&dropped, &dropped], train, taps),
            features: flatten_batch(&x),
        }
    }
}

/// `TransformerHeadx2`: per head its own dropout draw → optional `pre_logits{1,2}.fc` (+ tanh)
/// → `linear1` (verb) / `linear2` (noun); Linear layers trunc-normal(0.02) / 0.
///
/// Variables (relative to the path): `pre_logits1.fc.*`, `pre_logits2.fc.*` ((D, D), with
/// VIDEO.HEAD.PRE_LOGITS), `linear1.*` (K_verb, D), `linear2.*` (K_noun, D).
#[derive(Debug)]
pub struct TransformerHeadx2 {
    pre_logits: Option<[nn::Linear; 2]>,
    pair: Pair,
    dropout_rate: f64,
}

impl TransformerHeadx2 {
    pub fn new(path: &nn::Path, dim: i64, p: &TwoHeadParams, pre_logits: bool) -> Self {
        let [kv, kn] = p.num_classes;
        let pre_logits = pre_logits.then(|| {
            ["pre_logits1", "pre_logits2"]
                .map(|n| linear_transformer_init(path / n / "fc", dim, dim))
        });
        Self {
            pre_logits,
            pair: Pair {
                linears: [
                    linear_transformer_init(path / "linear1", dim, kv),
                    linear_transformer_init(path / "linear2", dim, kn),
                ],
                taps: tap_paths(path),
                activation: p.activation,
            },
            dropout_rate: p.dropout_rate,
        }
    }

    pub fn num_outputs(&self) -> [i64; 2] {
        self.pair.num_outputs()
    }

    /// Features are the input itself.
    ///
    /// # Shapes
    /// (N, D) -> predictions `verb_class` (N, K_verb) and `noun_class` (N, K_noun), features
    /// (N, D).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> HeadOutput {
        let inputs: [Tensor; 2] = [0, 1].map(|i| {
            let x = dropout(xs, self.dropout_rate, train);
            match &self.pre_logits {
                Some(fc) => fc[i].forward(&x).tanh(),
                None => x,
            }
        });
        HeadOutput {
            predictions: self.pair.predictions([&inputs[0], &inputs[1]], train, taps),
            features: xs.shallow_clone(),
        }
    }
}
