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
    /// Loads `path` (with its bases and `overrides`) over this recipe, whatever the file is:
    /// `tada mosi-preview` shows any config's MoSI samples.
    pub fn load(&self, path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
        self.finish_over(load::load_file(path)?, path, overrides)
    }

    pub(super) fn finish_over(
        &self,
        file: Layer,
        path: &Path,
        overrides: &[String],
    ) -> Result<LoadedConfig, ConfigError> {
        let mut loaded = super::finish_file(self.layer()?.merged_with(file), path, overrides)?;
        loaded.recipe = Some(self.name);
        Ok(loaded)
    }

    fn layer(&self) -> Result<Layer, ConfigError> {
        let path = PathBuf::from(self.name);
        Layer::new(load::parse_yaml(self.text, &path)?, &Source::File(path))
    }
}

/// The recipe a config is read over, chosen by what its file (with bases) and the overrides
/// say, before any default: [`MOSI`] for a MoSI config (PRETRAIN.ENABLE true or MODEL.NAME
/// MoSINet, and PRETRAIN.GENERATOR not [`CONTRASTIVE_GENERATOR`]), none for anything else.
/// The reference's MoSI configs set both keys; tada's short MoSI experiments name the model.
pub(super) fn recipe_for(
    file: &Layer,
    overrides: &[String],
) -> Result<Option<Recipe>, ConfigError> {
    let probe = probe(file, overrides)?;
    Ok(is_mosi(&probe).then_some(MOSI))
}

fn is_mosi(probe: &Map<String, Value>) -> bool {
    let enabled = key_of(probe, "PRETRAIN", "ENABLE").and_then(Value::as_bool) == Some(true);
    let model = key_of(probe, "MODEL", "NAME").and_then(Value::as_str);
    !is_contrastive(probe) && (enabled || model.map(str::trim) == Some(MOSI_MODEL))
}

fn is_contrastive(probe: &Map<String, Value>) -> bool {
    let generator = key_of(probe, "PRETRAIN", "GENERATOR").and_then(Value::as_str);
    generator.map(str::trim) == Some(CONTRASTIVE_GENERATOR)
}

/// MODEL.NAME of MoSI's network.
const MOSI_MODEL: &str = "MoSINet";

/// The config of `tada bench data`, so that it measures what the config trains on: a config
/// that [`super::load`] reads as pretraining (MoSI or contrastive) or as supervised training on
/// videos (TRAIN.DATASET a video dataset, PRETRAIN.ENABLE not on) as `load` reads it; anything
/// else (a short file naming no task) over [`MOSI`], the images it can measure. The file is read
/// once, and an error is the chosen load's own.
pub fn load_bench_data(path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let file = load::load_file(path)?;
    let probe = probe(&file, overrides)?;
    let dataset = key_of(&probe, "TRAIN", "DATASET")
        .and_then(Value::as_str)
        .and_then(|name| Dataset::from_name(name.trim()));
    // Off unless set, as in the defaults; the MoSI recipe would turn it on.
    let pretrain = key_of(&probe, "PRETRAIN", "ENABLE").and_then(Value::as_bool) == Some(true);
    let as_loaded = is_contrastive(&probe) || supervised_on_videos(dataset, pretrain);
    if as_loaded && !is_mosi(&probe) {
        return super::finish_file(file, path, overrides);
    }
    MOSI.finish_over(file, path, overrides)
}

/// Whether a run of TRAIN.DATASET `dataset` with PRETRAIN.ENABLE `pretrain` trains a classifier
/// on video clips.
pub fn supervised_on_videos(dataset: Option<Dataset>, pretrain: bool) -> bool {
    use Dataset::*;
    !pretrain
        && matches!(
            dataset,
            Some(Ucf101 | Hmdb51 | Kinetics400 | Ssv2 | SyntheticVideos | Epickitchen100)
        )
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
    fn load_reads_mosi_configs_over_the_recipe_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let head = "VIDEO: {HEAD: {NUM_CLASSES: 10}}\n";
        let enabled = write("mosi.yaml", &format!("{head}PRETRAIN: {{ENABLE: true}}\n"));
        let named = write("named.yaml", &format!("{head}MODEL: {{NAME: MoSINet}}\n"));
        let contrastive = write(
            "contrastive.yaml",
            &format!("{head}PRETRAIN: {{ENABLE: true, GENERATOR: Contrastive}}\n"),
        );
        let plain_file = write("plain.yaml", head);
        let load = |p: &Path, set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            super::super::load(p, &set).unwrap()
        };
        let over_mosi = |p: &Path, set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            MOSI.load(p, &set).unwrap()
        };
        let plain = |p: &Path, set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            super::super::finish_file(load::load_file(p).unwrap(), p, &set).unwrap()
        };

        for (file, set) in [
            (&enabled, &[][..]),
            (&named, &[]),
            (&plain_file, &["PRETRAIN.ENABLE=true"]),
        ] {
            let got = load(file, set);
            assert_eq!(got.recipe, Some(MOSI.name), "{}", file.display());
            assert_eq!(got.to_yaml(), over_mosi(file, set).to_yaml());
            assert_ne!(got.to_yaml(), plain(file, set).to_yaml());
            // The recipe's values, not the defaults: what the run trains with.
            assert_eq!(got.config.optimizer.weight_decay, 1e-4);
        }
        for (file, set) in [
            (&contrastive, &[][..]),
            (&plain_file, &[]),
            (&enabled, &["PRETRAIN.GENERATOR=Contrastive"]),
        ] {
            let got = load(file, set);
            assert_eq!(got.recipe, None, "{}", file.display());
            assert_eq!(got.to_yaml(), plain(file, set).to_yaml());
        }
        // The comment names the recipe in `config show` and the run's config.yaml alike.
        assert!(load(&enabled, &[])
            .to_yaml()
            .starts_with("# keys the file leaves out come from configs/pool/run/mosi.yaml"));
    }

    #[test]
    fn output_dir_left_unset_is_the_file_stem_under_runs() {
        let d = tempfile::tempdir().unwrap();
        let unset = d.path().join("my_exp.v2.yaml");
        std::fs::write(&unset, "VIDEO: {HEAD: {NUM_CLASSES: 4}}\n").unwrap();
        let got = super::super::load(&unset, &[]).unwrap();
        assert_eq!(got.config.output_dir, "runs/my_exp.v2");
        let set = d.path().join("set.yaml");
        std::fs::write(&set, "VIDEO: {HEAD: {NUM_CLASSES: 4}}\nOUTPUT_DIR: out/x\n").unwrap();
        assert_eq!(
            super::super::load(&set, &[]).unwrap().config.output_dir,
            "out/x"
        );
        let over = ["OUTPUT_DIR=elsewhere".to_string()];
        assert_eq!(
            super::super::load(&unset, &over).unwrap().config.output_dir,
            "elsewhere"
        );
        // Over a recipe too (the MoSI recipe sets no OUTPUT_DIR).
        assert_eq!(
            MOSI.load(&unset, &[]).unwrap().config.output_dir,
            "runs/my_exp.v2"
        );
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
