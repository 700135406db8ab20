//! The schema walk: every key of tada's config schema is read by the code that builds or runs
//! something (or that refuses a value tada does not build, as `runs/parts.rs` does for
//! PRETRAIN.LOSS_WEIGHTS), or listed in [`INERT`] with why it changes nothing — never parsed and
//! silently ignored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tada::config::Config;

use crate::common::repo;

/// Keys no code reads, and why that is right (what the value means, and what tada does).
const INERT: &[(&str, &str)] = &[
    ("PRETRAIN.SCALE_JITTER", "the reference reads it nowhere either"),
    ("PRETRAIN.IMAGENET_DATA_SIZE", "the reference picks its list imagenet_train_S{size}.txt by it; tada reads imagenet_train.txt (docs/datasets.md)"),
    ("TEST.AUTOMATIC_MULTI_SCALE_TEST", "tada tests exactly the views TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS name (docs/training.md#testing)"),
    ("VIDEO.HEAD.OUTPUT_DIM", "the width of TAdaFormer's output projection, which tada refuses (VIDEO.BACKBONE.REQUIRE_PROJ)"),
    ("OPTIMIZER.NEW_PARAMS_WD_MULT", "the reference's optimiser builder never reads it (NEW_PARAMS groups keep WEIGHT_DECAY)"),
    ("AUGMENTATION.AUTOAUGMENT.BEFORE_CROP", "the reference reads it nowhere: RandAugment always runs after the crop (docs/transforms.md#the-clip-pipeline)"),
];

/// `(key, value)` of every leaf of `v`, keys joined with dots.
fn leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match v.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, child) in map {
                let key = match prefix {
                    "" => k.clone(),
                    p => format!("{p}.{k}"),
                };
                leaves(child, &key, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// The Rust field a key's last segment deserialises into (serde renames included).
fn field(segment: &str) -> String {
    match segment {
        "TYPE" => "kind".into(),
        s => s.to_ascii_lowercase(),
    }
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
        }
    }
}

/// Whether `text` uses `.name` as a whole field name.
fn uses(text: &str, name: &str) -> bool {
    let needle = format!(".{name}");
    text.match_indices(&needle).any(|(i, _)| {
        let after = text[i + needle.len()..].chars().next();
        !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// A key is read when one source file uses its field and names its section
/// (`a.mixup.alpha`; `let m = &…mixup;` … `m.alpha`; a function of a `MixupConfig` reading
/// `cfg.alpha`).
fn is_read(key: &str, files: &[(PathBuf, String)]) -> bool {
    let parts: Vec<String> = key.split('.').map(field).collect();
    let leaf = parts.last().unwrap();
    files.iter().any(|(_, text)| match parts.len() {
        1 => uses(text, leaf),
        n => {
            let section = parts[n - 2].replace('_', "");
            let squashed = text.to_ascii_lowercase().replace('_', "");
            squashed.contains(&section) && uses(text, leaf)
        }
    })
}

#[test]
fn every_schema_key_is_read_or_inert() {
    let mut keys = Vec::new();
    leaves(
        &serde_json::to_value(Config::default()).unwrap(),
        "",
        &mut keys,
    );
    assert!(keys.len() > 150, "{} keys", keys.len());
    let mut files = Vec::new();
    sources(&repo().join("src"), &mut files);
    sources(&repo().join("augment/src"), &mut files);
    let inert: BTreeSet<&str> = INERT.iter().map(|(k, _)| *k).collect();
    let mut silent = Vec::new();
    for key in &keys {
        let read = is_read(key, &files);
        if inert.contains(key.as_str()) {
            assert!(!read, "{key} is read now: take it out of INERT");
        } else if !read {
            silent.push(key.clone());
        }
    }
    assert!(
        silent.is_empty(),
        "schema keys neither read nor listed as inert: {silent:?}"
    );
    for k in &inert {
        assert!(
            keys.iter().any(|key| key == k),
            "INERT names {k}, not a schema key"
        );
    }
}
