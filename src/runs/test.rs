//! `tada test`: multi-view testing (docs/training.md#testing). Every video of the test split is cut
//! into TEST.NUM_ENSEMBLE_VIEWS temporal x TEST.NUM_SPATIAL_CROPS spatial views; the model's class
//! probabilities of a video's views are fused (DATA.ENSEMBLE_METHOD: sum or max) and scored:
//! top-1 / top-5 accuracy and per-class accuracy.

use std::path::Path;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::load_into;
use crate::config::schema::EnsembleMethod;
use crate::config::LoadedConfig;
use crate::data::dataset::Split;
use crate::data::loader::Loader;
use crate::data::pipeline::{labelled_clips, loader_config};
use crate::models::inference::read_weights;

use crate::models::Session;
use crate::train::TrainError;

/// Accuracy of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassAccuracy {
    pub class: i64,
    pub videos: usize,
    pub accuracy: f64,
}

/// What `tada test` measured; written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub videos: usize,
    pub views_per_video: usize,
    pub ensemble: String,
    pub acc1: f64,
    /// Top-5 accuracy; `None` (JSON null) when the model has fewer than 5 classes, where every
    /// video would count as a hit.
    pub acc5: Option<f64>,
    pub per_class: Vec<ClassAccuracy>,
}

/// Fused scores per video: `(label, scores)` indexed by the loader's `source`.
struct Fusion {
    method: EnsembleMethod,
    videos: Vec<Option<(i64, Tensor)>>,
}

impl Fusion {
    fn add(&mut self, source: usize, label: i64, scores: Tensor) {
        if source >= self.videos.len() {
            self.videos.resize_with(source + 1, || None);
        }
        let slot = &mut self.videos[source];
        *slot = Some(match slot.take() {
            None => (label, scores),
            Some((l, acc)) => (
                l,
                match self.method {
                    EnsembleMethod::Sum => acc + scores,
                    EnsembleMethod::Max => acc.maximum(&scores),
                },
            ),
        });
    }
}

fn run(session: &Session, loader: Loader, fusion: &mut Fusion) -> Result<(), TrainError> {
    for batch in loader.epoch(0) {
        let b = batch?;
        let out = tch::no_grad(|| {
            session
                .model
                .forward_t(&b.inputs.to_device(session.device), false)
        });
        let Some(p) = out.predictions.single() else {
            return Err(TrainError::Run(
                "`tada test` needs a model with one classification output".into(),
            ));
        };
        // (B, K) probabilities (evaluation-mode heads apply their activation).
        let p = p.to_device(Device::Cpu).to_kind(Kind::Float);
        let labels = Vec::<i64>::try_from(&b.labels)?;
        for (k, (&source, label)) in b.sources.iter().zip(labels).enumerate() {
            fusion.add(source, label, p.get(k as i64));
        }
    }
    Ok(())
}

/// Tests the config's model with `weights` on the test split of TEST.DATASET (or TRAIN.DATASET).
pub fn test(loaded: &LoadedConfig, weights: &Path) -> Result<TestReport, TrainError> {
    let cfg = &loaded.config;
    let session = Session::new(cfg)?;
    let file = read_weights(weights)?;
    let report = load_into(&session.vs, &file, weights, false)?;
    if !report.missing.is_empty() {
        return Err(TrainError::Run(format!(
            "{} does not hold every weight of the configured model; missing: {}",
            weights.display(),
            report.missing.join(", ")
        )));
    }
    let mut fusion = Fusion {
        method: cfg.data.ensemble_method,
        videos: Vec::new(),
    };
    let clips = labelled_clips(cfg, Split::Test)?;
    super::check_class_count(cfg, "TEST.DATASET", clips.entries())?;
    let views = clips.views_per_video();
    let loader = Loader::new(
        clips.into_source(),
        loader_config(cfg, Split::Test, cfg.random_seed),
    );
    run(&session, loader, &mut fusion)?;
    Ok(score(&fusion, views))
}

fn score(fusion: &Fusion, views: usize) -> TestReport {
    let (mut top1, mut top5, mut n) = (0usize, 0usize, 0usize);
    let mut classes = i64::MAX;
    let mut per_class: std::collections::BTreeMap<i64, (usize, usize)> = Default::default();
    for (label, scores) in fusion.videos.iter().flatten() {
        classes = classes.min(scores.size()[0]);
        let k = scores.size()[0].min(5);
        let (_, idx) = scores.topk(k, 0, true, true);
        let idx = Vec::<i64>::try_from(&idx).unwrap_or_default();
        let hit1 = idx.first() == Some(label);
        top1 += usize::from(hit1);
        top5 += usize::from(idx.contains(label));
        n += 1;
        let e = per_class.entry(*label).or_default();
        e.0 += 1;
        e.1 += usize::from(hit1);
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    TestReport {
        videos: n,
        views_per_video: views,
        ensemble: format!("{:?}", fusion.method).to_lowercase(),
        acc1: frac(top1, n),
        acc5: (classes >= 5).then(|| frac(top5, n)),
        per_class: per_class
            .into_iter()
            .map(|(class, (videos, right))| ClassAccuracy {
                class,
                videos,
                accuracy: frac(right, videos),
            })
            .collect(),
    }
}
