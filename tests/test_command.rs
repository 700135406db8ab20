//! `tada test`'s output: the report in the run folder of the weights, class names, the confusion
//! matrix and its heat map, acc@5 from 5 classes on, and progress while it runs.

use std::path::Path;

use crate::common::{serial, stderr, stdout, tada, write, TINY_BACKBONE};

/// A 5-class model over 10 synthetic test videos, 4 a batch (3 batches).
fn config(dir: &Path) -> std::path::PathBuf {
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 5}}
NUM_GPUS: 0
DATA_LOADER: {{NUM_WORKERS: 0}}
DATA: {{NUM_INPUT_FRAMES: 4, TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32}}
TRAIN: {{DATASET: synthetic_videos, NUM_SAMPLES: 10}}
TEST: {{BATCH_SIZE: 4}}
"
    );
    write(dir, "test.yaml", &yaml)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The confusion matrix's counts, checked against the per-class entries and drawn in the PNG.
fn check_confusion(r: &serde_json::Value, png: &Path) {
    let counts: Vec<Vec<u64>> = serde_json::from_value(r["confusion"]["counts"].clone()).unwrap();
    assert_eq!(counts.len(), 5);
    assert_eq!(counts.iter().flatten().sum::<u64>(), 10);
    for c in r["per_class"].as_array().unwrap() {
        let k = c["class"].as_u64().unwrap() as usize;
        assert_eq!(counts[k].iter().sum::<u64>(), c["videos"].as_u64().unwrap());
        let right = counts[k][k] as f64 / c["videos"].as_f64().unwrap();
        assert!((c["accuracy"].as_f64().unwrap() - right).abs() < 1e-12);
    }
    // The PNG is the labelled heat map of exactly this matrix (the renderer's own tests check
    // its cells, labels and sizes).
    let names: Vec<String> = serde_json::from_value(r["confusion"]["classes"].clone()).unwrap();
    let img = image::open(png).unwrap().to_rgb8();
    assert_eq!(img, tada::viz::confusion::render(&counts, &names));
}

#[test]
fn test_writes_named_results_and_a_heat_map_into_the_run_folder() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path());
    let weights = d.path().join("run/checkpoints/w.safetensors");
    std::fs::create_dir_all(weights.parent().unwrap()).unwrap();
    {
        let _serial = serial();
        let loaded = tada::config::load(&cfg, &[]).unwrap();
        let session = tada::models::Session::new(&loaded.config).unwrap();
        session.vs.save(&weights).unwrap();
    }
    let args = ["test", "--config", cfg.to_str().unwrap(), "--weights"];
    let o = tada(&[&args[..], &[weights.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    // Progress over the 3 batches (plain lines: stderr is not a terminal here).
    assert!(stderr(&o).contains("test 3/3 (100.0%)"), "{}", stderr(&o));
    let run = d.path().join("run");
    assert!(stdout(&o).contains(&run.join("test_results.json").display().to_string()));
    let r = json(&run.join("test_results.json"));
    assert_eq!(r["videos"], 10);
    assert!(r["acc5"].as_f64().is_some(), "5 classes: acc@5 is reported");
    let names: Vec<String> = serde_json::from_value(r["confusion"]["classes"].clone()).unwrap();
    assert_eq!(names[1], "motion 72°");
    for c in r["per_class"].as_array().unwrap() {
        assert_eq!(c["name"], names[c["class"].as_u64().unwrap() as usize]);
    }
    check_confusion(&r, &run.join("confusion.png"));

    // -o puts both files elsewhere.
    let other = d.path().join("elsewhere/r.json");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    let o = tada(
        &[
            &args[..],
            &[weights.to_str().unwrap(), "-o", other.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&other)["confusion"], r["confusion"]);
    assert!(d.path().join("elsewhere/confusion.png").is_file());
}
