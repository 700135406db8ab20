//! `tada test`: multi-view testing (docs/training.md#testing). Every video of the test split is cut
//! into TEST.NUM_ENSEMBLE_VIEWS temporal x TEST.NUM_SPATIAL_CROPS spatial views; the model's class
//! probabilities of a video's views are fused (DATA.ENSEMBLE_METHOD: sum or max) and scored:
//! top-1 / top-5 accuracy, per-class accuracy and the confusion matrix, with the dataset's class
//! names.

use std::path::Path;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::load_into;
use crate::config::schema::EnsembleMethod;
use crate::config::LoadedConfig;
use crate::data::dataset::{class_names, Split};
use crate::data::loader::Loader;
use crate::data::pipeline::{dataset_for, labelled_clips, loader_config};
use crate::models::inference::{read_ema_weights, read_weights};
use crate::models::Session;
use crate::train::progress::Progress;
use crate::train::TrainError;

/// Accuracy of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassAccuracy {
    pub class: i64,
    /// The dataset's name of the class (`class {i}` where it names none).
    pub name: String,
    pub videos: usize,
    pub accuracy: f64,
}

/// Videos by true class (rows) and top-1 prediction (columns) after view fusion.
#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    /// Names of rows and columns alike, by class index.
    pub classes: Vec<String>,
    /// `counts[true][predicted]`.
    pub counts: Vec<Vec<u64>>,
}

/// What `tada test` measured; written as JSON. For a two-head (EPIC-Kitchens) model `acc1` /
/// `acc5` are the action's, `per_class` and `confusion` the verbs', and `epic` holds every
/// head's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub videos: usize,
    pub views_per_video: usize,
    pub ensemble: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epic: Option<super::epic_test::EpicScores>,
    pub acc1: f64,
    /// Top-5 accuracy; `None` (JSON null) when the model has fewer than 5 classes, where every
    /// video would count as a hit.
    pub acc5: Option<f64>,
    pub per_class: Vec<ClassAccuracy>,
    pub confusion: Confusion,
}

/// Fused scores per video: `(label, scores)` indexed by the loader's `source`.
pub(super) struct Fusion {
    pub(super) method: EnsembleMethod,
    pub(super) videos: Vec<Option<(i64, Tensor)>>,
}

impl Fusion {
    pub(super) fn add(&mut self, source: usize, label: i64, scores: Tensor) {
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

/// Runs every batch of the test pass, with a progress bar (plain lines without a terminal)
/// over the batches.
fn run(session: &Session, loader: Loader, fusion: &mut Fusion) -> Result<(), TrainError> {
    let total = loader.batches_per_epoch() as u64;
    let mut progress = Progress::new("test", total, (total / 20).max(1));
    let mut clips = 0usize;
    for batch in loader.epoch(0) {
        let b = batch?;
        let Some(p) = session.class_scores(&b.inputs) else {
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
        clips += b.sources.len();
        progress.inc(1, || format!("{clips} clips"));
    }
    progress.finish();
    Ok(())
}

/// Tests the config's model with `weights` on the test split of TEST.DATASET (or TRAIN.DATASET);
/// with `ema`, the file's EMA weights (MODEL.EMA) instead of its plain ones.
pub fn test(loaded: &LoadedConfig, weights: &Path, ema: bool) -> Result<TestReport, TrainError> {
    let cfg = &loaded.config;
    let session = load_session(cfg, weights, ema)?;
    if dataset_for(cfg, Split::Test).ok() == Some(crate::config::schema::Dataset::Epickitchen100) {
        return super::epic_test::test(cfg, &session);
    }
    let mut fusion = Fusion {
        method: cfg.data.ensemble_method,
        videos: Vec::new(),
    };
    let clips = labelled_clips(cfg, Split::Test)?;
    super::check_class_count(cfg, "TEST.DATASET", clips.entries())?;
    let views = clips.views_per_video();
    let mut source = clips.into_source();
    let world = crate::dist::world();
    if let Some(w) = world {
        // Each rank scores every world-th view; the fused scores are combined below.
        let (r, n) = (w.placement.rank, w.placement.world_size);
        source = std::sync::Arc::new(crate::data::loader::Strided::new(source, r, n));
    }
    let loader = Loader::new(source, loader_config(cfg, Split::Test, cfg.random_seed));
    run(&session, loader, &mut fusion)?;
    if let Some(w) = world {
        gather(&mut fusion, w)?;
    }
    let names = |count| {
        let dataset = dataset_for(cfg, Split::Test).ok();
        class_names(dataset, &cfg.data, Split::Test, count)
    };
    Ok(score(&fusion, views, names))
}

/// The config's model with what `weights` holds of it (their EMA weights with `ema`), and the
/// load's report (which of the model's weights the file lacks).
pub(super) fn session_with_weights(
    cfg: &crate::config::Config,
    weights: &Path,
    ema: bool,
) -> Result<(Session, crate::checkpoint::LoadReport), TrainError> {
    let session = Session::new(cfg)?;
    let file = match ema {
        true => read_ema_weights(weights)?,
        false => read_weights(weights)?,
    };
    let report = load_into(&session.vs, &file, weights, false)?;
    Ok((session, report))
}

/// The config's model with `weights` (their EMA weights with `ema`), every weight present.
pub(super) fn load_session(
    cfg: &crate::config::Config,
    weights: &Path,
    ema: bool,
) -> Result<Session, TrainError> {
    let (session, report) = session_with_weights(cfg, weights, ema)?;
    if !report.missing.is_empty() {
        return Err(TrainError::Run(format!(
            "{} does not hold every weight of the configured model; missing: {}",
            weights.display(),
            report.missing.join(", ")
        )));
    }
    Ok(session)
}

/// Every rank's fused scores combined into every rank's `fusion`, as one process would have
/// fused all the views: summed, or the maximum, per video.
fn gather(fusion: &mut Fusion, w: &crate::dist::World) -> Result<(), TrainError> {
    use crate::dist::ReduceOp;
    let classes = fusion
        .videos
        .iter()
        .flatten()
        .map(|(_, s)| s.size()[0])
        .next()
        .unwrap_or(0);
    // Videos and classes as every rank knows them: a rank may have scored no view at all.
    let shape = Tensor::from_slice(&[fusion.videos.len() as i64, classes]);
    w.group
        .all_reduce(&[&shape], ReduceOp::Max)
        .map_err(TrainError::dist)?;
    let (videos, k) = (shape.int64_value(&[0]), shape.int64_value(&[1]));
    let (n, sum) = (videos, fusion.method == EnsembleMethod::Sum);
    let empty = if sum { 0.0 } else { f64::NEG_INFINITY };
    // (videos, K) scores, (videos) labels + 1 (0: not seen on this rank).
    let scores = Tensor::full([n, k], empty, (Kind::Float, Device::Cpu));
    let labels = Tensor::zeros([n], (Kind::Int64, Device::Cpu));
    for (v, slot) in fusion.videos.iter().enumerate() {
        if let Some((l, s)) = slot {
            let mut row = scores.get(v as i64);
            row.copy_(s);
            let _ = labels.get(v as i64).fill_(l + 1);
        }
    }
    let op = if sum { ReduceOp::Sum } else { ReduceOp::Max };
    w.group
        .all_reduce(&[&scores], op)
        .map_err(TrainError::dist)?;
    w.group
        .all_reduce(&[&labels], ReduceOp::Max)
        .map_err(TrainError::dist)?;
    let labels = Vec::<i64>::try_from(&labels)?;
    fusion.videos = labels
        .iter()
        .enumerate()
        .map(|(v, &l)| (l > 0).then(|| (l - 1, scores.get(v as i64))))
        .collect();
    Ok(())
}

/// Scores the fused videos; `names(K)` gives the names of the model's K classes.
pub(super) fn score(
    fusion: &Fusion,
    views: usize,
    names: impl FnOnce(usize) -> Vec<String>,
) -> TestReport {
    let classes = fusion
        .videos
        .iter()
        .flatten()
        .map(|(_, s)| s.size()[0] as usize)
        .min()
        .unwrap_or(0);
    let mut counts = vec![vec![0u64; classes]; classes];
    let (mut top5, mut n) = (0usize, 0usize);
    for (label, scores) in fusion.videos.iter().flatten() {
        let (_, idx) = scores.topk(scores.size()[0].min(5), 0, true, true);
        let idx = Vec::<i64>::try_from(&idx).unwrap_or_default();
        top5 += usize::from(idx.contains(label));
        n += 1;
        // Labels were checked against the head's size (check_class_count).
        if let (Some(&p), Some(row)) = (idx.first(), counts.get_mut(*label as usize)) {
            row[p as usize] += 1;
        }
    }
    let frac = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let names = names(classes);
    let per_class = (0..classes)
        .filter_map(|c| {
            let videos: u64 = counts[c].iter().sum();
            (videos > 0).then(|| ClassAccuracy {
                class: c as i64,
                name: names[c].clone(),
                videos: videos as usize,
                accuracy: frac(counts[c][c], videos),
            })
        })
        .collect();
    let top1: u64 = (0..classes).map(|c| counts[c][c]).sum();
    TestReport {
        videos: n,
        views_per_video: views,
        ensemble: format!("{:?}", fusion.method).to_lowercase(),
        acc1: frac(top1, n as u64),
        acc5: (classes >= 5).then(|| frac(top5 as u64, n as u64)),
        epic: None,
        per_class,
        confusion: Confusion {
            classes: names,
            counts,
        },
    }
}
