//! Run recipes: built-in YAML layers that a command puts between the defaults and the user's
//! file, so that a short config (a MoSI experiment naming only its model and data) gets the
//! reference's training recipe for every key it leaves out.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::load::{self, Layer};
use super::schema::Dataset;
use super::{overrides, ConfigError, LoadedConfig, Source};

/// A built-in config layer.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    /// How errors and `config show` name the layer.
    pub name: &'static str,
    pub text: &'static str,
}

/// The reference's MoSI pretraining recipe (configs/pool/run/mosi.yaml): `tada pretrain` of a
/// MoSI config, `mosi-preview` and `bench data` (of anything but supervised training on videos)
/// put it under the file.
pub const MOSI: Recipe = Recipe {
    name: "configs/pool/run/mosi.yaml (built in)",
    text: include_str!("../../configs/pool/run/mosi.yaml"),
};

/// PRETRAIN.GENERATOR of MoSI (the reference's value).
pub const MOSI_GENERATOR: &str = "MoSIGenerator";
/// PRETRAIN.GENERATOR of contrastive pretraining (a tada value).
pub const CONTRASTIVE_GENERATOR: &str = "Contrastive";

impl Recipe {
    /// Loads `path` (with its bases and `overrides`) over this recipe.
    pub fn load(&self, path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
        super::finish(self.layer()?.merged_with(load::load_file(path)?), overrides)
    }

    fn layer(&self) -> Result<Layer, ConfigError> {
        let path = PathBuf::from(self.name);
        Layer::new(load::parse_yaml(self.text, &path)?, &Source::File(path))
    }
}

/// The config of `tada pretrain`: a contrastive config (PRETRAIN.GENERATOR `Contrastive`, in
/// the file or an override) as it is, anything else over [`MOSI`]. The file is read once.
pub fn load_pretrain(path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let file = load::load_file(path)?;
    if generator_of(&file, overrides)?.as_deref() == Some(CONTRASTIVE_GENERATOR) {
        return super::finish(file, overrides);
    }
    super::finish(MOSI.layer()?.merged_with(file), overrides)
}

/// The config of `tada bench data`, so that it measures what the config trains on: supervised
/// training on videos (TRAIN.DATASET a video dataset and PRETRAIN.ENABLE not on, in the file or
/// an override) as it is, like `tada finetune` reads it; anything else over [`MOSI`], like `tada
/// pretrain` reads a MoSI config. The file is read once, and an error is the chosen load's own.
pub fn load_bench_data(path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let file = load::load_file(path)?;
    let probe = probe(&file, overrides)?;
    let dataset = key_of(&probe, "TRAIN", "DATASET")
        .and_then(Value::as_str)
        .and_then(|name| Dataset::from_name(name.trim()));
    // Off unless set, as in the defaults; the MoSI recipe would turn it on.
    let pretrain = key_of(&probe, "PRETRAIN", "ENABLE").and_then(Value::as_bool) == Some(true);
    if supervised_on_videos(dataset, pretrain) {
        return super::finish(file, overrides);
    }
    super::finish(MOSI.layer()?.merged_with(file), overrides)
}

/// Whether a run of TRAIN.DATASET `dataset` with PRETRAIN.ENABLE `pretrain` trains a classifier
/// on video clips.
pub fn supervised_on_videos(dataset: Option<Dataset>, pretrain: bool) -> bool {
    use Dataset::*;
    !pretrain
        && matches!(
            dataset,
            Some(Ucf101 | Hmdb51 | Kinetics400 | Ssv2 | SyntheticVideos)
        )
}

/// PRETRAIN.GENERATOR as the file and the overrides give it, before defaults.
fn generator_of(file: &Layer, overrides: &[String]) -> Result<Option<String>, ConfigError> {
    let probe = probe(file, overrides)?;
    let generator = key_of(&probe, "PRETRAIN", "GENERATOR").and_then(Value::as_str);
    Ok(generator.map(str::to_owned))
}

/// The file's tree with the overrides applied, before any recipe or default: what the user
/// asked for, to choose a recipe by.
fn probe(file: &Layer, overrides: &[String]) -> Result<Map<String, Value>, ConfigError> {
    let defaults = super::defaults_tree();
    let mut probe = file.clone();
    for arg in overrides {
        overrides::apply(arg, &defaults, &mut probe)?;
    }
    Ok(probe.value)
}

fn key_of<'a>(tree: &'a Map<String, Value>, section: &str, key: &str) -> Option<&'a Value> {
    tree.get(section).and_then(|s| s.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_of(r: Result<LoadedConfig, ConfigError>) -> String {
        r.unwrap().to_yaml()
    }

    #[test]
    fn pretrain_picks_the_recipe_by_generator_in_file_or_override() {
        let d = tempfile::tempdir().unwrap();
        let mosi = d.path().join("mosi.yaml");
        std::fs::write(
            &mosi,
            "VIDEO:\n  HEAD:\n    NUM_CLASSES: 10\nPRETRAIN:\n  ENABLE: true\n",
        )
        .unwrap();
        let contrastive = d.path().join("contrastive.yaml");
        std::fs::write(
            &contrastive,
            "VIDEO:\n  HEAD:\n    NUM_CLASSES: 10\nPRETRAIN:\n  ENABLE: true\n  GENERATOR: Contrastive\n",
        )
        .unwrap();
        let plain = |p: &Path, set: &[String]| yaml_of(super::super::load(p, set));

        assert_eq!(
            yaml_of(load_pretrain(&mosi, &[])),
            yaml_of(MOSI.load(&mosi, &[]))
        );
        assert_ne!(yaml_of(load_pretrain(&mosi, &[])), plain(&mosi, &[]));
        assert_eq!(
            yaml_of(load_pretrain(&contrastive, &[])),
            plain(&contrastive, &[])
        );
        let set = ["PRETRAIN.GENERATOR=Contrastive".to_string()];
        assert_eq!(yaml_of(load_pretrain(&mosi, &set)), plain(&mosi, &set));
    }

    #[test]
    fn bench_data_reads_supervised_video_configs_plainly_and_the_rest_over_mosi() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let head = "VIDEO: {HEAD: {NUM_CLASSES: 4}}\n";
        let ucf = write("ucf.yaml", &format!("{head}TRAIN: {{DATASET: UCF101}}\n"));
        let short = write("short.yaml", head);
        let plain = |p: &Path, set: &[String]| yaml_of(super::super::load(p, set));
        let mosi = |p: &Path, set: &[String]| yaml_of(MOSI.load(p, set));
        let bench = |p: &Path, set: &[String]| yaml_of(load_bench_data(p, set));

        assert_eq!(bench(&ucf, &[]), plain(&ucf, &[]));
        assert_eq!(bench(&short, &[]), mosi(&short, &[]));
        let pretrain = ["PRETRAIN.ENABLE=true".to_string()];
        assert_eq!(bench(&ucf, &pretrain), mosi(&ucf, &pretrain));
        let videos = ["TRAIN.DATASET=synthetic_videos".to_string()];
        assert_eq!(bench(&short, &videos), plain(&short, &videos));
        let images = ["TRAIN.DATASET=imagenet".to_string()];
        assert_eq!(bench(&ucf, &images), mosi(&ucf, &images));

        // A supervised config's own error, not a MoSI benchmark of it.
        let bad = ["TRAIN.BATCH_SIZE=0".to_string()];
        let err = load_bench_data(&ucf, &bad).unwrap_err().to_string();
        assert!(err.contains("TRAIN.BATCH_SIZE"), "{err}");
    }
}
