//! The reference's supervised recipes end to end on tiny configs: the model EMA (updated every
//! step, checkpointed, resumed exactly, validated and tested with `--ema`).

use std::path::Path;

use crate::common::{run_options, serial, TINY_BACKBONE};
use tada::checkpoint::{ema_name, Checkpoint};
use tada::config::LoadedConfig;
use tada::runs::finetune;

/// Fine-tuning R2D3D on 16 synthetic videos, 8 a step, 3 epochs, with `extra` YAML appended.
fn finetune_config(dir: &Path, extra: &str) -> LoadedConfig {
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.5}}
NUM_GPUS: 0
RANDOM_SEED: 5
LOG_PERIOD: 1
DATA_LOADER: {{NUM_WORKERS: 0}}
MODEL: {{NAME: R2D3D}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 16, FINE_TUNE: true, EVAL_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.05, MAX_EPOCH: 3, WARMUP_EPOCHS: 0, MOMENTUM: 0.9}}
{extra}"
    );
    let path = dir.join("ft.yaml");
    std::fs::write(&path, yaml).unwrap();
    tada::config::load(&path, &[]).unwrap()
}

const EMA: &str = "MODEL: {NAME: R2D3D, EMA: {ENABLE: true, DECAY: 0.5}}\n";

#[test]
fn the_ema_is_checkpointed_resumed_exactly_validated_and_tested() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();

    // The whole run: 2 steps an epoch, 3 epochs.
    let (whole, _) = finetune(&finetune_config(&a, EMA), &run_options(&a, false, None)).unwrap();
    assert_eq!(whole.steps, 6);
    let ckpt = Checkpoint::load(whole.checkpoint.as_ref().unwrap()).unwrap();
    let model: Vec<&str> = ckpt.model.iter().map(|(n, _)| n.as_str()).collect();
    let ema: Vec<&str> = ckpt.ema.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(ema, model, "every model tensor has its average");
    let trained_apart = ckpt
        .ema
        .iter()
        .zip(&ckpt.model)
        .filter(|((_, e), (_, m))| !e.equal(m))
        .count();
    assert!(
        trained_apart > 20,
        "{trained_apart} averages differ from the weights"
    );

    // Stopped mid-epoch and resumed: the same average, bit for bit.
    let cfg_b = finetune_config(&b, EMA);
    let (first, _) = finetune(&cfg_b, &run_options(&b, false, Some(3))).unwrap();
    assert!(first.interrupted);
    let (rest, _) = finetune(&cfg_b, &run_options(&b, true, None)).unwrap();
    assert_eq!(rest.losses, whole.losses[3..], "resumed losses differ");
    let resumed = Checkpoint::load(rest.checkpoint.as_ref().unwrap()).unwrap();
    for ((n, e), (_, r)) in ckpt.ema.iter().zip(&resumed.ema) {
        assert!(e.equal(r), "EMA {n} differs after resuming");
    }

    // Validation scores the average too, as `val_ema`.
    let records = tada::train::metrics::read_metrics(&a.join("metrics.jsonl")).unwrap();
    let phases = |p: &str| records.iter().filter(|r| r["phase"] == p).count();
    assert_eq!((phases("val"), phases("val_ema")), (3, 3));

    // `tada test --ema` tests the average; without EMA weights it says so.
    let cfg_a = finetune_config(&a, EMA);
    let path = whole.checkpoint.unwrap();
    let with_ema = tada::runs::test::test(&cfg_a, &path, true).unwrap();
    assert_eq!(with_ema.videos, 16);
    let (plain, _) = {
        let c = d.path().join("c");
        std::fs::create_dir_all(&c).unwrap();
        finetune(&finetune_config(&c, ""), &run_options(&c, false, Some(1))).unwrap()
    };
    let no_ema = plain.checkpoint.unwrap();
    assert!(Checkpoint::load(&no_ema).unwrap().ema.is_empty());
    let e = tada::runs::test::test(&cfg_a, &no_ema, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds no EMA weights") && !e.contains('\n'),
        "{e}"
    );
    assert_eq!(ema_name("__ema.head.out.bias__"), Some("head.out.bias"));
}
