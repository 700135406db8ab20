//! `tada export`: a checkpoint's model weights alone, under the reference's state_dict names —
//! checked against a fixture the reference itself saved (its keys are `model.state_dict()`'s),
//! and, where the test Python has torch and safetensors, loaded strictly in PyTorch.

use std::path::{Path, PathBuf};

use serde_json::json;
use tch::{Kind, Tensor};

use tada::checkpoint::{read_safetensors, Checkpoint, NamedTensors, RunState};

use crate::common::{fixtures_dir, repo, stderr, stdout, tada};

const CASE: &str = "r2d3d_mosi_joint";
const STEPS: u64 = 7;

fn is_dunder(name: &str) -> bool {
    name.starts_with("__") && name.ends_with("__")
}

/// The reference's state dict of the fixture model (its `__…__` entries are test tensors).
fn reference() -> NamedTensors {
    reference_of(CASE)
}

fn reference_of(case: &str) -> NamedTensors {
    let mut f = read_safetensors(&fixtures_dir().join(format!("{case}.safetensors"))).unwrap();
    f.tensors.retain(|(n, _)| !is_dunder(n));
    f
}

/// A run folder whose checkpoint holds the fixture's weights (without BatchNorm counters, as
/// tada keeps none) plus what a MoCo + ParamCrop run keeps beside them.
fn run_with_checkpoint(dir: &Path) -> PathBuf {
    run_with_checkpoint_of(dir, CASE, &|_| true)
}

/// [`run_with_checkpoint`] of fixture `case`, its weights filtered by `keep`.
fn run_with_checkpoint_of(dir: &Path, case: &str, keep: &dyn Fn(&str) -> bool) -> PathBuf {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join(format!("{case}.json"))).unwrap(),
    )
    .unwrap();
    let cfg = tada::config::load_str(&json["cfg"].to_string(), case, &[]).unwrap();
    let mut model: Vec<(String, Tensor)> = reference_of(case)
        .tensors
        .into_iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked") && keep(n))
        .collect();
    for extra in [
        "paramcrop.net.linear_1.weight",
        "momentum_encoder.backbone.conv1.a.weight",
        "contrastive.queue",
    ] {
        model.push((
            extra.into(),
            Tensor::zeros([4, 3], (Kind::Float, tch::Device::Cpu)),
        ));
    }
    let ckpt = Checkpoint {
        ema: Vec::new(),
        model,
        optimizer: vec![(
            "exp_avg.head.out_joint.weight".into(),
            Tensor::ones([2], (Kind::Float, tch::Device::Cpu)),
        )],
        optimizer_meta: json!({}),
        run: RunState {
            epoch: 1,
            step: STEPS,
            seed: 0,
            extra: serde_json::Value::Null,
        },
        config_yaml: cfg.to_yaml(),
    };
    let run = dir.join("run");
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    ckpt.save(&run.join("checkpoints").join(Checkpoint::file_name(1)))
        .unwrap();
    run
}

#[test]
fn export_writes_the_reference_state_dict_and_nothing_else() {
    let d = tempfile::tempdir().unwrap();
    let run = run_with_checkpoint(d.path());
    let out = d.path().join("model.safetensors");
    let o = tada(&["export", run.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(
        said.contains(
            "left out: contrastive (1), momentum_encoder (1), optimizer (1), paramcrop (1)"
        ),
        "{said}"
    );

    let written = read_safetensors(&out).unwrap();
    let reference = reference();
    let names = |f: &NamedTensors| {
        let mut v: Vec<String> = f.tensors.iter().map(|(n, _)| n.clone()).collect();
        v.sort();
        v
    };
    assert!(names(&written).iter().all(|n| !n.starts_with("__")));
    assert_eq!(
        names(&written),
        names(&reference),
        "the reference's state_dict keys"
    );
    for (name, r) in &reference.tensors {
        let w = written.get(name).unwrap();
        assert_eq!((w.size(), w.kind()), (r.size(), r.kind()), "{name}");
        if name.ends_with("num_batches_tracked") {
            assert_eq!(w.int64_value(&[]), STEPS as i64, "{name}: the run's steps");
        } else {
            assert!(w.equal(r), "{name} differs from the checkpoint");
        }
    }
    python_loads_it(d.path(), &out, &reference);
}

/// S3D-G: the reference's state_dict holds every unit twice (`Conv_1a.…` and `block1.0.…`).
/// tada's checkpoint has the named spelling only; the export writes both, equal, and its
/// `block1.0.…` tensors are those the reference wrote under that name.
#[test]
fn export_of_s3dg_writes_both_spellings_of_every_unit() {
    let d = tempfile::tempdir().unwrap();
    let run = run_with_checkpoint_of(d.path(), "s3dg_reduced", &|n| !n.contains(".block"));
    let out = d.path().join("s3dg.safetensors");
    let o = tada(&["export", run.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = read_safetensors(&out).unwrap();
    let reference = reference_of("s3dg_reduced");
    let mut aliases = 0;
    for (name, w) in &written.tensors {
        let Some(canonical) = tada::models::backbones::s3dg::canonical_key(name) else {
            continue;
        };
        aliases += 1;
        let c = written
            .get(&canonical)
            .unwrap_or_else(|| panic!("{canonical}"));
        assert!(w.equal(c), "{name} differs from {canonical}");
        // The counters hold the run's steps, not the fixture's.
        if let Some(r) = reference
            .get(name)
            .filter(|_| !name.ends_with("num_batches_tracked"))
        {
            assert!(w.equal(r), "{name} differs from the reference's");
        }
    }
    let named = written
        .tensors
        .iter()
        .filter(|(n, _)| tada::models::backbones::s3dg::alias_key(n).is_some())
        .count();
    assert_eq!(aliases, named, "one block spelling per named tensor");
    for (name, _) in &reference.tensors {
        assert!(written.get(name).is_some(), "{name} not written");
    }
}

#[test]
fn export_refuses_to_overwrite_without_force_and_names_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let run = run_with_checkpoint(d.path());
    let out = d.path().join("model.safetensors");
    std::fs::write(&out, "keep me").unwrap();
    let path = out.to_str().unwrap();
    let o = tada(&["export", run.to_str().unwrap(), "-o", path]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains(path) && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    let o = tada(&["export", run.to_str().unwrap(), "-o", path, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read_safetensors(&out).is_ok());

    // A weights file without a run's config cannot say which tensors are the model's.
    let plain = fixtures_dir().join(format!("{CASE}.safetensors"));
    let o = tada(&["export", plain.to_str().unwrap(), "-o", path, "--force"]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains(plain.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A Python with torch and safetensors: the project venv (scripts/setup.sh --test installs
/// safetensors there), with the caller's PYTHONPATH.
fn python() -> Option<PathBuf> {
    let candidate = repo().join(".venv/bin/python");
    let ok = std::process::Command::new(&candidate)
        .args(["-c", "import torch, safetensors.torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(candidate)
}

/// Loads `out` strictly into a torch module holding exactly the reference's names, shapes and
/// dtypes (tests/python/export_readback.py). Skipped without such a Python, except under CI.
fn python_loads_it(dir: &Path, out: &Path, reference: &NamedTensors) {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Python torch and safetensors (scripts/setup.sh --test)"
        );
        println!("skipping the PyTorch load of the export: no Python with torch and safetensors");
        return;
    };
    let expected: serde_json::Map<String, serde_json::Value> = reference
        .tensors
        .iter()
        .map(|(n, t)| {
            let dtype = match t.kind() {
                Kind::Int64 => "int64",
                Kind::Float => "float32",
                k => panic!("{n}: unexpected {k:?}"),
            };
            (n.clone(), json!({"shape": t.size(), "dtype": dtype}))
        })
        .collect();
    let expected_path = dir.join("expected.json");
    std::fs::write(&expected_path, serde_json::to_string(&expected).unwrap()).unwrap();
    let script = repo().join("tests/python/export_readback.py");
    let o = std::process::Command::new(python)
        .arg(&script)
        .arg(out)
        .arg(&expected_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", script.display(), stderr(&o));
    let said = stdout(&o);
    assert!(
        said.contains(&format!("\"tensors\": {}", reference.tensors.len()))
            && said.contains("\"strict_load\": \"ok\""),
        "{said}"
    );
}
