//! The ViViT / TimeSformer and EPIC-Kitchens configs as users load them: an EPIC model builds
//! whole (its dataset and submission task are built: tests/epic.rs runs them), and (with
//! `TADA_REFERENCE`) the reference's own pool transformer files build with its parameter counts.

use tada::config::{load, ConfigError};
use tempfile::TempDir;

use crate::common::write;

fn err_text(e: &ConfigError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "error must be one line: {s:?}");
    s
}

/// An EPIC-Kitchens model (ir-CSN with BaseHeadx2) on its dataset, and its submission config:
/// nothing in them is unbuilt, the model builds and predicts verb and noun.
#[test]
fn an_epic_kitchens_model_builds_with_its_dataset_and_submission_task() {
    let d = TempDir::new().unwrap();
    let f = write(
        d.path(),
        "csn_ek100.yaml",
        "VIDEO:\n  HEAD: {NAME: BaseHeadx2, NUM_CLASSES: [3, 5]}\n  BACKBONE:\n    DEPTH: 50\n    NUM_FILTERS: [4, 8, 16, 16, 32]\n    NUM_OUT_FEATURES: 32\n    KERNEL_SIZE: [[3, 7, 7], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]\n    DOWNSAMPLING: [true, false, true, true, true]\n    DOWNSAMPLING_TEMPORAL: [false, false, true, true, true]\n    EXPANSION_RATIO: 4\n    BRANCH: {NAME: CSNBranch}\n    STEM: {NAME: DownSampleStem}\nTRAIN: {DATASET: epickitchen100}\n",
    );
    let c = load(&f, &[]).unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let m = tada::models::VideoModel::new(&vs.root(), &c.config).unwrap();
    let x = tch::Tensor::zeros([2, 3, 4, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
    let out = m.forward_t(&x, true);
    assert_eq!(out.predictions.names(), ["verb_class", "noun_class"]);
    assert_eq!(out.predictions.get("noun_class").unwrap().size(), [2, 5]);
    // The submission config's keys (csn_ek100_submission.yaml): typed, nothing unbuilt.
    let set = [
        "TASK_TYPE=submission".to_string(),
        "SUBMISSION.ENABLE=true".to_string(),
        "SUBMISSION.ACTION_CLASS_ENSUMBLE_METHOD=calculate".to_string(),
    ];
    let c = load(&f, &set).unwrap();
    assert_eq!(
        c.config.task_type,
        tada::config::schema::TaskType::Submission
    );
    assert_eq!(
        c.config.submission.action_class_ensumble_method,
        tada::config::schema::ActionEnsemble::Calculate
    );
    // A misspelt method is refused, naming the key.
    let bad = ["SUBMISSION.ACTION_CLASS_ENSUMBLE_METHOD=average".to_string()];
    let e = err_text(&load(&f, &bad).unwrap_err());
    assert!(e.contains("ACTION_CLASS_ENSUMBLE_METHOD"), "{e}");
}

/// With `TADA_REFERENCE` set: the reference's pool ViViT / TimeSformer, S3D-G and SlowFast
/// backbone files build with the reference's counts, which `tada info` names (`pool_backbones` of tests/data/reference_param_counts.json, with
/// the 400-class head the files leave to the project, at base.yaml's data sizes).
#[test]
fn reference_pool_backbones_build_with_the_references_counts() {
    let Some(root) = std::env::var_os("TADA_REFERENCE") else {
        eprintln!("skipped: set TADA_REFERENCE to a checkout of TAdaConv to build its pool files");
        return;
    };
    let _serial = crate::common::serial();
    let root = std::path::PathBuf::from(root);
    let counts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::common::repo().join("tests/data/reference_param_counts.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let pool = counts["pool_backbones"].as_object().unwrap();
    assert_eq!(pool.len(), 6);
    for (rel, want) in pool {
        let set = ["VIDEO.HEAD.NUM_CLASSES=400".to_string()];
        let c = load(&root.join(rel), &set).unwrap_or_else(|e| panic!("{rel}: {}", err_text(&e)));
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        tada::models::VideoModel::new(&vs.root(), &c.config)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let count = |prefix: &str| tada::models::summary::parameter_count(&vs, prefix);
        assert_eq!(
            (count(""), count("backbone.")),
            (
                want["parameters"].as_i64().unwrap(),
                want["backbone"].as_i64().unwrap()
            ),
            "{rel}: parameters (model, backbone) against the reference's"
        );
        // `tada info` recognises the file and prints the reference's backbone count.
        let s = tada::models::summary::summarize(&c.config, None)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            s.reference.map(|r| r.1),
            want["backbone"].as_i64(),
            "{rel}: {:?}",
            s.reference
        );
    }
}

/// `tada info --model` on a two-head model prints each prediction by name.
#[test]
fn info_names_both_predictions_of_a_two_head_model() {
    let d = TempDir::new().unwrap();
    let f = write(
        d.path(),
        "vivit_fe_ek100.yaml",
        "VIDEO:\n  HEAD: {NAME: TransformerHeadx2, NUM_CLASSES: [3, 5]}\n  BACKBONE:\n    META_ARCH: FactorizedTransformer\n    NUM_FEATURES: 16\n    NUM_OUT_FEATURES: 16\n    PATCH_SIZE: 8\n    TUBELET_SIZE: 2\n    DEPTH: 1\n    DEPTH_TEMP: 1\n    NUM_HEADS: 2\n    FF_DROPOUT: 0.0\n    MLP_MULT: 2\n    STEM: {NAME: TubeletEmbeddingStem}\n    BRANCH: {NAME: BaseTransformerLayer}\nDATA: {NUM_INPUT_FRAMES: 4, TRAIN_CROP_SIZE: 16}\nTRAIN: {DATASET: epickitchen100}\n",
    );
    let c = load(&f, &[]).unwrap_or_else(|e| panic!("{}", err_text(&e)));
    let s = tada::models::summary::summarize(&c.config, None).unwrap();
    assert_eq!(
        s.output_description(),
        "verb_class [1, 3], noun_class [1, 5]"
    );
    assert_eq!(s.input_shape, [1, 3, 4, 16, 16]);
}
