//! Run recipes: built-in YAML layers that a command puts between the defaults and the user's
//! file, so that a short config (a MoSI experiment naming only its model and data) gets the
//! reference's training recipe for every key it leaves out.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::load::{self, Layer};
use super::{overrides, ConfigError, LoadedConfig, Source};

/// A built-in config layer.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    /// How errors and `config show` name the layer.
    pub name: &'static str,
    pub text: &'static str,
}

/// The reference's MoSI pretraining recipe (configs/pool/run/mosi.yaml): `tada pretrain` of a
/// MoSI config, `mosi-preview` and `bench data` put it under the file.
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

/// PRETRAIN.GENERATOR as the file and the overrides give it, before defaults.
fn generator_of(file: &Layer, overrides: &[String]) -> Result<Option<String>, ConfigError> {
    let defaults = super::defaults_tree();
    let mut probe = file.clone();
    for arg in overrides {
        overrides::apply(arg, &defaults, &mut probe)?;
    }
    let generator = probe
        .value
        .get("PRETRAIN")
        .and_then(|p| p.get("GENERATOR"))
        .and_then(Value::as_str);
    Ok(generator.map(str::to_owned))
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
}
