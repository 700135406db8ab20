//! `tada demo`: the whole story on embedded data in a few minutes of CPU. A small R2D3D is
//! MoSI-pretrained on synthetic images; then a linear probe is trained on the synthetic labelled
//! videos (class = direction of motion) on top of that backbone and on top of a randomly
//! initialised copy, and both probes are scored on held-out videos.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::{load_over, load_str, LoadedConfig};
use crate::ssl::mosi_preview::{MOSI_RECIPE, MOSI_RECIPE_NAME};

use super::runs::{finetune, pretrain, RunOptions};
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
        // One view per synthetic video, so acc@1 is the share of held-out clips right.
        scores.push(super::evaluate::test(&probe, &ckpt)?.acc1);
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
