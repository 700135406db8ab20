//! TASK_TYPE localization end to end on tiny-tal (tada::localization::tiny), through the CLI:
//! `tada finetune` trains BMN on the training windows, `tada localize` (and `tada test`) writes
//! per-video proposals, the detection JSON in the reference's layout and the metrics, which
//! rise well above an untrained model's.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::{stderr, stdout, tada};
use tada::localization::tiny::{config_yaml, write, TinySpec};

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Trains for `epochs` and tests the last checkpoint; returns the metrics.
fn train_and_test(d: &Path, cfg: &Path, run: &str, epochs: u32) -> Value {
    let run = d.join(run);
    let o = tada(&[
        "finetune",
        "--config",
        cfg.to_str().unwrap(),
        "--set",
        &format!("OPTIMIZER.MAX_EPOCH={epochs}"),
        "--set",
        &format!("TRAIN.CHECKPOINT_PERIOD={epochs}"),
        "-o",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = run.join(format!(
        "checkpoints/checkpoint_epoch_{epochs:05}.safetensors"
    ));
    assert!(ckpt.is_file(), "{}", stderr(&o));
    let o = tada(&[
        "localize",
        "--config",
        cfg.to_str().unwrap(),
        "--weights",
        ckpt.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    eprintln!("{}", stdout(&o));
    read_json(&run.join(format!("metrics_ep{epochs}_val.json")))
}

#[test]
fn bmn_trains_and_localizes_tiny_tal() {
    let _serial = crate::common::serial();
    let d = TempDir::new().unwrap();
    let spec = TinySpec::default();
    let data = write(&d.path().join("tiny-tal"), &spec).unwrap();
    let cfg = crate::common::write(d.path(), "bmn.yaml", &config_yaml(&data, &spec));
    let early = train_and_test(d.path(), &cfg, "early", 1);
    let late = train_and_test(d.path(), &cfg, "late", 8);
    let avg = |m: &Value, k: &str| m[k]["average"].as_f64().unwrap();
    // AR@100 at tIoU 0.5:0.95 (the first proposal record).
    let ar100 = |m: &Value| {
        m["proposals"][0]["ar_at"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0].as_f64() == Some(100.0))
            .unwrap()[1]
            .as_f64()
            .unwrap()
    };
    eprintln!(
        "action mAP {:.3} -> {:.3}, verb {:.3} -> {:.3}, AR@100 {:.3} -> {:.3}",
        avg(&early, "action"),
        avg(&late, "action"),
        avg(&early, "verb"),
        avg(&late, "verb"),
        ar100(&early),
        ar100(&late)
    );
    assert!(avg(&late, "action") > avg(&early, "action") + 0.1);
    assert!(ar100(&late) > ar100(&early) + 0.1);
    // The detection JSON is the reference's layout.
    let det = read_json(
        &d.path()
            .join("late/localization_detection_res_ep8_val.json"),
    );
    assert_eq!(det["version"], "0.2");
    assert_eq!(det["challenge"], "action_detection");
    let results = det["results"].as_object().unwrap();
    assert_eq!(results.len(), spec.val_videos);
    let first = &results.values().next().unwrap()[0];
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["score", "label", "verb", "noun", "segment"]);
}
