//! RandAugment against the reference (tests/fixtures/rand_augment, made by
//! scripts/fixtures/rand_augment.py): every case's recorded draw is rebuilt as a
//! [`RandAugmentDraw`] and applied to the same input; the output levels must equal the
//! reference's (PIL's) to the bit, and the level arguments computed from the recorded magnitude
//! and sign must equal those the reference's level functions returned. Policy cases also check
//! what `parse` builds from the spec against what `creat_auto_augmentation` built.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use tada_augment::transforms::rand_augment::{
    LayerDraw, LevelArg, MagnitudeNoise, OpKind, RandAugment, RandAugmentDraw, Resample,
};
use tch::{Kind, Tensor};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rand_augment")
}

/// Floats are stored as Python `repr` strings: parsing them back is exact.
fn float(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a float string: {v}"))
}

fn mean(case: &Value) -> [f64; 3] {
    let m: Vec<f64> = case["mean"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    [m[0], m[1], m[2]]
}

fn fill(v: &Value) -> [u8; 3] {
    let f: Vec<u8> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    [f[0], f[1], f[2]]
}

/// A recorded layer as a draw; checks the level argument against the reference's.
fn layer(rec: &Value, case: &str) -> LayerDraw {
    let op = OpKind::from_name(rec["op"].as_str().unwrap()).unwrap();
    let l = LayerDraw {
        op,
        fired: rec["fired"].as_bool().unwrap(),
        magnitude: rec.get("magnitude").map_or(0.0, float),
        negate: rec.get("negate").and_then(Value::as_bool).unwrap_or(false),
        resample: match rec.get("resample").and_then(Value::as_str) {
            Some("bilinear") => Resample::Bilinear,
            _ => Resample::Bicubic,
        },
    };
    if let Some(args) = rec.get("args").and_then(Value::as_array) {
        let want = args.first().map(|a| a.as_str().unwrap());
        match (l.level_arg(), want) {
            (LevelArg::Float(f), Some(w)) => {
                let w: f64 = w.parse().unwrap();
                assert!(
                    f.to_bits() == w.to_bits(),
                    "{case}: {op:?} arg {f:?} != {w:?}"
                );
            }
            (LevelArg::Int(i), Some(w)) => assert_eq!(i, w.parse::<i64>().unwrap(), "{case}"),
            (got, want) => panic!("{case}: {op:?} arg {got:?} vs {want:?}"),
        }
    }
    l
}

/// What `parse` built against what the reference built.
fn check_settings(ra: &RandAugment, s: &Value, case: &str) {
    let ops: Vec<&str> = ra.ops.iter().map(|o| o.name()).collect();
    let want: Vec<&str> = s["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ops, want, "{case}");
    assert_eq!(
        ra.num_layers as u64,
        s["num_layers"].as_u64().unwrap(),
        "{case}"
    );
    assert_eq!(ra.magnitude, s["magnitude"].as_f64().unwrap(), "{case}");
    let std = float(&s["magnitude_std"]);
    let noise = match std {
        s if s == f64::INFINITY => MagnitudeNoise::Uniform,
        s if s > 0.0 => MagnitudeNoise::Gauss(s),
        _ => MagnitudeNoise::Fixed,
    };
    assert_eq!(ra.noise, noise, "{case}");
    let mmax = s["magnitude_max"].as_f64().filter(|&m| m != 0.0);
    assert_eq!(ra.magnitude_max, mmax.unwrap_or(10.0), "{case}");
    assert_eq!(ra.fill, fill(&s["fill"]), "{case}");
    let weights = s["weights"]
        .as_array()
        .map(|w| w.iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>());
    match (&ra.weights, weights) {
        (None, None) => {}
        (Some(got), Some(want)) => {
            // The reference normalises its weights; they sum to 1 already.
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{case}: {got:?} vs {want:?}");
            }
        }
        (got, want) => panic!("{case}: weights {got:?} vs {want:?}"),
    }
}

#[derive(Default)]
struct Tally {
    cases: usize,
    max_diff: i32,
    differing: usize,
    values: usize,
}

#[test]
fn rand_augment_matches_reference() {
    let dir = fixtures();
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join("rand_augment.json")).unwrap()).unwrap();
    let tensors: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("rand_augment.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    // Per op (forced cases) or per spec (policy cases).
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut raised = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let input = &tensors[&format!("input/{}", case["input"].as_str().unwrap())];
        let img_size = case["img_size"].as_i64().unwrap();
        let (ra, key) = if case["kind"] == "policy" {
            let spec = case["spec"].as_str().unwrap();
            let ra = RandAugment::parse(spec, img_size, mean(case)).unwrap();
            check_settings(&ra, &case["settings"], name);
            (ra, spec.to_string())
        } else {
            let ra = RandAugment::parse("rand", img_size, mean(case)).unwrap();
            assert_eq!(ra.fill, fill(&case["fill"]), "{name}");
            (ra, case["op"].as_str().unwrap().to_string())
        };
        let draw = RandAugmentDraw {
            layers: case["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| layer(l, name))
                .collect(),
        };
        if case.get("raises").is_some() {
            // Pillow 13 refuses posterize to 0 bits; apply gives black there (unit-tested).
            let last = draw.layers.last().unwrap();
            assert!(
                matches!(last.level_arg(), LevelArg::Int(b) if b <= 0),
                "{name}: raised without posterize to 0 bits"
            );
            raised += 1;
            continue;
        }
        let got = ra.apply(input, &draw).unwrap();
        let want = &tensors[&format!("output/{name}")];
        assert_eq!(got.size(), want.size(), "{name}");
        let got = Vec::<f32>::try_from(&got.view([-1])).unwrap();
        let want = Vec::<u8>::try_from(&want.to_kind(Kind::Uint8).view([-1])).unwrap();
        let t = tally.entry(key).or_default();
        t.cases += 1;
        t.values += want.len();
        for (&g, &w) in got.iter().zip(&want) {
            // The reference's float output is levels / 255 in float32.
            let wf = f32::from(w) / 255.0;
            if g.to_bits() != wf.to_bits() {
                t.differing += 1;
                t.max_diff = t
                    .max_diff
                    .max(((g * 255.0).round() as i32 - i32::from(w)).abs());
            }
        }
    }
    let mut report = String::new();
    for (key, t) in &tally {
        report += &format!(
            "{key}: {} cases, max |diff| {} levels, {}/{} values differ\n",
            t.cases, t.max_diff, t.differing, t.values
        );
    }
    eprint!("{report}");
    assert_eq!(raised, 4, "cases where the reference raised");
    assert!(tally.len() >= 26, "every op and spec covered:\n{report}");
    // Bit-exact for every op: no tolerance.
    assert!(
        tally.values().all(|t| t.differing == 0),
        "outputs differ:\n{report}"
    );
}
