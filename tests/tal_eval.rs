//! Parity of the localisation evaluation with the reference (tests/fixtures/tal_eval, made by
//! scripts/fixtures/tal_eval.py): the reference's `Epicdetection` on a ground-truth and a
//! detection JSON (action / verb / noun AP per class and mAP), the detection file's layout,
//! ActivityNet's AR-AN curve and AUC on a proposal JSON, and numpy's argsort on ties. Each
//! comparison has a negative control that must fail it; malformed files fail in one line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use tada::localization::eval::{
    argsort, average_recall_vs_avg_nr_proposals, detections_json, evaluate_detection_files,
    evaluate_epic_detection, read_detections, read_proposals, write_detections, ActionDetection,
    ActionKey, ClassOf, EpicDetectionMaps, EpicGroundTruth, EvalFileError, LocalizationMetrics,
    MeanAp, ProposalSummary, RecallCurve, LOCALIZATION_TIOUS,
};

use crate::common::fixtures_dir;

const TOL: f64 = 1e-9;

fn dir() -> PathBuf {
    fixtures_dir().join("tal_eval")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// Largest |a - b| over two equally shaped rows.
fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn max_diff2(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| max_diff(x, y))
        .fold(0.0, f64::max)
}

fn gt() -> EpicGroundTruth {
    EpicGroundTruth::read(&dir().join("ground_truth.json"), "validation").unwrap()
}

/// Largest difference of one kind's AP matrix and mAP from the reference's.
fn map_diff(ours: &MeanAp, want: &Value, kind: &str) -> f64 {
    // The reference's ap is [threshold][class], as ours.
    let ap = max_diff2(&ours.ap, &matrix(&want[format!("ap_{kind}")]));
    let map = max_diff(&ours.map, &floats(&want[format!("map_{kind}")]));
    let avg = (ours.average() - want[format!("average_map_{kind}")].as_f64().unwrap()).abs();
    ap.max(map).max(avg)
}

fn all_diff(ours: &EpicDetectionMaps, want: &Value) -> f64 {
    map_diff(&ours.action, want, "action")
        .max(map_diff(&ours.verb, want, "verb"))
        .max(map_diff(&ours.noun, want, "noun"))
}

#[test]
fn argsort_is_numpys_on_ties() {
    for case in expected()["argsort"].as_array().unwrap() {
        let v = floats(&case["values"]);
        let want: Vec<usize> = case["indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(argsort(&v), want, "{} values", v.len());
    }
    // Negative control: a stable sort is not numpy's order once ties span > 16 elements.
    let case = &expected()["argsort"][3];
    let v = floats(&case["values"]);
    let mut stable: Vec<usize> = (0..v.len()).collect();
    stable.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let want: Vec<u64> = case["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_ne!(stable.iter().map(|&i| i as u64).collect::<Vec<_>>(), want);
}

#[test]
fn epic_detection_is_the_references() {
    let exp = expected();
    let gt = gt();
    for (case, want) in exp["detection"].as_object().unwrap() {
        let tious = floats(&want["tiou_thresholds"]);
        let ours = evaluate_detection_files(
            &dir().join("ground_truth.json"),
            &dir().join("predictions.json"),
            &tious,
        )
        .unwrap();
        let names = |k: &str| -> Vec<String> {
            want[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.to_string().trim_matches('"').to_string())
                .collect()
        };
        assert_eq!(gt.actions, names("actions"), "{case}: action order");
        let ids = |xs: &[usize]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&gt.verbs), names("verbs"), "{case}: verb order");
        assert_eq!(ids(&gt.nouns), names("nouns"), "{case}: noun order");
        assert_eq!(
            ours.action.classes,
            (0..gt.actions.len()).collect::<Vec<_>>()
        );
        assert_eq!(ours.verb.classes, gt.verbs);
        assert_eq!(ours.noun.classes, gt.nouns);
        let dets = read_detections(&dir().join("predictions.json"), &gt).unwrap();
        assert_eq!(
            dets.len() as u64,
            want["predictions_kept"].as_u64().unwrap(),
            "{case}"
        );
        let d = all_diff(&ours, want);
        eprintln!("{case}: max |AP - reference| {d:e}");
        assert!(d <= TOL, "{case}: max |AP - reference| {d:e}");
        assert!(ours.action.map[0] > 0.1, "{case}: a degenerate fixture");
    }
    assert_eq!(
        floats(&exp["detection"]["loc"]["tiou_thresholds"]),
        LOCALIZATION_TIOUS.to_vec()
    );
}

#[test]
fn epic_detection_controls_fail() {
    let exp = expected();
    let want = &exp["detection"]["default"];
    let tious = floats(&want["tiou_thresholds"]);
    let gt = gt();
    let dets = read_detections(&dir().join("predictions.json"), &gt).unwrap();
    let d = all_diff(&evaluate_epic_detection(&gt, &dets, &tious), want);
    assert!(d <= TOL, "baseline {d:e}");

    // Verb and noun swapped: the verb and noun mAPs move, the action mAP does not.
    let swapped: Vec<_> = dets
        .iter()
        .map(|d| {
            let mut d = d.clone();
            std::mem::swap(&mut d.verb, &mut d.noun);
            d
        })
        .collect();
    let ours = evaluate_epic_detection(&gt, &swapped, &tious);
    assert!(map_diff(&ours.action, want, "action") <= TOL);
    assert!(
        map_diff(&ours.verb, want, "verb") > 1e-3,
        "swapped verb/noun went unnoticed"
    );
    assert!(
        map_diff(&ours.noun, want, "noun") > 1e-3,
        "swapped verb/noun went unnoticed"
    );

    // Every segment shifted by a second.
    let shifted: Vec<_> = dets
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.start += 1.0;
            d.end += 1.0;
            d
        })
        .collect();
    let d = map_diff(
        &evaluate_epic_detection(&gt, &shifted, &tious).action,
        want,
        "action",
    );
    assert!(d > 1e-3, "shifted segments went unnoticed ({d:e})");

    // The same detections in reverse file order: only the order of equal scores changes, and
    // that changes which detection is matched first.
    let reversed: Vec<_> = dets.iter().rev().cloned().collect();
    let d = all_diff(&evaluate_epic_detection(&gt, &reversed, &tious), want);
    assert!(d > 1e-3, "the tie order went unnoticed ({d:e})");
}

/// The fixture's prediction file as the runner would hand it over, every entry kept.
fn results_of(file: &Path) -> BTreeMap<String, Vec<ActionDetection>> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    v["results"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(video, dets)| {
            let dets = dets
                .as_array()
                .unwrap()
                .iter()
                .map(|d| ActionDetection {
                    score: d["score"].as_f64().unwrap(),
                    verb: d["verb"].as_u64().unwrap() as usize,
                    noun: d["noun"].as_u64().unwrap() as usize,
                    segment: [
                        d["segment"][0].as_f64().unwrap(),
                        d["segment"][1].as_f64().unwrap(),
                    ],
                })
                .collect();
            (video.clone(), dets)
        })
        .collect()
}

#[test]
fn detection_file_is_written_byte_for_byte_as_the_reference() {
    let file = dir().join("predictions.json");
    let want = std::fs::read_to_string(&file).unwrap();
    let results = results_of(&file);
    assert_eq!(detections_json(&results, ActionKey::Label).unwrap(), want);
    // The file holds tiny scores, so Python's exponent spelling is exercised.
    assert!(want.contains("e-05"), "the fixture lost its tiny scores");

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("detections.json");
    write_detections(&out, &results, ActionKey::Label).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    let maps =
        evaluate_detection_files(&dir().join("ground_truth.json"), &out, &LOCALIZATION_TIOUS)
            .unwrap();
    assert!(all_diff(&maps, &expected()["detection"]["loc"]) <= TOL);

    // Negative control: the test-set key is "action", which the evaluation refuses by name.
    assert_eq!(ActionKey::for_test_set("validation"), ActionKey::Label);
    assert_eq!(ActionKey::for_test_set("test"), ActionKey::Action);
    write_detections(&out, &results, ActionKey::Action).unwrap();
    assert_ne!(std::fs::read_to_string(&out).unwrap(), want);
    let err = read_detections(&out, &gt()).unwrap_err().to_string();
    assert!(
        err.contains("detections.json") && err.contains(".label: is missing"),
        "{err}"
    );
    assert!(detections_json(&BTreeMap::new(), ActionKey::Label)
        .unwrap()
        .ends_with("\"results\": {}\n}"));
}

fn curve(case: &Value, shift: f64) -> RecallCurve {
    let gt = gt().rows(ClassOf::Action);
    let mut props = read_proposals(&dir().join("proposals.json")).unwrap();
    for p in &mut props {
        p.start += shift;
        p.end += shift;
    }
    let max_an = case["max_avg_nr_proposals"].as_f64();
    average_recall_vs_avg_nr_proposals(&gt, &props, max_an, &floats(&case["tiou_thresholds"]))
        .unwrap()
}

fn curve_diff(ours: &RecallCurve, want: &Value) -> f64 {
    let mut d = max_diff(&ours.avg_recall, &floats(&want["avg_recall"]))
        .max(max_diff(
            &ours.proposals_per_video,
            &floats(&want["proposals_per_video"]),
        ))
        .max((ours.area - want["area"].as_f64().unwrap()).abs())
        .max((ours.auc - want["auc"].as_f64().unwrap()).abs());
    if !want["recall"].is_null() {
        d = d.max(max_diff2(&ours.recall, &matrix(&want["recall"])));
    }
    d
}

#[test]
fn proposal_ar_an_is_activitynets() {
    let exp = expected();
    let cases = exp["proposals"]
        .as_object()
        .expect("fixture made without --activitynet");
    assert_eq!(cases.len(), 3);
    for (name, want) in cases {
        let ours = curve(want, 0.0);
        let d = curve_diff(&ours, want);
        eprintln!("{name}: max |AR-AN - ActivityNet| {d:e}");
        assert!(d <= TOL, "{name}: max |diff| {d:e}");
        // Negative control: proposals one and a half seconds late.
        let d = curve_diff(&curve(want, 1.5), want);
        assert!(d > 1e-3, "{name}: shifted proposals went unnoticed ({d:e})");
    }
    let ours = curve(&cases["an100_hi"], 0.0);
    let ar = |an: f64| ours.ar_at(an).unwrap();
    assert!(ar(1.0) < ar(10.0) && ar(10.0) <= ar(100.0));
    assert_eq!(ours.ar_at(100.0), ours.avg_recall.last().copied());
    assert!(ours.ar_at(0.5).is_none());
}

#[test]
fn metrics_record_round_trips() {
    let maps = evaluate_detection_files(
        &dir().join("ground_truth.json"),
        &dir().join("predictions.json"),
        &LOCALIZATION_TIOUS,
    )
    .unwrap();
    let c = curve(&expected()["proposals"]["an100_hi"], 0.0);
    let summary = ProposalSummary::from_curve(&c, &[1.0, 5.0, 10.0, 100.0, 1000.0]);
    assert_eq!(summary.ar_at.len(), 4, "AN 1000 is not on a max-100 curve");
    let m = LocalizationMetrics::new(&maps, vec![summary]);
    assert_eq!(m.action.map, maps.action.map);
    assert_eq!(m.verb.average, maps.verb.average());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("metrics.json");
    m.write(&out).unwrap();
    let back: LocalizationMetrics =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(back, m);
}

/// Writes `text` to a file named `name` in a fresh folder and returns both.
fn scratch(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(name);
    std::fs::write(&path, text).unwrap();
    (tmp, path)
}

fn gt_error(text: &str) -> String {
    let (_tmp, path) = scratch("gt_bad.json", text);
    let err = EpicGroundTruth::read(&path, "validation").unwrap_err();
    assert!(
        matches!(
            err,
            EvalFileError::Field { .. } | EvalFileError::Json { .. }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("gt_bad.json") && !msg.contains('\n'), "{msg}");
    msg
}

#[test]
fn malformed_files_fail_in_one_line_naming_file_and_field() {
    let ok = r#"{"version": 1, "taxonomy": {}, "database": {"v1": {"subset": "validation",
        "annotations": [{"label": "1,2", "segment": [1.0, 2.5]}]}}}"#;
    // Control: the well-formed file reads.
    let (_tmp, path) = scratch("gt.json", ok);
    assert_eq!(
        EpicGroundTruth::read(&path, "validation")
            .unwrap()
            .segments
            .len(),
        1
    );

    let msg = gt_error(r#"{"version": 1, "taxonomy": {}}"#);
    assert!(msg.ends_with("database: is missing"), "{msg}");
    let msg = gt_error(&ok.replace("[1.0, 2.5]", "[1.0]"));
    assert!(
        msg.contains("database.v1.annotations[0].segment: must be two numbers"),
        "{msg}"
    );
    let msg = gt_error(&ok.replace("[1.0, 2.5]", r#"[1.0, "x"]"#));
    assert!(msg.contains("database.v1.annotations[0].segment"), "{msg}");
    let msg = gt_error(&ok.replace("\"1,2\"", "\"12\""));
    assert!(
        msg.contains("database.v1.annotations[0].label: must be \"verb,noun\""),
        "{msg}"
    );
    let msg = gt_error(&ok.replace("\"subset\": \"validation\",", ""));
    assert!(msg.contains("database.v1.subset: is missing"), "{msg}");
    let msg = gt_error("{\"version\": ");
    assert!(msg.contains("not valid JSON"), "{msg}");
    // A video of another subset is not read at all, as in the reference.
    let (_tmp, path) = scratch(
        "gt.json",
        &ok.replace("[1.0, 2.5]", "[1.0]")
            .replace("validation", "training"),
    );
    assert!(EpicGroundTruth::read(&path, "validation")
        .unwrap()
        .segments
        .is_empty());

    let (_tmp, gt_path) = scratch("gt.json", ok);
    let gt = EpicGroundTruth::read(&gt_path, "validation").unwrap();
    let pred_error = |text: &str| {
        let (_tmp, path) = scratch("pred_bad.json", text);
        let msg = read_detections(&path, &gt).unwrap_err().to_string();
        assert!(
            msg.contains("pred_bad.json") && !msg.contains('\n'),
            "{msg}"
        );
        msg
    };
    let det = r#"{"results": {"v1": [{"score": 0.5, "label": "1,2", "verb": 1, "noun": 2, "segment": [1.0, 2.0]}]}}"#;
    let (_tmp, path) = scratch("pred.json", det);
    assert_eq!(read_detections(&path, &gt).unwrap().len(), 1);
    assert!(pred_error(r#"{"version": "0.2"}"#).ends_with("results: is missing"));
    let msg = pred_error(&det.replace("[1.0, 2.0]", "[1.0, 2.0, 3.0]"));
    assert!(
        msg.contains("results.v1[0].segment: must be two numbers"),
        "{msg}"
    );
    let msg = pred_error(&det.replace("\"score\": 0.5", "\"score\": \"high\""));
    assert!(
        msg.contains("results.v1[0].score: must be a number"),
        "{msg}"
    );
    let msg = pred_error(&det.replace("\"verb\": 1", "\"verb\": -1"));
    assert!(msg.contains("results.v1[0].verb"), "{msg}");
    // An unknown action is dropped before its other fields are read, as in the reference.
    let (_tmp, path) = scratch(
        "pred.json",
        &det.replace("\"1,2\"", "\"9,9\"")
            .replace("[1.0, 2.0]", "[]"),
    );
    assert!(read_detections(&path, &gt).unwrap().is_empty());

    let (_tmp, path) = scratch(
        "props_bad.json",
        r#"{"results": {"v1": [{"score": 1, "segment": 3}]}}"#,
    );
    let msg = read_proposals(&path).unwrap_err().to_string();
    assert!(
        msg.contains("props_bad.json: results.v1[0].segment: must be two numbers"),
        "{msg}"
    );
    // No proposals at all: AR@AN is undefined, and says so.
    let err =
        average_recall_vs_avg_nr_proposals(&gt.rows(ClassOf::Action), &[], Some(100.0), &[0.5]);
    assert!(matches!(err, Err(EvalFileError::Undefined(_))));
}

/// A seeded xorshift stream in [0, 1), for the timing set below.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize
    }
}

/// Writes an EPIC-100-validation-sized ground truth (138 videos, 70 segments each, 97 verbs,
/// 300 nouns) and a detection file (140 proposals × 5 actions per video) to `dir`.
fn write_epic_scale(dir: &Path) -> (PathBuf, PathBuf) {
    let mut r = Stream(0x7a1e_5eed);
    let mut db = serde_json::Map::new();
    let mut results = BTreeMap::new();
    for v in 0..138 {
        let video = format!("P{:02}_{:03}", v % 37, v);
        let mut anns = Vec::new();
        let mut segs = Vec::new();
        for _ in 0..70 {
            let s = r.next() * 600.0;
            let e = s + 1.0 + r.next() * 20.0;
            let (verb, noun) = (r.below(97), r.below(300));
            anns.push(serde_json::json!({"label": format!("{verb},{noun}"), "segment": [s, e]}));
            segs.push((s, e, verb, noun));
        }
        db.insert(
            video.clone(),
            serde_json::json!({"subset": "validation", "annotations": anns}),
        );
        let mut dets = Vec::new();
        for _ in 0..140 {
            let (s, e, verb, noun) = segs[r.below(segs.len())];
            let j = (e - s) * 0.3;
            let (s, e) = (s + (r.next() - 0.5) * j, e + (r.next() - 0.5) * j);
            let p = r.next();
            for k in 0..5 {
                let (verb, noun) = if k == 0 {
                    (verb, noun)
                } else {
                    (r.below(97), r.below(300))
                };
                let score = p * (1.0 - 0.15 * k as f64);
                dets.push(ActionDetection {
                    score,
                    verb,
                    noun,
                    segment: [s.max(0.0), e],
                });
            }
        }
        results.insert(video, dets);
    }
    let gt = serde_json::json!({"version": "x", "taxonomy": {}, "database": db});
    let gt_path = dir.join("epic_scale_gt.json");
    std::fs::write(&gt_path, serde_json::to_string(&gt).unwrap()).unwrap();
    let det_path = dir.join("epic_scale_detections.json");
    write_detections(&det_path, &results, ActionKey::Label).unwrap();
    (gt_path, det_path)
}

/// Timing of one evaluation at EPIC-Kitchens-100 validation size (docs/benchmarks.md):
/// `cargo test --release --test integration tal_eval::epic_scale -- --ignored --nocapture`;
/// with TAL_EVAL_KEEP=DIR the files are left in DIR for the reference's timing.
#[test]
#[ignore]
fn epic_scale_evaluation_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("TAL_EVAL_KEEP").map_or(tmp.path().to_path_buf(), PathBuf::from);
    let (gt_path, det_path) = write_epic_scale(&dir);
    let t0 = std::time::Instant::now();
    let maps = evaluate_detection_files(&gt_path, &det_path, &LOCALIZATION_TIOUS).unwrap();
    let read_eval = t0.elapsed();
    let gt = EpicGroundTruth::read(&gt_path, "validation").unwrap();
    let dets = read_detections(&det_path, &gt).unwrap();
    let t1 = std::time::Instant::now();
    let again = evaluate_epic_detection(&gt, &dets, &LOCALIZATION_TIOUS);
    let eval_only = t1.elapsed();
    assert_eq!(again, maps);
    let props: Vec<_> = dets
        .iter()
        .step_by(5)
        .map(|d| tada::localization::eval::Proposal {
            video: d.video.clone(),
            start: d.start,
            end: d.end,
            score: d.score,
        })
        .collect();
    let t2 = std::time::Instant::now();
    let c = average_recall_vs_avg_nr_proposals(
        &gt.rows(ClassOf::Action),
        &props,
        Some(100.0),
        &[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
    )
    .unwrap();
    let ar_an = t2.elapsed();
    eprintln!(
        "{} segments, {} actions; {} detections kept; read + evaluate {:.3} s, evaluate {:.3} s; \
         action mAP@0.1..0.5 {:?} (avg {}), verb avg {}, noun avg {}; \
         AR-AN of {} proposals {:.3} s, AR@100 {:.4}, AUC {:.2}",
        gt.segments.len(),
        gt.actions.len(),
        dets.len(),
        read_eval.as_secs_f64(),
        eval_only.as_secs_f64(),
        maps.action.map,
        maps.action.average(),
        maps.verb.average(),
        maps.noun.average(),
        props.len(),
        ar_an.as_secs_f64(),
        c.ar_at(100.0).unwrap(),
        c.auc
    );
}
