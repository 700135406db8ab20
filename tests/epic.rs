//! EPIC-Kitchens-100 end to end on the embedded tiny dataset (data/sources/epic_synthetic.rs,
//! written in the published csv + frame-folder format): a two-head model trains (its loss
//! falls, verb / noun / action metrics logged and validated), `tada test` reports verb, noun and
//! action accuracy, and TASK_TYPE submission writes the challenge JSON.

use std::path::{Path, PathBuf};

use crate::common::{mean_loss, run_options, serial, stderr, stdout, tada, TINY_BACKBONE};
use tada::data::sources::epic_synthetic::{write_tiny_epic, TinyEpic};

/// Segments of the tiny dataset: 4 train videos x 6, 2 validation, 1 test.
const TRAIN_SEGMENTS: usize = 24;
const VAL_SEGMENTS: usize = 12;
const TEST_SEGMENTS: usize = 6;

/// A tiny R2D3D with `BaseHeadx2` over 4 verbs and 3 nouns on the tiny dataset in `dir/epic`.
fn config(dir: &Path, epochs: u32) -> PathBuf {
    let data = dir.join("epic");
    write_tiny_epic(&data, &TinyEpic::default()).unwrap();
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHeadx2, NUM_CLASSES: [4, 3], DROPOUT_RATE: 0.0}}
NUM_GPUS: 0
RANDOM_SEED: 1
LOG_PERIOD: 1
DATA_LOADER: {{NUM_WORKERS: 0}}
DATA:
  DATA_ROOT_DIR: {root}
  ANNO_DIR: {root}
  NUM_INPUT_FRAMES: 4
  SAMPLING_RATE: 2
  TARGET_FPS: 60
  TRAIN_JITTER_SCALES: [32, 36]
  TRAIN_CROP_SIZE: 32
  TEST_SCALE: 32
  TEST_CROP_SIZE: 32
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{DATASET: epickitchen100, BATCH_SIZE: 8, EVAL_PERIOD: 1, CHECKPOINT_PERIOD: 100}}
TEST: {{DATASET: epickitchen100, BATCH_SIZE: 8, NUM_ENSEMBLE_VIEWS: 2, NUM_SPATIAL_CROPS: 1}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.01, MAX_EPOCH: {epochs}, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0}}
",
        root = data.display()
    );
    let path = dir.join("epic.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Trains, tests and submits: the full path a user of the EPIC configs runs.
#[test]
fn a_two_head_model_trains_tests_and_submits_on_tiny_epic() {
    let d = tempfile::tempdir().unwrap();
    let cfg_path = config(d.path(), 8);
    let run = d.path().join("run");
    let s = {
        let _serial = serial();
        let cfg = tada::config::load(&cfg_path, &[]).unwrap();
        tada::runs::finetune(&cfg, &run_options(&run, false, None))
            .unwrap()
            .0
    };
    // 24 segments, 8 a step, 8 epochs.
    assert_eq!(s.steps, (TRAIN_SEGMENTS / 8 * 8) as u64);
    let (first, last) = (
        mean_loss(&s.losses[..3]),
        mean_loss(&s.losses[s.losses.len() - 3..]),
    );
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    let names: Vec<&str> = s.last_metrics.iter().map(|(n, _)| n.as_str()).collect();
    for key in [
        "loss_verb_class",
        "loss_noun_class",
        "acc_verb",
        "acc_noun",
        "acc_action",
    ] {
        assert!(names.contains(&key), "{names:?}");
    }
    // The two parts add up to the step's loss.
    let part = |k: &str| s.last_metrics.iter().find(|(n, _)| n == k).unwrap().1;
    let (_, loss) = *s.losses.last().unwrap();
    assert!((part("loss_verb_class") + part("loss_noun_class") - loss).abs() < 1e-4);
    // Validation logs the action's acc@1 and each head's.
    let records = tada::train::metrics::read_metrics(&run.join("metrics.jsonl")).unwrap();
    let val: Vec<_> = records.iter().filter(|r| r["phase"] == "val").collect();
    assert_eq!(val.len(), 8);
    for key in ["acc@1", "verb_acc@1", "noun_acc@1", "loss"] {
        assert!(val[7].contains_key(key), "{:?}", val[7]);
    }
    // Action top-1 needs both heads right: never above either head's.
    let v = |k: &str| val[7][k].as_f64().unwrap();
    assert!(v("acc@1") <= v("verb_acc@1").min(v("noun_acc@1")) + 1e-9);

    let weights = s.checkpoint.unwrap();
    let w = weights.to_str().unwrap();
    let cfg = cfg_path.to_str().unwrap();
    let out = d.path().join("test.json");
    let o = tada(&[
        "test",
        "--config",
        cfg,
        "--weights",
        w,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("verb acc@1"), "{}", stdout(&o));
    let r = json(&out);
    assert_eq!(r["videos"], VAL_SEGMENTS);
    assert_eq!(r["views_per_video"], 2);
    let e = &r["epic"];
    assert_eq!(r["acc1"], e["action"]["acc1"]);
    // Under 5 classes a head has no top-5; the 12 actions have.
    assert!(e["verb"]["acc5"].is_null() && e["action"]["acc5"].is_number());
    let a = |k: &str| e[k]["acc1"].as_f64().unwrap();
    assert!(a("action") <= a("verb").min(a("noun")) + 1e-9, "{e}");
    // Trained on the same look and motion cues, the model beats chance (1/4 verbs, 1/3 nouns).
    assert!(a("verb") > 0.4 && a("noun") > 0.5, "{e}");
    // The verbs' per-class table and confusion matrix, with their names.
    assert_eq!(r["confusion"]["classes"][0], "move up");

    let sub = d.path().join("sub.json");
    let o = tada(&[
        "test",
        "--config",
        cfg,
        "--set",
        "TASK_TYPE=submission",
        "--weights",
        w,
        "-o",
        sub.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&sub);
    assert_eq!(j["version"], "0.2");
    assert_eq!(j["challenge"], "action_recognition");
    assert_eq!(
        (
            j["sls_pt"].as_i64(),
            j["sls_tl"].as_i64(),
            j["sls_td"].as_i64()
        ),
        (Some(2), Some(3), Some(3))
    );
    let results = j["results"].as_object().unwrap();
    assert_eq!(results.len(), TEST_SEGMENTS);
    let seg = &results["P03_01_0"];
    let verbs = seg["verb"].as_object().unwrap();
    assert_eq!(verbs.keys().collect::<Vec<_>>(), ["0", "1", "2", "3"]);
    // Two views' probabilities summed (DATA.ENSEMBLE_METHOD sum).
    let total: f64 = verbs.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 2.0).abs() < 1e-4, "{total}");
    assert_eq!(seg["noun"].as_object().unwrap().len(), 3);
    // All 12 actions (fewer than 100), best first, named "verb,noun".
    let actions = seg["action"].as_object().unwrap();
    assert_eq!(actions.len(), 12);
    assert!(actions.contains_key("3,2") && actions.contains_key("0,0"));
    let scores: Vec<f64> = actions.values().map(|p| p.as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // Per-view products summed: they add up to the number of views, as the heads do.
    assert!((scores.iter().sum::<f64>() - 2.0).abs() < 1e-4);

    // `calculate` multiplies the fused heads instead: sums of 2 each, products add up to 4.
    let calc = d.path().join("calc.json");
    let o = tada(&[
        "test",
        "--config",
        cfg,
        "--set",
        "TASK_TYPE=submission",
        "--set",
        "SUBMISSION.ACTION_CLASS_ENSUMBLE_METHOD=calculate",
        "--weights",
        w,
        "-o",
        calc.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = json(&calc);
    let sum: f64 = c["results"]["P03_01_0"]["action"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_f64().unwrap())
        .sum();
    assert!((sum - 4.0).abs() < 1e-4, "{sum}");
}

/// A bad row of a list fails the run in one line naming the file and the line.
#[test]
fn a_bad_row_fails_the_test_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let cfg_path = config(d.path(), 1);
    let weights = d.path().join("w.safetensors");
    {
        let _serial = serial();
        let loaded = tada::config::load(&cfg_path, &[]).unwrap();
        let session = tada::models::Session::new(&loaded.config).unwrap();
        session.vs.save(&weights).unwrap();
    }
    let list = d.path().join("epic/EPIC_100_validation.csv");
    let text = std::fs::read_to_string(&list).unwrap();
    // Line 3 (the second segment): stop_frame before start_frame.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cols: Vec<String> = lines[2].split(',').map(str::to_string).collect();
    cols[7] = "1".into();
    lines[2] = cols.join(",");
    std::fs::write(&list, lines.join("\n")).unwrap();
    let args = ["test", "--config", cfg_path.to_str().unwrap(), "--weights"];
    let o = tada(&[&args[..], &[weights.to_str().unwrap()]].concat());
    assert!(!o.status.success());
    let e = stderr(&o);
    let line = e
        .lines()
        .find(|l| l.contains("EPIC_100_validation.csv:3:"))
        .unwrap_or_else(|| panic!("{e}"));
    assert!(line.contains("are no segment"), "{line}");
}

/// `tada data check` on EPIC checks every segment's ends: the tiny dataset passes, and a
/// segment's missing last frame is named.
#[test]
fn data_check_reads_every_segments_ends() {
    let d = tempfile::tempdir().unwrap();
    let cfg_path = config(d.path(), 1);
    let cfg = cfg_path.to_str().unwrap();
    let o = tada(&["data", "check", "--config", cfg]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Train and validation segments, two ends each.
    let checked = 2 * (TRAIN_SEGMENTS + VAL_SEGMENTS);
    assert!(
        stdout(&o).contains(&format!("checked {checked}, bad 0")),
        "{}",
        stdout(&o)
    );
    let list = tada::data::dataset::annotations::epic::read_list(
        &d.path().join("epic"),
        &d.path().join("epic"),
        tada::data::dataset::annotations::epic::EpicList::Validation,
    )
    .unwrap();
    let n = &list.narrations[3];
    let tada::data::dataset::annotations::epic::Media::Frames(dir) = &n.media else {
        panic!("{:?}", n.media)
    };
    let gone = tada::data::dataset::annotations::epic::frame_file(dir, n.stop_frame);
    std::fs::remove_file(&gone).unwrap();
    let o = tada(&["data", "check", "--config", cfg]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains(&gone.display().to_string()), "{out}");
    assert!(out.contains(&format!("checked {checked}, bad 1")), "{out}");
}

/// `[loss, acc@1, verb_acc@1, noun_acc@1]` of every `val` record of a run.
fn val_scores(run: &Path) -> Vec<[f64; 4]> {
    tada::train::metrics::read_metrics(&run.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|m| m.get("phase").and_then(|p| p.as_str()) == Some("val"))
        .map(|m| ["loss", "acc@1", "verb_acc@1", "noun_acc@1"].map(|k| m[k].as_f64().unwrap()))
        .collect()
}

/// Two ranks (a linear probe, so the steps equal one process's): each scores half of the val
/// segments and the two-head sums are combined, so both runs log the same whole-split scores.
#[test]
fn two_ranks_validate_both_heads_as_one_process() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg_path = config(d.path(), 2);
    let c = cfg_path.to_str().unwrap();
    let (one, two) = (d.path().join("one"), d.path().join("two"));
    let probe = "TRAIN.ONLY_LINEAR=true";
    let o = tada(&[
        "finetune",
        "--config",
        c,
        "--set",
        probe,
        "-o",
        one.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tada(&[
        "launch",
        "--nproc",
        "2",
        "--",
        "finetune",
        "--config",
        c,
        "--set",
        probe,
        "-o",
        two.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (val_scores(&one), val_scores(&two));
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        for (u, v) in x.iter().zip(y) {
            assert!((u - v).abs() <= 1e-5 * u.abs().max(1e-3), "{x:?} vs {y:?}");
        }
    }
}
