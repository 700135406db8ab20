//! `tada demo`: the whole story on embedded data in a few minutes of CPU. A small R2D3D is
//! MoSI-pretrained on synthetic images (or, with `--pretext contrastive`, pretrained by SimCLR +
//! ParamCrop on synthetic videos); then a linear probe is trained on the synthetic labelled
//! videos (class = direction of motion) on top of that backbone and on top of a randomly
//! initialised copy, and both probes are scored on held-out videos.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::{load, load_str, LoadedConfig};

use super::{finetune, pretrain, RunOptions};
use crate::train::TrainError;

const MOSI_CONFIG: &str = include_str!("../../configs/demo/mosi_pretrain.yaml");
const CONTRASTIVE_CONFIG: &str = include_str!("../../configs/demo/contrastive_pretrain.yaml");
const PROBE_CONFIG: &str = include_str!("../../configs/demo/probe.yaml");

/// Which pretraining the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DemoPretext {
    /// MoSI on synthetic images (the default).
    #[default]
    Mosi,
    /// SimCLR with ParamCrop views on synthetic videos.
    Contrastive,
}

impl DemoPretext {
    /// Label in the demo's table and summary line.
    pub fn label(self) -> &'static str {
        match self {
            Self::Mosi => "MoSI",
            Self::Contrastive => "SimCLR+ParamCrop",
        }
    }

    /// Folder of the pretraining run and of the probe on its backbone.
    fn dirs(self) -> (&'static str, &'static str) {
        match self {
            Self::Mosi => ("mosi", "probe_mosi"),
            Self::Contrastive => ("contrastive", "probe_contrastive"),
        }
    }
}

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub pretext: DemoPretext,
    /// The pretext task's accuracy at its last step (MoSI speed classes; for contrastive
    /// learning the share of views whose positive was the most similar).
    pub pretext_accuracy: f64,
    pub probe_random: f64,
    /// Probe accuracy on the pretrained backbone.
    pub probe_pretrained: f64,
    /// The last step's ParamCrop view overlap (3-D IoU, centre distance) of a contrastive run.
    pub view_overlap: Option<(f64, f64)>,
    pub pretrain_seconds: f64,
    pub probe_seconds: f64,
    pub total_seconds: f64,
}

/// Demo settings: where runs go, the seed, and `--set` overrides for both stages' configs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub output: PathBuf,
    pub seed: u64,
    pub pretext: DemoPretext,
}

fn with_seed(loaded: LoadedConfig, seed: u64) -> LoadedConfig {
    let mut l = loaded;
    l.config.random_seed = seed;
    l
}

/// Runs the three stages under `opts.output` (`mosi/` or `contrastive/`, `probe_random/`,
/// `probe_mosi/` or `probe_contrastive/`).
pub fn demo(opts: &DemoOptions) -> Result<DemoReport, TrainError> {
    let t0 = Instant::now();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    std::fs::create_dir_all(&opts.output).map_err(io(&opts.output))?;
    let (pre_dir, probe_dir) = opts.pretext.dirs();
    let (text, file) = match opts.pretext {
        DemoPretext::Mosi => (MOSI_CONFIG, "mosi_pretrain.yaml"),
        DemoPretext::Contrastive => (CONTRASTIVE_CONFIG, "contrastive_pretrain.yaml"),
    };
    // Written out so the run folders point at a config a user can rerun and edit.
    let pre_cfg = opts.output.join(file);
    std::fs::write(&pre_cfg, text).map_err(io(&pre_cfg))?;
    let pre_loaded = match opts.pretext {
        DemoPretext::Mosi => crate::config::recipes::MOSI.load(&pre_cfg, &[])?,
        DemoPretext::Contrastive => load(&pre_cfg, &[])?,
    };
    // Each demo starts its stages afresh: their folders belong to the demo.
    for dir in [pre_dir, "probe_random", probe_dir] {
        let stage = opts.output.join(dir);
        if stage.exists() {
            std::fs::remove_dir_all(&stage).map_err(io(&stage))?;
        }
    }
    let run = |dir: &str, weights: Option<PathBuf>| RunOptions {
        output: Some(opts.output.join(dir)),
        weights,
        ..RunOptions::default()
    };
    let pre = pretrain(&with_seed(pre_loaded, opts.seed), &run(pre_dir, None))?;
    // Ctrl-C stops the demo, not only the stage it arrived in.
    if let Some(e) = TrainError::interrupted(&pre) {
        return Err(e);
    }
    let pretrain_seconds = t0.elapsed().as_secs_f64();
    let metric = |name: &str| {
        pre.last_metrics
            .iter()
            .find(|(k, _)| k.starts_with(name))
            .map(|(_, v)| *v)
    };
    let pretext_accuracy = metric("acc").unwrap_or(0.0);
    let view_overlap = metric("iou").zip(metric("centre_distance"));
    let Some(pre_weights) = pre.checkpoint.clone() else {
        return Err(TrainError::Run("pretraining wrote no checkpoint".into()));
    };

    let t1 = Instant::now();
    let probe = with_seed(
        load_str(PROBE_CONFIG, "configs/demo/probe.yaml (built in)", &[])?,
        opts.seed,
    );
    let mut scores = Vec::new();
    for (dir, weights) in [("probe_random", None), (probe_dir, Some(pre_weights))] {
        let (summary, _) = finetune(&probe, &run(dir, weights))?;
        if let Some(e) = TrainError::interrupted(&summary) {
            return Err(e);
        }
        let Some(ckpt) = summary.checkpoint else {
            return Err(TrainError::Run(format!(
                "the {dir} run wrote no checkpoint"
            )));
        };
        // One view per synthetic video, so acc@1 is the share of held-out clips right.
        scores.push(super::test::test(&probe, &ckpt, false)?.acc1);
    }
    Ok(DemoReport {
        pretext: opts.pretext,
        pretext_accuracy,
        probe_random: scores[0],
        probe_pretrained: scores[1],
        view_overlap,
        pretrain_seconds,
        probe_seconds: t1.elapsed().as_secs_f64(),
        total_seconds: t0.elapsed().as_secs_f64(),
    })
}
