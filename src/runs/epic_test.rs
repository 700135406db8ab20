//! `tada test` of a two-head EPIC-Kitchens model, and TASK_TYPE submission: every segment cut
//! into TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views, each head's probabilities
//! fused over the views (DATA.ENSEMBLE_METHOD sum or max), as the reference's
//! `EpicKitchenMeter`:
//!
//! - verb and noun top-1 / top-5 of the fused heads;
//! - `action`: the reference's `joint_class`, the outer product of the fused verb and noun
//!   (softmaxed first, as its `joint_topks_correct` does to fused sums), the headline number;
//! - `action_views`: its `action_class_ind_pred`, each view's verb x noun outer product fused
//!   over the views.
//!
//! The submission writes the reference's challenge JSON (docs/epic.md#submission).

use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};
use tch::{Device, Kind, Tensor};

use super::test::{score, Fusion, TestReport};
use crate::config::schema::{ActionEnsemble, EnsembleMethod};
use crate::config::Config;
use crate::data::dataset::annotations::epic::EpicList;
use crate::data::dataset::{class_names, Split};
use crate::data::loader::Loader;
use crate::data::pipeline::{epic_clips, loader_config};
use crate::models::Session;
use crate::tasks::verb_noun::{action_labels, action_scores, topk_hits};
use crate::train::progress::Progress;
use crate::train::TrainError;

/// Top-1 and top-5 accuracy of one prediction (`acc5` `None` under 5 classes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TopK {
    pub acc1: f64,
    pub acc5: Option<f64>,
}

/// The EPIC-Kitchens numbers of a test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpicScores {
    pub verb: TopK,
    pub noun: TopK,
    /// The reference's `joint_class`: fused verb x fused noun.
    pub action: TopK,
    /// The reference's `action_class_ind_pred`: per-view verb x noun, fused.
    pub action_views: TopK,
}

/// How many action scores a submission lists per segment (the reference's top 100).
pub const SUBMISSION_ACTIONS: usize = 100;

/// One segment's fused scores.
struct Segment {
    labels: [i64; 2],
    verb: Tensor,
    noun: Tensor,
    /// Per-view outer products fused, `(K_verb * K_noun)`, while views are still coming.
    action: Option<Tensor>,
    views: usize,
    /// Once every view is in: the best [`SUBMISSION_ACTIONS`] fused per-view actions
    /// `(index, score)`, best first (kept instead of the whole product).
    top_actions: Vec<(i64, f64)>,
}

/// Fused scores of every segment, by the loader's `source`.
struct EpicFusion {
    method: EnsembleMethod,
    views: usize,
    segments: Vec<Option<Segment>>,
}

impl EpicFusion {
    fn fuse(&self, acc: Tensor, x: &Tensor) -> Tensor {
        match self.method {
            EnsembleMethod::Sum => acc + x,
            EnsembleMethod::Max => acc.maximum(x),
        }
    }

    /// Adds one view's `(K_verb)` and `(K_noun)` probabilities.
    fn add(&mut self, source: usize, labels: [i64; 2], verb: Tensor, noun: Tensor) {
        if source >= self.segments.len() {
            self.segments.resize_with(source + 1, || None);
        }
        // (Kv) x (Kn) -> (Kv * Kn), this view's action scores.
        let action = (verb.unsqueeze(1) * noun.unsqueeze(0)).reshape([-1]);
        let seg = match self.segments[source].take() {
            None => Segment {
                labels,
                verb,
                noun,
                action: Some(action),
                views: 1,
                top_actions: Vec::new(),
            },
            Some(s) => Segment {
                labels: s.labels,
                verb: self.fuse(s.verb, &verb),
                noun: self.fuse(s.noun, &noun),
                action: s.action.map(|a| self.fuse(a, &action)),
                views: s.views + 1,
                top_actions: s.top_actions,
            },
        };
        self.segments[source] = Some(finish(seg, self.views));
    }
}

/// A segment with all its views: its fused action product reduced to its best entries.
fn finish(mut seg: Segment, views: usize) -> Segment {
    if seg.views < views {
        return seg;
    }
    if let Some(a) = seg.action.take() {
        let k = (SUBMISSION_ACTIONS as i64).min(a.size()[0]);
        let (vals, idx) = a.topk(k, 0, true, true);
        let vals = Vec::<f64>::try_from(&vals.to_kind(Kind::Double)).unwrap_or_default();
        let idx = Vec::<i64>::try_from(&idx).unwrap_or_default();
        seg.top_actions = idx.into_iter().zip(vals).collect();
    }
    seg
}

/// Scores every view of `loader` into `fusion`.
fn run(session: &Session, loader: Loader, fusion: &mut EpicFusion) -> Result<(), TrainError> {
    let total = loader.batches_per_epoch() as u64;
    let mut progress = Progress::new("test", total, (total / 20).max(1));
    let mut clips = 0usize;
    for batch in loader.epoch(0) {
        let b = batch?;
        let Some((verb, noun)) = session.verb_noun_scores(&b.inputs) else {
            return Err(TrainError::Run(
                "epickitchen100 needs a model with a verb and a noun head (BaseHeadx2, \
                 TransformerHeadx2)"
                    .into(),
            ));
        };
        // (B, K) probabilities (evaluation-mode heads apply their activation).
        let verb = verb.to_device(Device::Cpu).to_kind(Kind::Float);
        let noun = noun.to_device(Device::Cpu).to_kind(Kind::Float);
        // (B, 2) [verb, noun] labels.
        let labels = Vec::<i64>::try_from(&b.labels.reshape([-1]))?;
        for (k, &source) in b.sources.iter().enumerate() {
            let l = [labels[2 * k], labels[2 * k + 1]];
            fusion.add(source, l, verb.get(k as i64), noun.get(k as i64));
        }
        clips += b.sources.len();
        progress.inc(1, || format!("{clips} clips"));
    }
    progress.finish();
    Ok(())
}

/// Scores `list` with the test views; the fused segments come back in list order, with the
/// narration ids.
fn fused(
    cfg: &Config,
    session: &Session,
    list: EpicList,
) -> Result<(EpicFusion, Vec<String>), TrainError> {
    let clips = epic_clips(cfg, list, Split::Test)?;
    let ids = clips.narrations().iter().map(|n| n.id.clone()).collect();
    let views = clips.config().views_per_video();
    let mut fusion = EpicFusion {
        method: cfg.data.ensemble_method,
        views,
        segments: Vec::new(),
    };
    // Under a launcher every rank scores every view (rank 0 writes): a segment's per-view
    // action products are fused where its views are.
    let loader = Loader::new(
        std::sync::Arc::new(clips),
        loader_config(cfg, Split::Test, cfg.random_seed),
    );
    run(session, loader, &mut fusion)?;
    Ok((fusion, ids))
}

/// The test report of the validation list (the labelled held-out segments).
pub(super) fn test(cfg: &Config, session: &Session) -> Result<TestReport, TrainError> {
    let (fusion, _) = fused(cfg, session, EpicList::Validation)?;
    let segs: Vec<&Segment> = fusion.segments.iter().flatten().collect();
    if segs.is_empty() {
        return Err(TrainError::Run("the test scored no segment".into()));
    }
    // (N, K) fused scores, (N) labels.
    let verb = Tensor::stack(
        &segs
            .iter()
            .map(|s| s.verb.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    );
    let noun = Tensor::stack(
        &segs
            .iter()
            .map(|s| s.noun.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    );
    let yv = Tensor::from_slice(&segs.iter().map(|s| s.labels[0]).collect::<Vec<_>>());
    let yn = Tensor::from_slice(&segs.iter().map(|s| s.labels[1]).collect::<Vec<_>>());
    let (kv, kn) = (verb.size()[1], noun.size()[1]);
    let n = segs.len() as f64;
    let top = |h: [f64; 2], k: i64| TopK {
        acc1: h[0] / n,
        acc5: (k >= 5).then(|| h[1] / n),
    };
    let ya = action_labels(&yv, &yn, kn);
    let action = top(topk_hits(&action_scores(&verb, &noun), &ya), kv * kn);
    let ya = Vec::<i64>::try_from(&ya)?;
    let mut views_hits = [0.0; 2];
    for (s, y) in segs.iter().zip(ya) {
        let best: Vec<i64> = s.top_actions.iter().take(5).map(|a| a.0).collect();
        views_hits[0] += f64::from(u8::from(best.first() == Some(&y)));
        views_hits[1] += f64::from(u8::from(best.contains(&y)));
    }
    let scores = EpicScores {
        verb: top(topk_hits(&verb, &yv), kv),
        noun: top(topk_hits(&noun, &yn), kn),
        action,
        action_views: top(views_hits, kv * kn),
    };
    // Per-class accuracy and confusion of the verbs, with their names.
    let mut verbs = Fusion {
        method: fusion.method,
        videos: Vec::new(),
    };
    for (i, s) in segs.iter().enumerate() {
        verbs.add(i, s.labels[0], s.verb.shallow_clone());
    }
    let names = |count| {
        class_names(
            Some(crate::config::schema::Dataset::Epickitchen100),
            &cfg.data,
            Split::Test,
            count,
        )
    };
    let mut report = score(&verbs, fusion.views, names);
    report.acc1 = scores.action.acc1;
    report.acc5 = scores.action.acc5;
    report.epic = Some(scores);
    Ok(report)
}

/// The challenge JSON of the test timestamps (TASK_TYPE submission), as the reference's
/// `submission_test`: per segment every verb's and noun's fused score, and the best 100
/// actions `"verb,noun"` by SUBMISSION.ACTION_CLASS_ENSUMBLE_METHOD.
pub fn submission(
    loaded: &crate::config::LoadedConfig,
    weights: &Path,
    ema: bool,
) -> Result<Value, TrainError> {
    let cfg = &loaded.config;
    let session = super::test::load_session(cfg, weights, ema)?;
    let (fusion, ids) = fused(cfg, &session, EpicList::TestTimestamps)?;
    let method = cfg.submission.action_class_ensumble_method;
    let mut results = Map::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(seg) = fusion.segments.get(i).and_then(Option::as_ref) else {
            return Err(TrainError::Run(format!(
                "segment {id} was not scored (its frames could not be read; the loader's log \
                 names why)"
            )));
        };
        results.insert(id.clone(), segment_json(seg, method)?);
    }
    Ok(json!({
        "version": "0.2",
        "challenge": "action_recognition",
        "sls_pt": 2,
        "sls_tl": 3,
        "sls_td": 3,
        "results": results,
    }))
}

/// `{"verb": {"0": p, …}, "noun": {…}, "action": {"v,n": p, …}}` of one segment.
fn segment_json(seg: &Segment, method: ActionEnsemble) -> Result<Value, TrainError> {
    let listed = |t: &Tensor| -> Result<Map<String, Value>, TrainError> {
        let v = Vec::<f64>::try_from(&t.to_kind(Kind::Double))?;
        Ok(v.into_iter()
            .enumerate()
            .map(|(i, p)| (i.to_string(), json!(p)))
            .collect())
    };
    let kn = seg.noun.size()[0];
    let actions: Vec<(i64, f64)> = match method {
        ActionEnsemble::Sum => seg.top_actions.clone(),
        ActionEnsemble::Calculate => {
            // The fused verb x fused noun, as they are (the reference applies no softmax here).
            let a = (seg.verb.unsqueeze(1) * seg.noun.unsqueeze(0)).reshape([-1]);
            let k = (SUBMISSION_ACTIONS as i64).min(a.size()[0]);
            let (vals, idx) = a.topk(k, 0, true, true);
            let vals = Vec::<f64>::try_from(&vals.to_kind(Kind::Double))?;
            Vec::<i64>::try_from(&idx)?.into_iter().zip(vals).collect()
        }
    };
    // The reference writes `i // 300, i % 300` (EPIC-100's noun count); tada divides by the
    // model's noun count, the same for EPIC-100.
    let action: Map<String, Value> = actions
        .into_iter()
        .map(|(i, p)| (format!("{},{}", i / kn, i % kn), json!(p)))
        .collect();
    Ok(json!({
        "verb": listed(&seg.verb)?,
        "noun": listed(&seg.noun)?,
        "action": action,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-view actions fuse the views' products; `action` multiplies the fused heads: with
    /// two views that disagree the two rankings differ, as in the reference.
    #[test]
    fn per_view_actions_fuse_products_of_each_view() {
        let mut f = EpicFusion {
            method: EnsembleMethod::Sum,
            views: 2,
            segments: Vec::new(),
        };
        let t = |v: &[f32]| Tensor::from_slice(v);
        f.add(0, [0, 0], t(&[1.0, 0.0]), t(&[0.0, 1.0]));
        assert!(f.segments[0].as_ref().unwrap().top_actions.is_empty());
        f.add(0, [0, 0], t(&[0.0, 1.0]), t(&[1.0, 0.0]));
        let s = f.segments[0].as_ref().unwrap();
        assert!(s.action.is_none());
        // Views: (0,1) and (1,0) each 1.0; (0,0) and (1,1) never.
        let best: Vec<i64> = s.top_actions.iter().take(2).map(|a| a.0).collect();
        assert_eq!(best.len(), 2);
        assert!(best.contains(&1) && best.contains(&2), "{best:?}");
        assert_eq!(s.top_actions[2].1, 0.0);
        // Fused heads are (1, 1) and (1, 1): every pair alike.
        let joint = (s.verb.unsqueeze(1) * s.noun.unsqueeze(0)).reshape([-1]);
        assert!(joint.allclose(
            &Tensor::ones([4], (Kind::Float, Device::Cpu)),
            0.0,
            0.0,
            false
        ));
        let json = segment_json(s, ActionEnsemble::Sum).unwrap();
        assert_eq!(json["verb"]["1"], 1.0);
        assert!(json["action"].get("0,1").is_some() && json["action"].get("1,0").is_some());
        assert_eq!(json["action"].as_object().unwrap().len(), 4);
    }
}
