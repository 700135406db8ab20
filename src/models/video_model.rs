//! The whole model: `backbone` + `head` (the reference's `BaseVideoModel`), with the MoSI
//! wrapper's (B, N) folding when MODEL.NAME is `MoSINet`.

use tch::nn;
use tch::Tensor;

use crate::config::schema::HeadName;
use crate::config::Config;
use crate::localization::BaseBmn;
use crate::models::backbones::Backbone;
use crate::models::heads::{Head, Predictions};
use crate::models::{ModelError, Taps};

/// MODEL.NAME of the only registered wrapper; every other name is a label.
pub const MOSI_NET: &str = "MoSINet";

/// The name MoSINet gives an unnamed head output.
pub const MOVE_JOINT: &str = "move_joint";

const KEY_OUT_FEATURES: &str = "VIDEO.BACKBONE.NUM_OUT_FEATURES";

/// A model's result.
#[derive(Debug)]
pub struct ModelOutput {
    /// One (N, K) tensor, the named MoSI outputs (`move_joint`, `move_x`, `move_y`), or a
    /// two-head model's `verb_class` (N, K_verb) and `noun_class` (N, K_noun)
    /// ([`crate::models::heads::VERB`], [`crate::models::heads::NOUN`]).
    /// Raw logits in training mode, activated scores in evaluation mode.
    pub predictions: Predictions,
    /// (N, D) pooled backbone features (what the reference returns second).
    pub features: Tensor,
}

/// `backbone` → `head`. Parameter paths are `backbone.…` and `head.…` under the path it was
/// built on, equal to the reference's state_dict keys when that path is the VarStore root.
#[derive(Debug)]
pub struct VideoModel {
    backbone: Backbone,
    head: Head,
    /// MoSINet: input (B, N, C, T, H, W) folded to (B·N, C, T, H, W); unnamed predictions
    /// become `move_joint`.
    mosi: bool,
}

impl VideoModel {
    /// Builds the model a config describes.
    pub fn new(vs_root: &nn::Path, cfg: &Config) -> Result<Self, ModelError> {
        let video = &cfg.video;
        let backbone = Backbone::new(&(vs_root / "backbone"), cfg)?;
        if let Backbone::LocalizationConv(_) = backbone {
            return Self::build_bmn(vs_root, cfg, backbone);
        }
        let dim = video
            .backbone
            .num_out_features
            .ok_or_else(|| ModelError::missing(KEY_OUT_FEATURES, "the head"))?;
        // The reference sizes the head from this key alone and fails at the first forward when
        // it disagrees with the backbone; here it fails at build time, by name.
        if i64::try_from(dim).ok() != Some(backbone.num_out_features()) {
            return Err(ModelError::invalid(
                KEY_OUT_FEATURES,
                format!(
                    "is {dim}, but the backbone outputs {} channels (its last NUM_FILTERS entry)",
                    backbone.num_out_features()
                ),
            ));
        }
        let head = Head::new(
            &(vs_root / "head"),
            &video.head,
            backbone.out_features(),
            &cfg.pretrain,
            &cfg.bn,
        )?;
        Ok(Self {
            backbone,
            head,
            mosi: cfg.model.name == MOSI_NET,
        })
    }

    /// SimpleLocalizationConv + BaseBMN: the head is sized by VIDEO.DIM1D/2D/3D and the map
    /// keys, not by NUM_OUT_FEATURES (which the reference does not read here).
    fn build_bmn(vs_root: &nn::Path, cfg: &Config, backbone: Backbone) -> Result<Self, ModelError> {
        if cfg.video.head.name != HeadName::BaseBmn {
            return Err(ModelError::invalid(
                "VIDEO.HEAD.NAME",
                format!(
                    "is {:?}, but SimpleLocalizationConv's feature sequences feed BaseBMN only",
                    cfg.video.head.name
                ),
            ));
        }
        let spec = crate::localization::HeadSpec::from_config(cfg)?;
        let head = Head::Bmn(Box::new(BaseBmn::new(&(vs_root / "head"), &spec)));
        Ok(Self {
            backbone,
            head,
            mosi: false,
        })
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Whether this is the MoSI wrapper (6-D input, named predictions).
    pub fn is_mosi(&self) -> bool {
        self.mosi
    }

    /// Checks that `xs` is something [`Self::forward_t`] can take: (B, N, C, T, H, W) for
    /// MoSINet, (B, C, T) with T = DATA.TEMPORAL_SCALE for BMN, (B, C, T, H, W) otherwise,
    /// with C = NUM_INPUT_CHANNELS.
    pub fn check_input(&self, xs: &Tensor) -> Result<(), ModelError> {
        let size = xs.size();
        let c = self.backbone.in_channels();
        if let Head::Bmn(h) = &self.head {
            let t = h.map_spec().tscale;
            if size.len() != 3 || size[1] != c || size[2] != t {
                return Err(ModelError::Input {
                    expected: format!("(B, C, T) feature sequences with C = {c}, T = {t}"),
                    got: size,
                });
            }
            return Ok(());
        }
        let (dims, layout) = if self.mosi {
            (6, "(B, N, C, T, H, W)")
        } else {
            (5, "(B, C, T, H, W)")
        };
        let min_t = self.backbone.min_frames();
        if size.len() != dims || size[dims - 4] != c || size[dims - 3] < min_t {
            return Err(ModelError::Input {
                expected: match min_t {
                    1 => format!("{layout} with C = {c}"),
                    t => format!("{layout} with C = {c} and T >= {t}"),
                },
                got: size,
            });
        }
        self.backbone
            .check_side(size[dims - 2], size[dims - 1])
            .map_err(|expected| ModelError::Input {
                expected: format!("{layout} with {expected}"),
                got: size,
            })
    }

    /// # Shapes
    /// MoSINet: (B, N, C, T, H, W) -> predictions (B·N, K) per name, features (B·N, D), sample
    /// index fastest inside an item. Otherwise (B, C, T, H, W) -> (B, K), (B, D); a two-head
    /// model (BaseHeadx2, TransformerHeadx2) predicts `verb_class` (B, K_verb) and
    /// `noun_class` (B, K_noun).
    ///
    /// # Panics
    /// On an input [`Self::check_input`] rejects, like any tch layer given a wrong shape.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> ModelOutput {
        self.forward_taps(xs, train, &mut Taps::off())
    }

    /// [`Self::forward_t`], recording the outputs of the stem, every stage and the head's
    /// classifier layer under their module paths (`backbone.conv1`, …, `head.out_joint`).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> ModelOutput {
        let xs = if self.mosi {
            let s = xs.size();
            // (B, N, C, T, H, W) -> (B·N, C, T, H, W)
            xs.reshape([-1, s[2], s[3], s[4], s[5]])
        } else {
            xs.shallow_clone()
        };
        let features = self.backbone.forward_taps(&xs, train, taps);
        let out = self.head.forward_features(&features, train, taps);
        let predictions = match out.predictions {
            Predictions::Tensor(t) if self.mosi => {
                Predictions::Named(vec![(MOVE_JOINT.to_string(), t)])
            }
            other => other,
        };
        ModelOutput {
            predictions,
            features: out.features,
        }
    }

    /// [`Self::forward_t`] with every intermediate [`Self::forward_taps`] records.
    pub fn forward_collect(&self, xs: &Tensor, train: bool) -> (ModelOutput, Taps) {
        let mut taps = Taps::collecting();
        let out = self.forward_taps(xs, train, &mut taps);
        (out, taps)
    }
}
