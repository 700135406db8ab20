//! Every YAML file shipped under configs/ loads through the config loader, validates, and builds
//! what a run of it builds first (model, optimiser, schedule, and the MoSI generator, the
//! contrastive task or the classification task), so a typo in any shipped config fails the suite.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::nn::VarStore;
use tch::Device;

use tada::config::recipes::CONTRASTIVE_GENERATOR;
use tada::config::schema::Dataset;
use tada::config::{load, ConfigError, LoadedConfig};
use tada::models::VideoModel;

use tada::models::Session;
use tada::tasks::classify::ClassifyTask;
use tada::tasks::contrastive::task::ContrastiveTask;
use tada_augment::mosi::MosiGenerator;

use crate::common::repo;

/// How many configs this checkout ships; the walk must find at least these (a moved or renamed
/// folder would otherwise make the test pass on nothing).
const SHIPPED: usize = 40;

/// Run recipes (`_BASE_RUN` files) and backbone files (`_BASE_MODEL`) live here. They leave
/// VIDEO.HEAD.NUM_CLASSES to the project file, and run recipes have no backbone.
const BASES: &str = "configs/pool";
const RUN_RECIPES: &str = "configs/pool/run";

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The files `path` names as `_BASE`, `_BASE_RUN` or `_BASE_MODEL`, resolved as the loader does.
fn bases_of(path: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("_BASE"))
        .filter_map(|l| l.split_once(':'))
        .map(|(_, v)| path.parent().unwrap().join(v.trim()))
        .map(|p| p.canonicalize().unwrap())
        .collect()
}

/// Loads `path` alone; a base file that only lacks the class count gets one.
fn load_alone(path: &Path, rel: &str) -> Result<LoadedConfig, String> {
    match load(path, &[]) {
        Err(ConfigError::Missing { key, .. })
            if key == "VIDEO.HEAD.NUM_CLASSES" && rel.starts_with(BASES) =>
        {
            load(path, &["VIDEO.HEAD.NUM_CLASSES=7".to_string()]).map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// Builds what `tada pretrain` / `tada finetune` build before the first step.
fn build(path: &Path, loaded: &LoadedConfig) -> Result<(), String> {
    let cfg = &loaded.config;
    if cfg.pretrain.enable && cfg.pretrain.generator == CONTRASTIVE_GENERATOR {
        // The model, the task's own variables (parameter net, key encoder, queue) and the
        // optimiser over all of them, as `tada pretrain` builds them.
        let session = Session::new(cfg).map_err(|e| e.to_string())?;
        let task = ContrastiveTask::new(&session, cfg).map_err(|e| e.to_string())?;
        tada::runs::optimisation(cfg, &session.vs, &task).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let cfg = if cfg.pretrain.enable && cfg.pretrain.generator == "MoSIGenerator" {
        // Every command reads a MoSI config over the built-in MoSI recipe.
        if loaded.recipe.is_none() {
            return Err(format!("{} loads without the MoSI recipe", path.display()));
        }
        let g = tada::tasks::mosi::generator_config(cfg).map_err(|e| e.to_string())?;
        MosiGenerator::new(g).map_err(|e| e.to_string())?;
        if cfg.train.dataset == Some(Dataset::SyntheticVideos) {
            return Err("synthetic_videos is not a MoSI image source".into());
        }
        cfg.clone()
    } else {
        if !cfg.pretrain.enable {
            ClassifyTask::from_config(cfg).map_err(|e| e.to_string())?;
        }
        cfg.clone()
    };
    if cfg.train.num_folds != 1 {
        return Err(format!(
            "TRAIN.NUM_FOLDS is {}; tada runs 1",
            cfg.train.num_folds
        ));
    }
    let vs = VarStore::new(Device::Cpu);
    VideoModel::new(&vs.root(), &cfg).map_err(|e| e.to_string())?;
    let task = tada::tasks::mosi::MosiTask::default();
    tada::runs::optimisation(&cfg, &vs, &task).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn every_shipped_config_loads_validates_and_builds() {
    // Initialisation draws from libtorch's one generator, which the training tests seed.
    let _serial = crate::common::serial();
    let root = repo();
    let mut files = Vec::new();
    yaml_files(&root.join("configs"), &mut files);
    files.sort();
    assert!(
        files.len() >= SHIPPED,
        "found {} configs under configs/, expected at least {SHIPPED}",
        files.len()
    );
    let (mut failures, mut built, mut recipes) = (Vec::new(), 0, 0);
    // Bases reached from a config whose model was built: every base must be among them.
    let mut exercised = BTreeSet::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let t0 = Instant::now();
        let loaded = match load_alone(path, &rel) {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
        };
        if rel.starts_with(RUN_RECIPES) {
            // A run recipe has no backbone to build; its projects build it (checked below).
            if loaded.config.video.backbone.num_out_features.is_some() {
                failures.push(format!("{rel}: a run recipe should not set a backbone"));
            }
            recipes += 1;
            continue;
        }
        match build(path, &loaded) {
            Ok(()) => built += 1,
            Err(e) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
        }
        let mut todo = vec![path.canonicalize().unwrap()];
        while let Some(p) = todo.pop() {
            for b in bases_of(&p) {
                if exercised.insert(b.clone()) {
                    todo.push(b);
                }
            }
        }
        eprintln!("{rel}: {:.2} s", t0.elapsed().as_secs_f64());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(built + recipes, files.len());
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap().to_string_lossy();
        if rel.starts_with(BASES) {
            assert!(
                exercised.contains(&path.canonicalize().unwrap()),
                "{rel} is a base no shipped project uses, so no test builds it"
            );
        }
    }
}

/// `tada config show` prints what a run of the config records in its config.yaml (and trains
/// with): every command reads a config through `config::load`, and the loop records it with
/// only OUTPUT_DIR set to the folder the run writes. Every config that runs has its own folder.
#[test]
fn every_shipped_config_shows_what_its_run_records_in_its_own_folder() {
    let root = repo();
    let mut files = Vec::new();
    yaml_files(&root.join("configs"), &mut files);
    files.sort();
    let mut folders = std::collections::BTreeMap::new();
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap().to_string_lossy();
        if rel.starts_with(BASES) || rel.starts_with("configs/models") {
            continue;
        }
        let shown = load(path, &[]).unwrap();
        let folder = PathBuf::from(&shown.config.output_dir);
        let recorded = tada::runs::loop_settings(&shown, &folder)
            .unwrap()
            .config_yaml;
        assert_eq!(recorded, shown.to_yaml(), "{rel}");
        let mosi =
            shown.config.pretrain.enable && shown.config.pretrain.generator == "MoSIGenerator";
        assert_eq!(shown.recipe.is_some(), mosi, "{rel}");
        if let Some(other) = folders.insert(folder.clone(), rel.to_string()) {
            panic!("{rel} and {other} both run in {}", folder.display());
        }
    }
    assert!(folders.len() >= 30, "{folders:?}");
}
