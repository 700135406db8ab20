//! Configuration: YAML files with the reference's keys, `_BASE*` inheritance, `--set` overrides,
//! a typed tree with one sub-config per component, and validation before anything is built.
//!
//! Order of precedence (highest first): `--set` > the file given > its `_BASE` chain >
//! `_BASE_RUN` > `_BASE_MODEL` > built-in defaults (the reference's base.yaml values).

mod class_lists;
mod error;
mod key_error;
mod keys;
mod load;
mod overrides;
pub mod recipes;
pub mod schema;
mod source;
mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use error::ConfigError;
pub use key_error::{KeyError, KeyProblem};
pub use keys::IGNORED_KEYS;
pub use schema::Config;
pub use source::{Source, Sources};
pub use validate::{
    validate, MAX_BATCH_BYTES, MAX_BATCH_SIZE, MAX_FRAMES, MAX_NUM_WORKERS, MAX_PARAMETER_BYTES,
    MAX_SPATIAL_SIZE, MAX_WIDTH,
};

use load::Layer;

/// File name of the resolved config inside a run folder.
pub const RESOLVED_CONFIG_FILE: &str = "config.yaml";

/// A loaded, validated configuration and where its values came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub sources: Sources,
    /// Reference keys present in the input that tada does not use (warned about once).
    pub ignored_keys: Vec<String>,
    /// The built-in recipe under the file ([`recipes::Recipe::name`]), if any.
    pub recipe: Option<&'static str>,
}

/// Loads `path` with its bases, applies `overrides` (`KEY=VALUE`), checks keys and types, and
/// validates the values. A MoSI config ([`recipes::recipe_for`]) is read over the MoSI recipe,
/// so every command, `tada config show` included, sees the config a run trains with; OUTPUT_DIR
/// left unset becomes `runs/<file stem>` ([`default_run_folder`]).
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let file = load::load_file(path)?;
    match recipes::recipe_for(&file, overrides)? {
        Some(recipe) => recipe.finish_over(file, path, overrides),
        None => finish_file(file, path, overrides),
    }
}

/// [`finish`] for a config read from `path`: its default run folder.
fn finish_file(
    layer: Layer,
    path: &Path,
    overrides: &[String],
) -> Result<LoadedConfig, ConfigError> {
    let mut loaded = finish(layer, overrides)?;
    default_run_folder(&mut loaded, path);
    Ok(loaded)
}

/// Folder of the runs of configs that leave OUTPUT_DIR unset, relative to the working
/// directory (MMAction2's `work_dirs/`).
pub const RUNS_FOLDER: &str = "runs";

/// OUTPUT_DIR, when neither the file, its bases nor `--set` gives it, is `runs/<file stem>`: two
/// configs run in one directory get two folders, instead of the second resuming (or refusing)
/// the first's run in the reference's shared `output/`.
fn default_run_folder(loaded: &mut LoadedConfig, path: &Path) {
    if loaded.sources.of("OUTPUT_DIR") != Source::Default {
        return;
    }
    if let Some(stem) = path.file_stem().filter(|s| !s.is_empty()) {
        let folder = Path::new(RUNS_FOLDER).join(stem);
        loaded.config.output_dir = folder.to_string_lossy().into_owned();
    }
}

/// Like [`load`] for YAML text that has no file (embedded configs); `name` labels errors.
/// `_BASE*` keys are not allowed here since there is no directory to resolve them against.
pub fn load_str(text: &str, name: &str, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let path = PathBuf::from(name);
    let map = load::parse_yaml(text, &path)?;
    if let Some(k) = load::BASE_KEYS.iter().find(|k| map.contains_key(**k)) {
        return Err(ConfigError::BaseWithoutFolder {
            file: path,
            key: k.to_string(),
        });
    }
    finish(Layer::new(map, &Source::File(path))?, overrides)
}

fn defaults_tree() -> Map<String, Value> {
    match serde_json::to_value(Config::default()) {
        Ok(Value::Object(m)) => m,
        _ => unreachable!("Config serialises to a mapping"),
    }
}

fn finish(mut layer: Layer, overrides: &[String]) -> Result<LoadedConfig, ConfigError> {
    let defaults = defaults_tree();
    for arg in overrides {
        overrides::apply(arg, &defaults, &mut layer)?;
    }
    let ignored_keys = keys::check_tree(&defaults, &mut layer.value, &layer.sources)?;
    keys::coerce_numbers(&defaults, &mut layer.value, "");
    let classes_per_head = class_lists::take(&mut layer.value, &layer.sources)?;
    let mut config: Config =
        serde_path_to_error::deserialize(Value::Object(layer.value)).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::WrongType {
                origin: layer.sources.of(&key),
                key,
                message: e.into_inner().to_string(),
            }
        })?;
    config.video.head.num_classes_per_head = classes_per_head;
    validate(&config, &layer.sources)?;
    warn_unused(&ignored_keys);
    Ok(LoadedConfig {
        config,
        sources: layer.sources,
        ignored_keys,
        recipe: None,
    })
}

/// One warning for the reference keys tada does not use.
fn warn_unused(ignored_keys: &[String]) {
    if ignored_keys.is_empty() {
        return;
    }
    tracing::warn!(
        "config: ignoring {} reference key(s) tada does not use: {}",
        ignored_keys.len(),
        ignored_keys.join(", ")
    );
}

impl LoadedConfig {
    /// The merged configuration as YAML (every key, defaults included), after a comment naming
    /// the recipe under the file.
    pub fn to_yaml(&self) -> String {
        let yaml = to_yaml(&self.config);
        match self.recipe {
            Some(name) => format!("# keys the file leaves out come from {name}\n{yaml}"),
            None => yaml,
        }
    }

    /// Writes the resolved config into a run folder, atomically, and returns its path.
    pub fn write_resolved(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join(RESOLVED_CONFIG_FILE);
        crate::atomic_write::write(&path, self.to_yaml().as_bytes())?;
        Ok(path)
    }
}

/// Serialises a config as YAML; a list of class counts is shown as written.
pub fn to_yaml(config: &Config) -> String {
    let per_head = config.video.head.num_classes_per_head.as_deref();
    if let Some(counts) = per_head {
        if let Ok(Value::Object(mut tree)) = serde_json::to_value(config) {
            class_lists::restore(&mut tree, counts);
            return serde_saphyr::to_string(&tree)
                .unwrap_or_else(|e| format!("# cannot serialise config: {e}\n"));
        }
    }
    // Serialising plain structs, enums, numbers and strings cannot fail.
    serde_saphyr::to_string(config).unwrap_or_else(|e| format!("# cannot serialise config: {e}\n"))
}
