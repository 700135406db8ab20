//! Supervised classification: fine-tuning, and the linear probe (frozen backbone).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tada_augment::transforms::mixup::{self, Mixup};
use tch::{Device, Kind, Tensor};

use super::{accuracy, StepContext, Task, TaskLoss};
use crate::config::schema::LossFunc;
use crate::config::Config;
use crate::data::loader::Batch;
use crate::models::{ModelOutput, Taps, VideoModel};
use crate::tasks::TaskError;

/// Cross-entropy on the head's logits against `(B)` class labels, or the soft-target
/// cross-entropy against `(B, K)` targets when mixup/CutMix mixes the batches.
#[derive(Debug, Clone)]
pub struct ClassifyTask {
    /// TRAIN.ONLY_LINEAR: the backbone runs in evaluation mode (BatchNorm uses and keeps its
    /// running statistics) and without autograd; only the head trains.
    pub linear_probe: bool,
    /// AUGMENTATION.LABEL_SMOOTHING `s`: the target is `1 - s + s/K` at the label and `s/K`
    /// elsewhere, as the reference's `label_smoothing_target`.
    pub label_smoothing: f64,
    /// AUGMENTATION.MIXUP / CUTMIX: every training batch mixed with its mirror image
    /// (docs/transforms.md#mixup-and-cutmix).
    pub mixup: Option<Mixup>,
    /// `[K_verb, K_noun]` of a two-head (EPIC-Kitchens) model, whose labels are `(B, 2)`
    /// `[verb, noun]` and whose loss and metrics are [`super::verb_noun`]'s.
    pub two_heads: Option<[i64; 2]>,
}

/// VIDEO.HEAD.NUM_CLASSES `[verbs, nouns]`, when the config has two heads.
pub fn two_heads_of(cfg: &Config) -> Option<[i64; 2]> {
    match cfg.video.head.num_classes_per_head.as_deref() {
        Some(&[v, n]) => Some([v as i64, n as i64]),
        _ => None,
    }
}

/// The mixup/CutMix of a config, or `None` when neither is enabled.
pub fn mixup_of(cfg: &Config) -> Result<Option<Mixup>, TaskError> {
    use crate::config::schema::MixupMode as Mode;
    let a = &cfg.augmentation;
    if !(a.mixup.enable || a.cutmix.enable) {
        return Ok(None);
    }
    let mix = mixup::MixConfig {
        mixup: mixup::MixupConfig {
            enable: a.mixup.enable,
            alpha: a.mixup.alpha,
            prob: a.mixup.prob,
            mode: match a.mixup.mode {
                Mode::Batch => mixup::MixupMode::Batch,
                Mode::Pair => mixup::MixupMode::Pair,
                Mode::Elem => mixup::MixupMode::Elem,
            },
            switch_prob: a.mixup.switch_prob,
        },
        cutmix: mixup::CutmixConfig {
            enable: a.cutmix.enable,
            alpha: a.cutmix.alpha,
            minmax: a.cutmix.minmax.clone(),
        },
        label_smoothing: a.label_smoothing,
        // Two heads: the verb's; the noun's targets are mixed alike in `prepare`.
        num_classes: match two_heads_of(cfg) {
            Some([verbs, _]) => verbs,
            None => cfg.video.head.num_classes.unwrap_or(0) as i64,
        },
    };
    Mixup::new(mix)
        .map(Some)
        .map_err(|e| TaskError::Invalid(e.to_string()))
}

impl ClassifyTask {
    /// The task of a config; only TRAIN.LOSS_FUNC `cross_entropy` is built.
    pub fn from_config(cfg: &Config) -> Result<Self, TaskError> {
        if cfg.train.loss_func != LossFunc::CrossEntropy {
            return Err(TaskError::Unsupported(format!(
                "TRAIN.LOSS_FUNC {:?} (only cross_entropy is built)",
                cfg.train.loss_func
            )));
        }
        Ok(Self {
            linear_probe: cfg.train.only_linear,
            label_smoothing: cfg.augmentation.label_smoothing,
            mixup: mixup_of(cfg)?,
            two_heads: two_heads_of(cfg),
        })
    }
}

impl Task for ClassifyTask {
    fn name(&self) -> &str {
        if self.linear_probe {
            "linear_probe"
        } else {
            "finetune"
        }
    }

    fn step(
        &mut self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        _ctx: &StepContext,
    ) -> Result<TaskLoss, TaskError> {
        let out = self.forward(model, &batch.inputs.to_device(device));
        self.loss(&out, batch, device)
    }

    /// Mixup/CutMix of the whole batch, the clips on the model's device, drawn from the step's
    /// seed; the labels become `(B, K)` soft targets. The labels stay where the loader made
    /// them (the CPU), so mixup's range check on them costs no device synchronisation; the
    /// loss moves the small targets over.
    fn prepare(&mut self, batch: Batch, device: Device, seed: u64) -> Result<Batch, TaskError> {
        let Some(m) = &self.mixup else {
            return Ok(batch);
        };
        let x = batch.inputs.to_device(device);
        // Two heads: (B, 2) [verb, noun]; the verb's labels mix with the clips.
        let labels = match self.two_heads {
            Some(_) => batch.labels.to_kind(Kind::Int64).select(1, 0),
            None => batch.labels.to_kind(Kind::Int64).reshape([-1]),
        };
        let size = x.size();
        // Mixing draws its own stream of the step's seed, apart from dropout's.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ MIXUP_STREAM);
        let invalid = |e: mixup::MixupError| TaskError::Invalid(e.to_string());
        let draw = m
            .draw(
                size[0] as usize,
                size[size.len() - 2],
                size[size.len() - 1],
                &mut rng,
            )
            .map_err(invalid)?;
        let (inputs, mut targets) = m.apply(&x, &labels, &draw).map_err(invalid)?;
        if let Some([_, nouns]) = self.two_heads {
            // (B, K_verb + K_noun): the noun's targets under the same mixing.
            let noun = batch.labels.to_kind(Kind::Int64).select(1, 1);
            targets = Tensor::cat(&[targets, m.targets(&noun, nouns, &draw)], 1);
        }
        Ok(Batch {
            inputs,
            labels: targets,
            ..batch
        })
    }
}

/// Mixes the step seed into mixup's own generator.
const MIXUP_STREAM: u64 = 0x6d69_7875_705f_7374;

impl ClassifyTask {
    /// Runs the model in training mode; the linear probe keeps the backbone in evaluation mode.
    pub fn forward(&self, model: &VideoModel, xs: &Tensor) -> ModelOutput {
        if !self.linear_probe {
            return model.forward_t(xs, true);
        }
        // The frozen backbone is never stepped: no graph through it, BN in evaluation mode.
        let features = tch::no_grad(|| model.backbone().forward_taps(xs, false, &mut Taps::off()));
        let out = model
            .head()
            .forward_features(&features, true, &mut Taps::off());
        ModelOutput {
            predictions: out.predictions,
            features: out.features,
        }
    }

    /// Loss and accuracy of `out` against the labels of `batch`.
    pub fn loss(
        &self,
        out: &ModelOutput,
        batch: &Batch,
        device: Device,
    ) -> Result<TaskLoss, TaskError> {
        if self.two_heads.is_some() {
            return two_head_loss(out, batch, device, self.label_smoothing);
        }
        let logits = out.predictions.single().ok_or_else(|| {
            TaskError::Invalid(format!(
                "classification needs one head output, the model gives {:?}",
                out.predictions.names()
            ))
        })?;
        if batch.labels.dim() == 2 {
            // Mixed batches: the reference's soft-target loss; accuracy against each clip's
            // larger share.
            let target = batch.labels.to_device(device);
            let loss = mixup::soft_target_cross_entropy(logits, &target);
            let y = target.argmax(-1, false);
            let metrics = vec![("acc".to_string(), accuracy(logits, &y))];
            return Ok(TaskLoss { loss, metrics });
        }
        // (B) class indices.
        let y = batch
            .labels
            .to_device(device)
            .to_kind(Kind::Int64)
            .reshape([-1]);
        // With smoothing, the reference's soft-target cross-entropy, which ATen's
        // `label_smoothing` computes without building the target.
        let loss = match self.label_smoothing {
            s if s > 0.0 => {
                logits.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, s)
            }
            _ => logits.cross_entropy_for_logits(&y),
        };
        let metrics = vec![("acc".to_string(), accuracy(logits, &y))];
        Ok(TaskLoss { loss, metrics })
    }
}

/// The verb + noun loss, with the heads' and the action's top-1 accuracy.
fn two_head_loss(
    out: &ModelOutput,
    batch: &Batch,
    device: Device,
    smoothing: f64,
) -> Result<TaskLoss, TaskError> {
    use crate::models::heads::{NOUN, VERB};
    let (Some(verb), Some(noun)) = (out.predictions.get(VERB), out.predictions.get(NOUN)) else {
        return Err(TaskError::Invalid(format!(
            "VIDEO.HEAD.NUM_CLASSES has two counts, but the model predicts {:?}, not {VERB} and {NOUN}",
            out.predictions.names()
        )));
    };
    let labels = batch.labels.to_device(device);
    let (loss, [lv, ln]) = super::verb_noun::loss(verb, noun, &labels, smoothing);
    let n = verb.size()[0].max(1) as f64;
    // Mixed batches: accuracy against each clip's larger share of each head's targets.
    let classes = match labels.kind() {
        Kind::Int64 | Kind::Int => labels,
        _ => {
            let kv = verb.size()[1];
            let kn = noun.size()[1];
            Tensor::stack(
                &[
                    labels.narrow(1, 0, kv).argmax(-1, false),
                    labels.narrow(1, kv, kn).argmax(-1, false),
                ],
                1,
            )
        }
    };
    let h = super::verb_noun::hits(verb, noun, &classes);
    let metrics = vec![
        ("loss_verb_class".to_string(), lv),
        ("loss_noun_class".to_string(), ln),
        ("acc_verb".to_string(), h.verb[0] / n),
        ("acc_noun".to_string(), h.noun[0] / n),
        ("acc_action".to_string(), h.action[0] / n),
    ];
    Ok(TaskLoss { loss, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loss with AUGMENTATION.LABEL_SMOOTHING is the reference's: the mean over the batch
    /// of `-sum(t * log_softmax(logits))` with its smoothed one-hot target `t`.
    #[test]
    fn label_smoothing_is_the_soft_target_cross_entropy_of_the_reference() {
        let logits =
            Tensor::from_slice(&[2.0f32, -1.0, 0.5, 0.0, 1.5, -0.5, 0.3, 0.3, 3.0]).view([3, 3]);
        let labels = [0i64, 2, 1];
        let (s, k) = (0.1, 3.0);
        let log_p = logits.log_softmax(1, Kind::Float);
        let mut want = 0.0;
        for (b, &label) in labels.iter().enumerate() {
            for c in 0..3 {
                let t = if c == label { 1.0 - s + s / k } else { s / k };
                want -= t * log_p.double_value(&[b as i64, c]);
            }
        }
        want /= 3.0;
        let task = ClassifyTask {
            linear_probe: false,
            label_smoothing: s,
            mixup: None,
            two_heads: None,
        };
        let out = ModelOutput {
            predictions: crate::models::heads::Predictions::Tensor(logits.shallow_clone()),
            features: Tensor::zeros([3, 1], (Kind::Float, Device::Cpu)),
        };
        let batch = Batch {
            inputs: Tensor::zeros([3], (Kind::Float, Device::Cpu)),
            labels: Tensor::from_slice(&labels),
            indices: vec![0, 1, 2],
            sources: vec![0, 1, 2],
            views: vec![0; 3],
            skipped: Vec::new(),
            make_seconds: 0.0,
            decode_seconds: 0.0,
        };
        let got = task.loss(&out, &batch, Device::Cpu).unwrap().loss;
        let y = Tensor::from_slice(&labels);
        assert!(
            (got.double_value(&[]) - want).abs() < 1e-6,
            "{got} vs {want}"
        );
        let plain = logits.cross_entropy_for_logits(&y).double_value(&[]);
        assert!((plain - want).abs() > 1e-3, "smoothing changed nothing");
    }

    /// Two heads under mixup: the clips mix once, and the verb's and the noun's targets by the
    /// same λ (the reference's one λ for its dict of targets), verb columns first.
    #[test]
    fn mixup_mixes_both_heads_by_one_lambda() {
        let mut cfg = Config::default();
        cfg.video.head.num_classes_per_head = Some(vec![3, 4]);
        cfg.augmentation.mixup.enable = true;
        cfg.augmentation.mixup.prob = 1.0;
        cfg.augmentation.mixup.alpha = 1.0;
        cfg.augmentation.cutmix.enable = false;
        let mut task = ClassifyTask::from_config(&cfg).unwrap();
        assert_eq!(task.two_heads, Some([3, 4]));
        // Clip i is mixed with clip 3 - i; every pair differs in verb and in noun.
        let labels = Tensor::from_slice(&[0i64, 0, 1, 1, 2, 2, 1, 3]).view([4, 2]);
        let batch = Batch {
            inputs: Tensor::rand([4, 3, 2, 8, 8], (Kind::Float, Device::Cpu)),
            labels: labels.shallow_clone(),
            indices: vec![0, 1, 2, 3],
            sources: vec![0, 1, 2, 3],
            views: vec![0; 4],
            skipped: Vec::new(),
            make_seconds: 0.0,
            decode_seconds: 0.0,
        };
        let mixed = task.prepare(batch, Device::Cpu, 7).unwrap();
        assert_eq!(mixed.labels.size(), [4, 7]);
        let t = |i: i64, c: i64| mixed.labels.double_value(&[i, c]);
        for i in 0..4 {
            let (v, n) = (labels.int64_value(&[i, 0]), labels.int64_value(&[i, 1]));
            let lam = t(i, v);
            assert!(lam > 0.0 && lam < 1.0, "clip {i}: λ {lam}");
            assert!((t(i, 3 + n) - lam).abs() < 1e-6, "clip {i}");
            let verb_sum: f64 = (0..3).map(|c| t(i, c)).sum();
            let noun_sum: f64 = (3..7).map(|c| t(i, c)).sum();
            assert!((verb_sum - 1.0).abs() < 1e-6 && (noun_sum - 1.0).abs() < 1e-6);
        }
    }
}
