//! `tada bench data` measures the pipeline the config trains on: for a contrastive config, the
//! source clips contrastive pretraining reads and the two views cut from each.

use crate::common::{stderr, stdout, tada, write, TINY_BACKBONE};

#[test]
fn bench_data_of_a_contrastive_config_measures_the_contrastive_views() {
    let d = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: ContrastiveHead}}
NUM_GPUS: 0
DATA_LOADER: {{NUM_WORKERS: 1}}
DATA: {{TRAIN_CROP_SIZE: 24, NUM_INPUT_FRAMES: 4}}
PRETRAIN:
  ENABLE: true
  GENERATOR: Contrastive
  PARAMCROP: {{ENABLE: true, INPUT_FRAMES: 8, INPUT_SIZE: 40}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 8}}
"
    );
    let cfg = write(d.path(), "contrastive.yaml", &yaml);
    let o = tada(&[
        "bench",
        "data",
        "--config",
        cfg.to_str().unwrap(),
        "--seconds",
        "0.2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let first = out.lines().next().unwrap_or_default();
    // The source clips at ParamCrop's input size, the views at the training clip size.
    assert!(
        first.starts_with("contrastive views from synthetic_videos source clips [3, 8, 40, 40]")
            && first.contains("two [3, 4, 24, 24] views"),
        "{out}"
    );
    assert!(!out.contains("MoSI"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    let views: f64 = last
        .split(", ")
        .find_map(|p| p.strip_suffix(" clips/s (views)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1.0);
    assert!(views > 0.0, "{out}");
}
