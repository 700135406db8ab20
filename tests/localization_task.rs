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
    // The training loss falls: the last logged step's well under the first's.
    let log = std::fs::read_to_string(d.path().join("late/metrics.jsonl")).unwrap();
    let losses: Vec<f64> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["phase"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    assert!(
        losses.len() >= 2 && losses[losses.len() - 1] < 0.8 * losses[0],
        "{losses:?}"
    );
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

/// HACS-style per-video feature files (one `<video>_0_<end_ms>` clip per video in the clips
/// list) give every window the same input as the reference's 5-second clips of the same rows.
#[test]
fn per_video_feature_files_read_as_five_second_clips() {
    use tada::localization::features::{FeatureSet, TalSplit};
    use tch::Tensor;
    let d = TempDir::new().unwrap();
    let spec = TinySpec::default();
    let data = write(&d.path().join("tiny-tal"), &spec).unwrap();
    let cfg_path = crate::common::write(d.path(), "bmn.yaml", &config_yaml(&data, &spec));
    let clips_list = std::fs::read_to_string(data.anno_dir.join("5s_clips.txt")).unwrap();
    let whole = d.path().join("per_video");
    std::fs::create_dir_all(&whole).unwrap();
    let mut lines = String::new();
    let mut by_video: Vec<(String, Vec<Tensor>, String)> = Vec::new();
    for line in clips_list.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let rows = Tensor::read_npy(
            data.features_dir
                .join(format!("{}_{}_{}.npy", f[0], f[1], f[2])),
        )
        .unwrap();
        match by_video.last_mut() {
            Some((v, parts, end)) if v == f[0] => {
                parts.push(rows);
                *end = f[2].to_string();
            }
            _ => by_video.push((f[0].to_string(), vec![rows], f[2].to_string())),
        }
    }
    for (video, parts, end) in &by_video {
        Tensor::cat(parts, 0)
            .write_npy(whole.join(format!("{video}_0_{end}.npy")))
            .unwrap();
        lines.push_str(&format!("{video},0,{end}\n"));
    }
    std::fs::write(data.anno_dir.join("per_video.txt"), lines).unwrap();
    let five = tada::config::load(&cfg_path, &[]).unwrap().config;
    let per_video = tada::config::load(
        &cfg_path,
        &[
            "DATA.CLIPS_LIST_FILE=per_video.txt".to_string(),
            format!("DATA.DATA_ROOT_DIR={}", whole.display()),
            "DATA.LOAD_CLASSIFIER_RES=false".to_string(),
        ],
    )
    .unwrap()
    .config;
    for (split, training) in [(TalSplit::Train, true), (TalSplit::Validation, false)] {
        let a = FeatureSet::from_config(&five, split, training).unwrap();
        let b = FeatureSet::from_config(&per_video, split, training).unwrap();
        assert_eq!(a.index.windows, b.index.windows);
        for i in 0..a.index.windows.len() {
            let (wa, wb) = (a.window(i).unwrap(), b.window(i).unwrap());
            assert!(
                wa.assembled.features.equal(&wb.assembled.features),
                "window {i}"
            );
            // The global row mask runs to the files' end: the video's for one file.
            let n = wa.assembled.in_window.len();
            assert_eq!(wa.assembled.in_window, wb.assembled.in_window[..n]);
        }
    }
}

/// A truncated feature file is an error naming it (never read past its end), for the window
/// that needs it; the other windows read.
#[test]
fn a_truncated_feature_file_is_named() {
    use tada::localization::features::{FeatureSet, TalSplit};
    let d = TempDir::new().unwrap();
    let spec = TinySpec::default();
    let data = write(&d.path().join("tiny-tal"), &spec).unwrap();
    let cfg_path = crate::common::write(d.path(), "bmn.yaml", &config_yaml(&data, &spec));
    let cfg = tada::config::load(&cfg_path, &[]).unwrap().config;
    let set = FeatureSet::from_config(&cfg, TalSplit::Validation, false).unwrap();
    let video = &set.index.videos[set.index.windows[0].video].name;
    let file = data.features_dir.join(format!("{video}_0_5000.npy"));
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 64]).unwrap();
    let e = set.window(0).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{video}_0_5000.npy")) && e.contains("truncated") && !e.contains('\n'),
        "{e}"
    );
    let other = set
        .index
        .windows
        .iter()
        .position(|w| set.index.videos[w.video].name != *video)
        .unwrap();
    assert!(set.window(other).is_ok());
}

/// A localisation run stopped part way and resumed takes the uninterrupted run's steps: the
/// same losses bit for bit (PEM regression's draws come from each step's seed).
#[test]
fn a_resumed_localisation_run_repeats_the_uninterrupted_losses() {
    use tada::runs::{finetune, RunOptions};
    use tada::train::TrainOptions;
    let _serial = crate::common::serial();
    let d = TempDir::new().unwrap();
    let spec = TinySpec::default();
    let data = write(&d.path().join("tiny-tal"), &spec).unwrap();
    let cfg_path = crate::common::write(d.path(), "bmn.yaml", &config_yaml(&data, &spec));
    let set = [
        "OPTIMIZER.MAX_EPOCH=3".to_string(),
        "TRAIN.CHECKPOINT_PERIOD=1".to_string(),
    ];
    let loaded = tada::config::load(&cfg_path, &set).unwrap();
    let run = |dir: &str, max_steps: Option<u64>, resume: bool| {
        let opts = RunOptions {
            output: Some(d.path().join(dir)),
            weights: None,
            train: TrainOptions {
                max_steps,
                resume,
                handle_signals: false,
                ..TrainOptions::default()
            },
        };
        finetune(&loaded, &opts).unwrap().0
    };
    let whole = run("whole", None, false);
    let first = run("parts", Some(7), false);
    assert_eq!(first.steps, 7);
    let rest = run("parts", None, true);
    assert_eq!(rest.steps, whole.steps);
    let both: Vec<(u64, f64)> = first.losses.into_iter().chain(rest.losses).collect();
    assert_eq!(both, whole.losses);
}

/// `tada data tiny-tal` writes a set `tada data check` passes, window by window, and
/// `tada bench data` reads; a truncated feature file is named by the check, which then fails.
#[test]
fn data_commands_check_and_bench_localisation_windows() {
    let d = TempDir::new().unwrap();
    let out = d.path().join("tt");
    let o = tada(&["data", "tiny-tal", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = out.join("bmn_tiny_tal.yaml");
    let check = || tada(&["data", "check", "--config", cfg.to_str().unwrap()]);
    let o = check();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(", bad 0"), "{}", stdout(&o));
    let o = tada(&[
        "bench",
        "data",
        "--config",
        cfg.to_str().unwrap(),
        "--seconds",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("windows/s per worker"),
        "{}",
        stdout(&o)
    );
    let file = out.join("features/P02_03_0_5000.npy");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let o = check();
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("P02_03_0_5000.npy") && stdout(&o).contains("truncated"),
        "{}",
        stdout(&o)
    );
}
