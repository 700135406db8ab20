//! In-training validation (docs/training.md#validation): every TRAIN.EVAL_PERIOD epochs the
//! model, in evaluation mode, scores one view of every video of the val split; acc@1, acc@5 and
//! the loss go to metrics.jsonl and TensorBoard as `val/*`, and the loop keeps the checkpoint of
//! the best acc@1 so far. A two-head (EPIC-Kitchens) model's acc@1 / acc@5 are the action's,
//! with `verb_acc@k` and `noun_acc@k` beside them (docs/epic.md#metrics).

use tch::{Device, Kind, Tensor};

use super::TrainError;
use crate::data::loader::Loader;
use crate::models::Session;

/// Epochs at the end of a supervised run that all validate, as the reference's.
pub const LAST_EPOCHS_VALIDATED: u64 = 10;

/// Smallest probability the loss takes the log of: a confidently wrong clip costs ln(1e12)
/// instead of infinity.
const MIN_PROBABILITY: f64 = 1e-12;

/// The val split and when to score it.
pub struct Validation {
    /// One view per video, in a fixed order: every pass sees the same clips.
    pub loader: Loader,
    /// TRAIN.EVAL_PERIOD in epochs; 0 never validates.
    pub period: u64,
    /// Every one of the run's last this many epochs validates too (supervised runs).
    pub last_epochs: u64,
}

/// What one validation pass measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValScores {
    pub clips: usize,
    /// Mean cross-entropy of the evaluation-mode probabilities (two heads: the verb's plus the
    /// noun's).
    pub loss: f64,
    /// Two heads: the action's (tasks/verb_noun.rs), which picks the best checkpoint.
    pub acc1: f64,
    /// `None` with fewer than 5 classes, where every clip is a hit.
    pub acc5: Option<f64>,
    /// A two-head model's verb and noun accuracies.
    pub heads: Option<HeadScores>,
}

/// Top-1 and top-5 (`None` under 5 classes) of EPIC's verb and noun heads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadScores {
    pub verb: (f64, Option<f64>),
    pub noun: (f64, Option<f64>),
}

impl ValScores {
    /// The `(name, value)` records of `val/*`.
    pub fn records(&self) -> Vec<(&'static str, f64)> {
        let mut r = vec![("loss", self.loss), ("acc@1", self.acc1)];
        r.extend(self.acc5.map(|a| ("acc@5", a)));
        if let Some(h) = &self.heads {
            r.push(("verb_acc@1", h.verb.0));
            r.extend(h.verb.1.map(|a| ("verb_acc@5", a)));
            r.push(("noun_acc@1", h.noun.0));
            r.extend(h.noun.1.map(|a| ("noun_acc@5", a)));
        }
        r
    }
}

impl Validation {
    /// Whether the end of 0-based `epoch` validates: when (epoch + 1) is a multiple of the
    /// period, and in each of the run's last [`Validation::last_epochs`] epochs.
    pub fn due(&self, epoch: u64, max_epoch: u64) -> bool {
        self.period > 0
            && ((epoch + 1) % self.period == 0 || epoch + 1 + self.last_epochs > max_epoch)
    }

    /// Scores the model on the whole val split; `None` when the loader's stop flag ended the
    /// pass early (a signal), which is no score at all. In a distributed run every rank scores
    /// its share of the split (the loader holds a [`crate::data::loader::Strided`] shard) and the
    /// sums are all-reduced, so every rank returns the scores of the whole split.
    pub fn run(&self, session: &Session) -> Result<Option<ValScores>, TrainError> {
        let mut sums = Sums::default();
        let mut two = TwoHeadSums::default();
        let mut batches = self.loader.epoch(0);
        for batch in batches.by_ref() {
            let b = batch?;
            if let Some((verb, noun)) = session.verb_noun_scores(&b.inputs) {
                two.add(&verb, &noun, &b.labels.to_device(verb.device()));
                continue;
            }
            let Some(p) = session.class_scores(&b.inputs) else {
                return Err(TrainError::Run(
                    "validation needs a model with one classification output".into(),
                ));
            };
            sums.add(&p.to_kind(Kind::Float), &b.labels.to_device(p.device()))?;
        }
        let mut interrupted = batches.interrupted();
        if let Some(w) = crate::dist::world().filter(|w| w.placement.world_size > 1) {
            (sums, interrupted) = sums.over_ranks(w, interrupted)?;
            // Known from the model, not the batches: a rank whose shard is empty reduces too.
            if session.model.head().outputs_per_head().len() == 2 {
                two = two.over_ranks(w)?;
            }
        }
        if interrupted {
            return Ok(None);
        }
        if two.clips > 0 {
            return Ok(Some(two.scores()));
        }
        Ok(Some(sums.scores()))
    }
}

/// Running totals of a two-head pass.
#[derive(Default)]
struct TwoHeadSums {
    clips: usize,
    loss: f64,
    hits: crate::tasks::verb_noun::Hits,
    classes: [i64; 3],
}

impl TwoHeadSums {
    /// Adds `(B, K_verb)` and `(B, K_noun)` probabilities with `(B, 2)` labels.
    fn add(&mut self, verb: &Tensor, noun: &Tensor, labels: &Tensor) {
        use crate::tasks::verb_noun::hits;
        let labels = labels.to_kind(Kind::Int64);
        for (i, p) in [verb, noun].into_iter().enumerate() {
            // Each head's probability of its label, as the one-head loss.
            let at = p
                .to_kind(Kind::Float)
                .gather(1, &labels.narrow(1, i as i64, 1), false);
            self.loss -= at
                .clamp_min(MIN_PROBABILITY)
                .log()
                .sum(Kind::Double)
                .double_value(&[]);
        }
        self.hits.add(&hits(verb, noun, &labels));
        self.clips += verb.size()[0] as usize;
        let (kv, kn) = (verb.size()[1], noun.size()[1]);
        self.classes = [kv, kn, kv * kn];
    }

    /// The sums of every rank (as [`Sums::over_ranks`]).
    fn over_ranks(&self, w: &crate::dist::World) -> Result<Self, TrainError> {
        let h = &self.hits;
        let wide = |k: i64| f64::from(u8::from(k >= 5));
        let local = [
            self.clips as f64,
            self.loss,
            h.verb[0],
            h.verb[1],
            h.noun[0],
            h.noun[1],
            h.action[0],
            h.action[1],
            wide(self.classes[0]),
            wide(self.classes[1]),
            wide(self.classes[2]),
        ];
        let v = w.sum(&local).map_err(TrainError::dist)?;
        // Only whether a prediction has 5 classes is read from `classes`.
        let classes = [v[8], v[9], v[10]].map(|f| if f > 0.0 { 5 } else { 0 });
        Ok(Self {
            clips: v[0].round() as usize,
            loss: v[1],
            hits: crate::tasks::verb_noun::Hits {
                verb: [v[2], v[3]],
                noun: [v[4], v[5]],
                action: [v[6], v[7]],
            },
            classes,
        })
    }

    fn scores(&self) -> ValScores {
        let n = self.clips.max(1) as f64;
        let pair = |h: [f64; 2], k: i64| (h[0] / n, (k >= 5).then(|| h[1] / n));
        let action = pair(self.hits.action, self.classes[2]);
        ValScores {
            clips: self.clips,
            loss: self.loss / n,
            acc1: action.0,
            acc5: action.1,
            heads: Some(HeadScores {
                verb: pair(self.hits.verb, self.classes[0]),
                noun: pair(self.hits.noun, self.classes[1]),
            }),
        }
    }
}

/// Running totals of a pass.
#[derive(Default)]
struct Sums {
    clips: usize,
    loss: f64,
    top1: f64,
    top5: f64,
    classes: i64,
}

impl Sums {
    /// Adds a batch of `(B, K)` probabilities `p` with `(B)` class labels.
    fn add(&mut self, p: &Tensor, labels: &Tensor) -> Result<(), TrainError> {
        let k = p.size()[1];
        let labels = labels.to_kind(Kind::Int64);
        // (B, 1): each clip's probability of its label.
        let at_label = p.gather(1, &labels.unsqueeze(1), false);
        let loss = -at_label.clamp_min(MIN_PROBABILITY).log().sum(Kind::Double);
        let (_, idx) = p.topk(k.min(5), 1, true, true);
        // (B, min(K, 5)) hits; column 0 is the top-1 guess.
        let hits = idx.eq_tensor(&labels.unsqueeze(1));
        let top1 = hits.select(1, 0).sum(Kind::Double);
        let top5 = hits.any_dim(1, false).sum(Kind::Double);
        let total = Tensor::stack(&[loss, top1, top5], 0).to_device(Device::Cpu);
        let [loss, top1, top5] = <[f64; 3]>::try_from(Vec::<f64>::try_from(&total)?)
            .map_err(|_| TrainError::Run("validation: unexpected score shape".into()))?;
        self.clips += p.size()[0] as usize;
        self.loss += loss;
        self.top1 += top1;
        self.top5 += top5;
        self.classes = k;
        Ok(())
    }

    /// The sums over every rank's shard, and whether any rank's pass was interrupted (one
    /// all-reduce, which every rank reaches even when its own pass stopped early).
    fn over_ranks(
        &self,
        w: &crate::dist::World,
        interrupted: bool,
    ) -> Result<(Self, bool), TrainError> {
        let local = [
            self.clips as f64,
            self.loss,
            self.top1,
            self.top5,
            f64::from(u8::from(self.classes >= 5)),
            f64::from(u8::from(interrupted)),
        ];
        let v = w.sum(&local).map_err(TrainError::dist)?;
        let total = Self {
            clips: v[0].round() as usize,
            loss: v[1],
            top1: v[2],
            top5: v[3],
            // A rank whose shard is empty saw no class count; any rank that did decides.
            classes: if v[4] > 0.0 { self.classes.max(5) } else { 0 },
        };
        Ok((total, v[5] > 0.0))
    }

    fn scores(&self) -> ValScores {
        let n = self.clips.max(1) as f64;
        ValScores {
            clips: self.clips,
            loss: self.loss / n,
            acc1: self.top1 / n,
            acc5: (self.classes >= 5).then(|| self.top5 / n),
            heads: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validation(period: u64, last: u64) -> Validation {
        let source = crate::data::sources::synthetic_videos::SyntheticVideos::new(
            crate::data::dataset::Split::Val,
            2,
            2,
            2,
            8,
        );
        Validation {
            loader: Loader::new(std::sync::Arc::new(source), Default::default()),
            period,
            last_epochs: last,
        }
    }

    #[test]
    fn due_every_period_and_in_the_last_epochs() {
        let v = validation(5, 3);
        let due: Vec<u64> = (0..20).filter(|&e| v.due(e, 20)).collect();
        assert_eq!(due, vec![4, 9, 14, 17, 18, 19]);
        assert!((0..20).all(|e| !validation(0, 3).due(e, 20)));
    }

    #[test]
    fn scores_count_hits_and_cross_entropy() {
        let mut s = Sums::default();
        // Two clips of six classes: the first right at the top, the second's label third.
        let p = Tensor::from_slice(&[
            0.5f32, 0.1, 0.1, 0.1, 0.1, 0.1, //
            0.4, 0.3, 0.2, 0.05, 0.05, 0.0,
        ])
        .view([2, 6]);
        s.add(&p, &Tensor::from_slice(&[0i64, 2])).unwrap();
        let v = s.scores();
        assert_eq!(v.clips, 2);
        assert!((v.acc1 - 0.5).abs() < 1e-9, "{v:?}");
        assert_eq!(v.acc5, Some(1.0));
        let ce = -(0.5f64.ln() + 0.2f64.ln()) / 2.0;
        assert!((v.loss - ce).abs() < 1e-6, "{v:?}");
        // A probability of 0 is clamped, never infinite.
        let mut z = Sums::default();
        z.add(&p, &Tensor::from_slice(&[5i64, 5])).unwrap();
        assert!(z.scores().loss.is_finite());
        assert_eq!(z.scores().acc5, Some(0.5));
    }
}
