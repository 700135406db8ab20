//! `tada demo`: the whole story on embedded data in a few minutes of CPU. A small R2D3D is
//! MoSI-pretrained on synthetic images; then a linear probe is trained on the synthetic labelled
//! videos (class = direction of motion) on top of that backbone and on top of a randomly
//! initialised copy, and both probes are scored on held-out videos.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tch::Kind;

use crate::checkpoint::{load_into, read_safetensors};
use crate::config::{load_over, load_str, LoadedConfig};
use crate::data::dataset::Split;
use crate::data::loader::Loader;
use crate::data::pipeline::{loader_config, synthetic_videos};
use crate::ssl::mosi_preview::{MOSI_RECIPE, MOSI_RECIPE_NAME};

use super::runs::{finetune, pretrain, RunOptions};
use super::trainer::Session;
use super::TrainError;

const MOSI_CONFIG: &str = include_str!("../../configs/demo/mosi_pretrain.yaml");
const PROBE_CONFIG: &str = include_str!("../../configs/demo/probe.yaml");

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub pretext_accuracy: f64,
    pub probe_random: f64,
    pub probe_mosi: f64,
    pub pretrain_seconds: f64,
    pub probe_seconds: f64,
    pub total_seconds: f64,
}

/// Demo settings: where runs go, the seed, and `--set` overrides for both stages' configs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub output: PathBuf,
    pub seed: u64,
}

fn with_seed(loaded: LoadedConfig, seed: u64) -> LoadedConfig {
    let mut l = loaded;
    l.config.random_seed = seed;
    l
}

/// Top-1 accuracy of the checkpoint `weights` (a probe run's last) on the held-out videos.
fn test_accuracy(loaded: &LoadedConfig, weights: &Path) -> Result<f64, TrainError> {
    let cfg = &loaded.config;
    let session = Session::new(cfg)?;
    let file = read_safetensors(weights).map_err(|e| TrainError::Weights {
        path: weights.to_path_buf(),
        source: Box::new(e),
    })?;
    load_into(&session.vs, &file, weights, false).map_err(|e| TrainError::Weights {
        path: weights.to_path_buf(),
        source: Box::new(e),
    })?;
    let loader = Loader::new(
        Arc::new(synthetic_videos(cfg, Split::Test)?),
        loader_config(cfg, Split::Test, cfg.random_seed),
    );
    let (mut right, mut total) = (0i64, 0i64);
    for batch in loader.epoch(0) {
        let b = batch?;
        let out = tch::no_grad(|| {
            session
                .model
                .forward_t(&b.inputs.to_device(session.device), false)
        });
        let Some(p) = out.predictions.single() else {
            return Err(TrainError::Task(
                "the probe model has more than one output".into(),
            ));
        };
        let hit = p
            .argmax(-1, false)
            .to_device(tch::Device::Cpu)
            .eq_tensor(&b.labels);
        right += hit.sum(Kind::Int64).int64_value(&[]);
        total += b.labels.size()[0];
    }
    Ok(right as f64 / total.max(1) as f64)
}

/// Runs the three stages under `opts.output` (`mosi/`, `probe_random/`, `probe_mosi/`).
pub fn demo(opts: &DemoOptions) -> Result<DemoReport, TrainError> {
    let t0 = Instant::now();
    let mosi_cfg = opts.output.join("mosi_pretrain.yaml");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    std::fs::create_dir_all(&opts.output).map_err(io(&opts.output))?;
    std::fs::write(&mosi_cfg, MOSI_CONFIG).map_err(io(&mosi_cfg))?;
    let mosi = with_seed(
        load_over(MOSI_RECIPE, MOSI_RECIPE_NAME, &mosi_cfg, &[])?,
        opts.seed,
    );
    let run = |dir: &str, weights: Option<PathBuf>| RunOptions {
        output: Some(opts.output.join(dir)),
        weights,
        ..RunOptions::default()
    };
    let pre = pretrain(&mosi, &run("mosi", None))?;
    let pretrain_seconds = t0.elapsed().as_secs_f64();
    let pretext_accuracy = pre
        .last_metrics
        .iter()
        .find(|(k, _)| k.starts_with("acc"))
        .map_or(0.0, |(_, v)| *v);
    let Some(mosi_weights) = pre.checkpoint.clone() else {
        return Err(TrainError::Task(
            "MoSI pretraining wrote no checkpoint".into(),
        ));
    };

    let t1 = Instant::now();
    let probe = with_seed(
        load_str(PROBE_CONFIG, "configs/demo/probe.yaml (built in)", &[])?,
        opts.seed,
    );
    let mut scores = Vec::new();
    for (dir, weights) in [("probe_random", None), ("probe_mosi", Some(mosi_weights))] {
        let (summary, _) = finetune(&probe, &run(dir, weights))?;
        let Some(ckpt) = summary.checkpoint else {
            return Err(TrainError::Task(format!(
                "the {dir} run wrote no checkpoint"
            )));
        };
        scores.push(test_accuracy(&probe, &ckpt)?);
    }
    Ok(DemoReport {
        pretext_accuracy,
        probe_random: scores[0],
        probe_mosi: scores[1],
        pretrain_seconds,
        probe_seconds: t1.elapsed().as_secs_f64(),
        total_seconds: t0.elapsed().as_secs_f64(),
    })
}
