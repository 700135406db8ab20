//! Run folders as a user meets them through the binary: a config that leaves OUTPUT_DIR unset
//! runs in `runs/<file stem>`, `tada config show` prints exactly the config.yaml the run
//! records, and a second command into a folder that holds a run of another task stops in one
//! line without touching that run.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{stderr, stdout, tada_bin, write, TINY_BACKBONE};

/// MoSI on 12 synthetic images, one epoch of 3 steps; no MoSI recipe keys in the file.
fn mosi() -> String {
    format!(
        "MODEL: {{NAME: MoSINet}}{TINY_BACKBONE}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3}}
NUM_GPUS: 0
DATA_LOADER: {{NUM_WORKERS: 0}}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 12}}
OPTIMIZER: {{MAX_EPOCH: 1, WARMUP_EPOCHS: 0}}
"
    )
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(tada_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn the_default_run_folder_is_the_config_stem_and_config_show_is_what_runs() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "exp.yaml", &mosi());
    let o = run_in(d.path(), &["pretrain", "--config", "exp.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = d.path().join("runs/exp");
    // Progress without a terminal: one plain line per LOG_PERIOD and the last, saying where
    // the run is and how fast it goes.
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("mosi 3/3 (100.0%)"))
        .unwrap_or_else(|| panic!("{err}"));
    for part in [
        "epoch 1/1",
        "step 3/3",
        " clips/s",
        "data ",
        "loss ",
        "lr ",
        "it/s",
        "eta ",
    ] {
        assert!(line.contains(part), "{part:?} missing: {line}");
    }
    // LOG_PERIOD is 10 and the run 3 steps: the last step is logged all the same.
    let records = tada::train::metrics::read_metrics(&run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = records
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [3]);
    assert!(run
        .join("checkpoints/checkpoint_epoch_00001.safetensors")
        .exists());
    let recorded = std::fs::read_to_string(run.join("config.yaml")).unwrap();
    let shown = run_in(d.path(), &["config", "show", "--config", "exp.yaml"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(stdout(&shown), recorded);
    // The MoSI recipe's values are in both (the defaults would say 0.001 and true).
    assert!(recorded.contains("WEIGHT_DECAY: 0.0001"), "{recorded}");
    assert!(recorded.contains("OUTPUT_DIR: runs/exp"), "{recorded}");

    // A fine-tune config pointed at the same folder: one line naming both tasks, exit 1, and
    // the MoSI run's files as they were.
    let ft = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4}}
MODEL: {{NAME: R2D3D}}
NUM_GPUS: 0
OUTPUT_DIR: runs/exp
DATA_LOADER: {{NUM_WORKERS: 0}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 4, NUM_SAMPLES: 8, EVAL_PERIOD: 0}}
OPTIMIZER: {{MAX_EPOCH: 1, WARMUP_EPOCHS: 0}}
"
    );
    write(d.path(), "ft.yaml", &ft);
    let o = run_in(d.path(), &["finetune", "--config", "ft.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: runs/exp holds a run of task mosi")
            && last.contains("this run trains finetune"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("config.yaml")).unwrap(),
        recorded
    );
    // With its own folder (the default), the same fine-tune runs.
    let own = ft.replace("OUTPUT_DIR: runs/exp\n", "");
    write(d.path(), "ft.yaml", &own);
    let o = run_in(d.path(), &["finetune", "--config", "ft.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.path().join("runs/ft/config.yaml").exists());
}
