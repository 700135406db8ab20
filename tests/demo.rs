//! The README's main job: `tada demo` runs its three stages on embedded data and the MoSI
//! backbone's probe beats the random one's by a clear margin (docs/benchmarks.md: 54-59 points).

use crate::common::{stdout, tada};

#[test]
fn demo_mosi_probe_beats_random_init() {
    // Two demo processes at once oversubscribe the cores (libtorch's threads spin-wait on
    // each other) and each takes many times as long: one at a time.
    let _serial = crate::common::serial();
    let d = tempfile::tempdir().unwrap();
    let out = tada(&["demo", "--output", d.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let line = text
        .lines()
        .find(|l| l.starts_with("probe accuracy: random init "))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let pct = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest[..rest.find('%').unwrap()].trim().parse().unwrap()
    };
    let (random, mosi) = (pct("random init "), pct("MoSI "));
    assert!(mosi > random + 20.0, "{line}");
    for dir in ["mosi", "probe_random", "probe_mosi"] {
        assert!(d.path().join(dir).join("metrics.jsonl").is_file(), "{dir}");
    }
    // The demo's configs keep the reference's NUM_GPUS: 8; without CUDA that is said once.
    let cpu = crate::common::stderr(&out)
        .matches("but CUDA is not available: running on the CPU")
        .count();
    assert_eq!(cpu, usize::from(!tch::Cuda::is_available()));
}

/// `--pretext contrastive`: SimCLR + ParamCrop pretraining, both probes, the summary line, and
/// ParamCrop's views pushed apart by the adversary (they start almost coinciding, IoU ~0.9).
#[test]
fn demo_contrastive_variant_runs_and_paramcrop_separates_the_views() {
    let _serial = crate::common::serial();
    let d = tempfile::tempdir().unwrap();
    let out = tada(&[
        "demo",
        "--pretext",
        "contrastive",
        "--output",
        d.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert!(
        text.lines()
            .any(|l| l.starts_with("probe accuracy: random init ")
                && l.contains("| SimCLR+ParamCrop ")),
        "no summary line in:\n{text}"
    );
    for dir in ["contrastive", "probe_random", "probe_contrastive"] {
        assert!(d.path().join(dir).join("metrics.jsonl").is_file(), "{dir}");
    }
    let records =
        tada::train::metrics::read_metrics(&d.path().join("contrastive/metrics.jsonl")).unwrap();
    let iou = |r: &serde_json::Map<String, serde_json::Value>| r["iou"].as_f64().unwrap();
    let (first, last) = (iou(&records[0]), iou(records.last().unwrap()));
    assert!(
        first > 0.8 && last < first - 0.3,
        "view IoU {first:.2} -> {last:.2}"
    );
}

/// `tada demo --task localization`: BMN trained on tiny-tal proposes the validation set's
/// segments far better than uniformly random proposals (AR@100, tIoU 0.5:0.95), within a
/// CPU-minute, and writes its metrics.
#[test]
fn demo_localization_beats_uniform_proposals() {
    let _serial = crate::common::serial();
    let d = tempfile::tempdir().unwrap();
    let out = tada(&[
        "demo",
        "--task",
        "localization",
        "--output",
        d.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let line = text
        .lines()
        .find(|l| l.starts_with("AR@100 (tIoU 0.5:0.95): uniform "))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let pct = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest[..rest.find('%').unwrap()].trim().parse().unwrap()
    };
    let (uniform, bmn) = (pct("uniform "), pct("BMN "));
    assert!(bmn > uniform + 20.0, "{line}");
    assert!(
        d.path().join("bmn/metrics_ep30_val.json").is_file(),
        "{text}"
    );
}
