//! The localisation data path against the reference's own code (tests/fixtures/tal_data, made
//! by scripts/fixtures/tal_data.py from the reference's `Epickitchen100localization`,
//! `perform_test`, `epic_localization_post_processing` and `Epicdetection` on a small feature
//! set saved with `torch.save`): windows, assembled features, targets, classifier data, the
//! fused maps' detections and their mAP.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tch::{Kind, Tensor};

use tada::data::loader::SampleSource;
use tada::data::sources::tal_windows::TalWindows;
use tada::localization::detect::{detect, PostSettings, VideoDetections};
use tada::localization::features::{FeatureSet, TalSplit};
use tada::localization::fuse::{fuse_windows, window_maps};
use tada::localization::labels::LabelMaps;
use tada::localization::post::SoftNms;
use tada::localization::MapSpec;

fn dir() -> std::path::PathBuf {
    crate::common::fixtures_dir().join("tal_data")
}

fn config() -> tada::config::Config {
    let data = dir().join("data");
    let d = |s: &str| data.join(s).display().to_string();
    let text = format!(
        "TASK_TYPE: localization
DATA:
  DATA_ROOT_DIR: [{}, {}]
  ANNO_DIR: {}
  ANNO_NAME: EPIC_100_validation.json
  VIDEO_LENGTH_FILE: epic_videos_len.txt
  CLIPS_LIST_FILE: 5s_clips.txt
  LOAD_TYPE: torch
  TEMPORAL_SCALE: 16
  DURATION_SCALE: 8
  NUM_INPUT_CHANNELS: 6
  TARGET_FPS: 60
  CLIP_INTERVAL: 8
  CLASSIFIER_ROOT_DIR: {}
  LOAD_CLASSIFIER_RES: true
VIDEO:
  BACKBONE: {{META_ARCH: SimpleLocalizationConv}}
  HEAD: {{NAME: BaseBMN, NUM_SAMPLE: 4, NUM_SAMPLE_PERBIN: 3, BOUNDARY_RATIO: 0.5}}
LOCALIZATION:
  POST_PROCESS: {{SOFT_NMS_ALPHA: 0.4, SOFT_NMS_LOW_THRES: 0.25, SOFT_NMS_HIGH_THRES: 0.9, PROP_NUM_RATIO: 1.0, SELECT_SCORE: 0.0, CLR_POWER: 1.2, REG_POWER: 1.0, IOU_POWER: 2.0}}
",
        d("feat_a"),
        d("feat_b"),
        d("annotations"),
        d("cls")
    );
    tada::config::load_str(&text, "tal_data.yaml", &[])
        .unwrap()
        .config
}

fn golden() -> (HashMap<String, Tensor>, Value) {
    let t = Tensor::read_safetensors(dir().join("tal_data.safetensors")).unwrap();
    let meta = std::fs::read_to_string(dir().join("tal_data.json")).unwrap();
    (
        t.into_iter().collect(),
        serde_json::from_str(&meta).unwrap(),
    )
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// The windows of a split as (video, start, end).
fn windows(set: &FeatureSet) -> Vec<(String, f64, f64)> {
    set.index
        .windows
        .iter()
        .map(|w| (set.index.videos[w.video].name.clone(), w.start, w.end))
        .collect()
}

fn check_windows(set: &FeatureSet, want: &Value) {
    let got = windows(set);
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for ((name, s, e), w) in got.iter().zip(want) {
        assert_eq!(name, w[0].as_str().unwrap());
        assert!((s - w[1][0].as_f64().unwrap()).abs() < 1e-6, "{name} {s}");
        assert!((e - w[1][1].as_f64().unwrap()).abs() < 1e-6, "{name} {e}");
    }
}

#[test]
fn training_windows_features_and_targets_are_the_references() {
    let (g, meta) = golden();
    let set = FeatureSet::from_config(&config(), TalSplit::Train, true).unwrap();
    check_windows(&set, &meta["windows"]["train"]);
    let source = TalWindows::new(set);
    let (t, d) = (16, 8);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let samples: Vec<_> = (0..source.len())
        .map(|i| source.get(i, &mut rng).unwrap())
        .collect();
    let x = Tensor::stack(&samples.iter().map(|s| &s.input).collect::<Vec<_>>(), 0);
    assert!(max_diff(&x, &g["train.features"]) < 1e-5);
    let y = Tensor::stack(&samples.iter().map(|s| &s.label).collect::<Vec<_>>(), 0);
    assert!(max_diff(&y.narrow(1, 0, t), &g["train.start_map"]) < 1e-6);
    assert!(max_diff(&y.narrow(1, t, t), &g["train.end_map"]) < 1e-6);
    let iou = y.narrow(1, 2 * t, d * t).reshape([-1, d, t]);
    assert!(max_diff(&iou, &g["train.iou_map"]) < 1e-6);
    // Negative control: a window cut with the other row rule (one row per position) differs.
    let other = tada::localization::features::assemble::assemble(
        &g["train.features"].get(0).transpose(0, 1),
        &(0..16).collect::<Vec<_>>(),
        (0.0, 4.266_666_4),
        16,
        6,
    );
    assert!(max_diff(&other, &g["train.features"].get(0)) > 1e-2);
}

#[test]
fn test_windows_and_classifier_data_are_the_references() {
    let (g, meta) = golden();
    let set = FeatureSet::from_config(&config(), TalSplit::Validation, false).unwrap();
    check_windows(&set, &meta["windows"]["val"]);
    let lens = Vec::<i64>::try_from(&g["val.in_window_len"]).unwrap();
    for (i, &len) in lens.iter().enumerate() {
        let w = set.window(i).unwrap();
        assert!(max_diff(&w.assembled.features, &g["val.features"].get(i as i64)) < 1e-5);
        let want: Vec<bool> = Vec::<u8>::try_from(g["val.in_window"].get(i as i64))
            .unwrap()
            .into_iter()
            .take(len as usize)
            .map(|m| m != 0)
            .collect();
        assert_eq!(w.assembled.in_window, want, "window {i}");
        let (verb, noun) = w.classifier.unwrap();
        assert!(max_diff(&verb, &g["val.verb_cls"].get(i as i64)) < 1e-5);
        assert!(max_diff(&noun, &g["val.noun_cls"].get(i as i64)) < 1e-5);
    }
    // Negative control: another row spacing does not fit the files, and says so in one line.
    let mut cfg = config();
    cfg.data.clip_interval = 4;
    let set = FeatureSet::from_config(&cfg, TalSplit::Validation, false).unwrap();
    let e = set.window(0).unwrap_err().to_string();
    assert!(
        e.contains("P02_01_0_5000") && e.contains("DATA.CLIP_INTERVAL 4") && !e.contains('\n'),
        "{e}"
    );
}

/// Every video's detections from the recorded maps, as `tada localize` makes them.
fn detections(
    set: &FeatureSet,
    g: &HashMap<String, Tensor>,
    ratio: f64,
) -> Vec<(String, VideoDetections)> {
    let cfg = config();
    let map = MapSpec::from_config(&cfg).unwrap();
    let valid = LabelMaps::new(16, 8).valid_mask();
    let mut post = cfg.localization.post_process.clone();
    post.prop_num_ratio = Some(ratio);
    let settings = PostSettings {
        clr_power: 1.2,
        reg_power: 1.0,
        select_score: 0.0,
        action_score_power: 1.0,
    };
    let mut out = Vec::new();
    for (v, windows) in set.index.video_windows() {
        let idx: Vec<i64> = windows.map(|i| i as i64).collect();
        let at = Tensor::from_slice(&idx);
        let inputs: Vec<_> = idx
            .iter()
            .map(|&i| set.window(i as usize).unwrap())
            .collect();
        let cls = |k: usize| {
            Tensor::stack(
                &inputs
                    .iter()
                    .map(|w| {
                        let c = w.classifier.as_ref().unwrap();
                        if k == 0 {
                            c.0.shallow_clone()
                        } else {
                            c.1.shallow_clone()
                        }
                    })
                    .collect::<Vec<_>>(),
                0,
            )
        };
        let (verb, noun) = (cls(0), cls(1));
        let sampling = tada::localization::fuse::classifier_sampling(&map);
        let maps = window_maps(
            &g["maps.confidence_map"].index_select(0, &at),
            &g["maps.start"].index_select(0, &at),
            &g["maps.end"].index_select(0, &at),
            Some((&verb, &noun, &sampling)),
            inputs
                .iter()
                .map(|w| w.assembled.in_window.clone())
                .collect(),
            &valid,
            &map,
        );
        let video = &set.index.videos[v];
        let nms = SoftNms::from_config(&post, video.duration).unwrap();
        out.push((
            video.name.clone(),
            detect(
                &fuse_windows(&maps, &valid),
                video.duration,
                &nms,
                &settings,
            ),
        ));
    }
    out
}

#[test]
fn fused_detections_and_their_map_are_the_references() {
    let (g, meta) = golden();
    let set = FeatureSet::from_config(&config(), TalSplit::Validation, false).unwrap();
    let results = detections(&set, &g, 1.0);
    let want = &meta["detections"]["results"];
    for (video, found) in &results {
        let want = want[video].as_array().unwrap();
        assert_eq!(found.detections.len(), want.len(), "{video}");
        for (d, w) in found.detections.iter().zip(want) {
            let score = w["score"].as_f64().unwrap();
            assert!(
                (d.score - score).abs() <= 1e-5 * score.abs() + 1e-9,
                "{video}: {d:?} vs {w}"
            );
            assert_eq!(d.label().as_deref(), w["label"].as_str(), "{video}");
            assert_eq!(d.verb(), Some(w["verb"].as_u64().unwrap() as usize));
            assert_eq!(d.noun(), Some(w["noun"].as_u64().unwrap() as usize));
            for k in 0..2 {
                assert!((d.segment[k] - w["segment"][k].as_f64().unwrap()).abs() < 1e-6);
            }
        }
    }
    // The detection file is laid out as the reference's (its key order, its video order:
    // shortest first), its numbers equal within float32 rounding, and it scores as it did.
    let tmp = tempfile::tempdir().unwrap();
    let files = tada::runs::localize::RunFiles::new(&config(), tmp.path(), "9");
    assert!(files.write_detections(&results).unwrap());
    let ours: Value =
        serde_json::from_str(&std::fs::read_to_string(&files.detections).unwrap()).unwrap();
    let theirs: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("detections.json")).unwrap())
            .unwrap();
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&ours), keys(&theirs));
    assert_eq!(keys(&ours["results"]), keys(&theirs["results"]));
    for (video, want) in theirs["results"].as_object().unwrap() {
        for (d, w) in ours["results"][video]
            .as_array()
            .unwrap()
            .iter()
            .zip(want.as_array().unwrap())
        {
            assert_eq!(keys(d), keys(w));
            let (a, b) = (d["score"].as_f64().unwrap(), w["score"].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-5 * b.abs(), "{video}: {d} vs {w}");
            assert_eq!(
                (&d["label"], &d["verb"], &d["noun"]),
                (&w["label"], &w["verb"], &w["noun"])
            );
        }
    }
    let m = tada::localization::eval::evaluate_detection_files(
        &dir().join("data/annotations/EPIC_100_validation.json"),
        &files.detections,
        &tada::localization::eval::LOCALIZATION_TIOUS,
    )
    .unwrap();
    for (name, got) in [("action", &m.action), ("verb", &m.verb), ("noun", &m.noun)] {
        let want: Vec<f64> = meta["map"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (a, b) in got.map.iter().zip(&want) {
            assert!((a - b).abs() < 1e-9, "{name} mAP {:?} vs {want:?}", got.map);
        }
    }
    // Negative control: keeping one proposal per two seconds changes the detections.
    let fewer = detections(&set, &g, 2.0);
    assert_ne!(
        fewer.iter().map(|(_, f)| f.detections.len()).sum::<usize>(),
        results
            .iter()
            .map(|(_, f)| f.detections.len())
            .sum::<usize>()
    );
}

/// `scripts/convert_features.py` turns the reference's `torch.save` feature files (tensors or
/// numpy arrays, which tada's importer refuses to rebuild, naming the script) into `.npy` /
/// `.npz` that read as the same windows with LOAD_TYPE numpy. Skipped without the project's
/// `.venv` (scripts/setup.sh makes it).
#[test]
fn converted_feature_files_read_the_same_windows() {
    let python = crate::common::repo().join(".venv/bin/python");
    if !python.exists() {
        eprintln!("skipped: no .venv/bin/python (scripts/setup.sh --test creates it)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = dir().join("data");
    // One features folder copied with a clip re-saved as a numpy array, as a feature zoo may hold.
    let a_in = tmp.path().join("feat_a_pkl");
    std::fs::create_dir_all(&a_in).unwrap();
    for e in std::fs::read_dir(src.join("feat_a")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, a_in.join(p.file_name().unwrap())).unwrap();
    }
    let as_numpy = a_in.join("P02_01_0_5000.pkl");
    let script = format!(
        "import torch; p={:?}; torch.save(torch.load(p).numpy(), p)",
        as_numpy.display().to_string()
    );
    let run = |args: &[&str]| {
        let o = std::process::Command::new(&python)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["-c", &script]);
    // tada's reader refuses the numpy pickle, pointing at the script.
    let mut cfg = config();
    cfg.data.data_root_dir = tada::config::schema::DataRoots(vec![
        a_in.display().to_string(),
        src.join("feat_b").display().to_string(),
    ]);
    let set = FeatureSet::from_config(&cfg, TalSplit::Validation, false).unwrap();
    let refused = (0..set.index.windows.len())
        .filter_map(|i| set.window(i).err())
        .map(|e| e.to_string())
        .next()
        .unwrap();
    assert!(refused.contains("scripts/convert_features.py"), "{refused}");
    let convert = crate::common::repo().join("scripts/convert_features.py");
    let out = |name: &str| tmp.path().join(name).display().to_string();
    let convert = convert.to_str().unwrap();
    run(&[convert, a_in.to_str().unwrap(), &out("feat_a")]);
    run(&[
        convert,
        src.join("feat_b").to_str().unwrap(),
        &out("feat_b"),
    ]);
    run(&[
        convert,
        src.join("cls").to_str().unwrap(),
        &out("cls"),
        "--classifier",
    ]);
    let mut numpy = config();
    numpy.data.load_type = tada::config::schema::LoadType::Numpy;
    numpy.data.data_root_dir = tada::config::schema::DataRoots(vec![out("feat_a"), out("feat_b")]);
    numpy.data.classifier_root_dir = out("cls");
    let torch = FeatureSet::from_config(&config(), TalSplit::Validation, false).unwrap();
    let converted = FeatureSet::from_config(&numpy, TalSplit::Validation, false).unwrap();
    for i in 0..torch.index.windows.len() {
        let (a, b) = (torch.window(i).unwrap(), converted.window(i).unwrap());
        assert!(
            a.assembled.features.equal(&b.assembled.features),
            "window {i}"
        );
        let (ca, cb) = (a.classifier.unwrap(), b.classifier.unwrap());
        assert!(ca.0.equal(&cb.0) && ca.1.equal(&cb.1), "window {i}");
    }
}
