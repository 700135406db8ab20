//! `tada import`: the reference checkpoint comes through bit-exact (library and CLI), small state
//! dicts of every layout import with the right names and values, and truncated, corrupted or
//! hostile files fail with one clear line: never a panic, never anything executed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tada::checkpoint::import::ImportedFrom;
use tada::checkpoint::{
    import_checkpoint, read_safetensors, CheckpointError, ImportOptions, ImportedCheckpoint,
};
use tch::{Device, Kind, Tensor};
use tempfile::TempDir;

use crate::common;
use crate::import_hostile::torch_zip;

pub(crate) fn reference_pyth() -> PathBuf {
    common::fixtures_dir().join("r2p1d_mosi_joint.pyth")
}

pub(crate) fn data(name: &str) -> PathBuf {
    common::repo().join("tests/data/import").join(name)
}

pub(crate) fn import(path: &Path) -> Result<ImportedCheckpoint, CheckpointError> {
    import_checkpoint(path, ImportOptions::default())
}

/// The import must fail with one line naming the file; returns the message.
pub(crate) fn import_err(path: &Path) -> String {
    match import(path) {
        Ok(ck) => panic!(
            "{} imported ({} tensors) but should not",
            path.display(),
            ck.tensors.len()
        ),
        Err(e) => {
            let m = e.to_string();
            assert!(!m.contains('\n'), "not one line: {m}");
            assert!(m.contains(&path.display().to_string()), "no file name: {m}");
            m
        }
    }
}

pub(crate) fn raw(t: &Tensor) -> Vec<u8> {
    let t = t.contiguous();
    let n = t.numel();
    let mut b = vec![0u8; n * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut b, n);
    b
}

pub(crate) fn assert_same(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.kind(), want.kind(), "{name}: dtype");
    assert_eq!(got.size(), want.size(), "{name}: shape");
    assert!(raw(got) == raw(want), "{name}: values differ");
}

fn fixture_cfg() -> serde_json::Value {
    let text = std::fs::read_to_string(common::fixtures_dir().join("r2p1d_mosi_joint.json"))
        .expect("fixture json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["cfg"].clone()
}

/// The reference tensors: `r2p1d_mosi_joint.safetensors` minus its `__…__` entries, which the
/// fixture docs (docs/fixtures.md) say are exactly the checkpoint's `model_state`.
fn reference_tensors() -> Vec<(String, Tensor)> {
    let st = read_safetensors(&common::fixtures_dir().join("r2p1d_mosi_joint.safetensors"))
        .expect("fixture safetensors");
    st.tensors
        .into_iter()
        .filter(|(n, _)| !(n.starts_with("__") && n.ends_with("__")))
        .collect()
}

fn assert_matches_reference(tensors: &[(String, Tensor)]) {
    let want = reference_tensors();
    assert_eq!(want.len(), 128);
    let got_names: HashSet<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    let want_names: HashSet<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got_names.len(), tensors.len(), "duplicate names");
    assert_eq!(got_names, want_names);
    for (name, w) in &want {
        let g = &tensors.iter().find(|(n, _)| n == name).unwrap().1;
        assert_same(name, g, w);
    }
}

#[test]
fn reference_checkpoint_imports_bit_exact() {
    let ck = import(&reference_pyth()).unwrap();
    assert_matches_reference(&ck.tensors);
    // File order (model_state's own order), not sorted.
    assert_eq!(ck.tensors[0].0, "backbone.conv1.a1.weight");
    assert_eq!(ck.from, ImportedFrom::ModelState);
    assert_eq!(ck.epoch, Some(0));
    assert!(!ck.has_ema);
    let cfg: serde_json::Value = serde_json::from_str(ck.cfg.as_deref().unwrap()).unwrap();
    assert_eq!(cfg, fixture_cfg());
    assert_eq!(ck.num_values(), 461_658);
}

#[test]
fn cli_import_writes_safetensors_with_metadata() {
    let d = TempDir::new().unwrap();
    let out = d.path().join("r2p1d.safetensors");
    let pyth = reference_pyth();
    let o = common::tada(&[
        "import",
        pyth.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let stdout = common::stdout(&o);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    for part in [
        "128 tensors",
        "461658 parameters",
        "epoch 0",
        out.to_str().unwrap(),
    ] {
        assert!(stdout.contains(part), "{part} missing from {stdout}");
    }
    let back = read_safetensors(&out).unwrap();
    assert_matches_reference(&back.tensors);
    let meta = &back.metadata;
    assert_eq!(meta["format"], "tada-import-1");
    assert_eq!(meta["source"], "r2p1d_mosi_joint.pyth");
    assert_eq!(meta["weights"], "model_state");
    assert_eq!(meta["epoch"], "0");
    let cfg: serde_json::Value = serde_json::from_str(&meta["cfg"]).unwrap();
    assert_eq!(cfg, fixture_cfg());
}

#[test]
fn cli_errors_are_one_line_naming_the_file() {
    let d = TempDir::new().unwrap();
    let evil = d.path().join("evil.pth");
    std::fs::write(
        &evil,
        torch_zip(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.", &[]),
    )
    .unwrap();
    let out = d.path().join("out.safetensors");
    for (input, needle) in [
        (evil.clone(), "forbidden global os.system"),
        (d.path().join("missing.pth"), "cannot read"),
    ] {
        let o = common::tada(&[
            "import",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        let err = common::stderr(&o);
        let line = err.trim_end();
        assert_eq!(line.lines().count(), 1, "{err}");
        assert!(line.starts_with("error: "), "{err}");
        assert!(line.contains(input.to_str().unwrap()), "{err}");
        assert!(line.contains(needle), "{err}");
        assert!(!out.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// Small files made by torch (tests/data/import/make_fixtures.py)
// ---------------------------------------------------------------------------------------------

/// The tiny Conv3d + BatchNorm3d + Linear state dict: names in order, shapes.
const SMALL: &[(&str, &[i64])] = &[
    ("0.weight", &[3, 2, 1, 3, 3]),
    ("0.bias", &[3]),
    ("1.weight", &[3]),
    ("1.bias", &[3]),
    ("1.running_mean", &[3]),
    ("1.running_var", &[3]),
    ("1.num_batches_tracked", &[]),
    ("2.weight", &[2, 4]),
    ("2.bias", &[2]),
];

pub(crate) fn arange(n: i64, kind: Kind) -> Tensor {
    Tensor::arange(n, (kind, Device::Cpu))
}

/// Checks the tiny state dict: tensor k holds arange(numel) * 0.25 + k (+ `plus`).
fn assert_small(ck: &ImportedCheckpoint, plus: f64) {
    let names: Vec<&str> = ck.tensors.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = SMALL.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want);
    for (k, ((name, shape), (_, got))) in SMALL.iter().zip(&ck.tensors).enumerate() {
        let expected = if name.ends_with("num_batches_tracked") {
            Tensor::from(7i64)
        } else {
            let n = shape.iter().product();
            (arange(n, Kind::Double) * 0.25 + k as f64 + plus)
                .to_kind(Kind::Float)
                .reshape(*shape)
        };
        assert_same(name, got, &expected);
    }
}

#[test]
fn ordered_dict_state_dict() {
    let ck = import(&data("plain_state_dict.pth")).unwrap();
    assert_small(&ck, 0.0);
    assert_eq!(ck.from, ImportedFrom::StateDict);
    assert_eq!((ck.epoch, ck.cfg.as_deref()), (None, None));
}

#[test]
fn module_prefixed_plain_dict_state_dict() {
    assert_small(&import(&data("ddp_state_dict.pth")).unwrap(), 0.0);
}

#[test]
fn legacy_and_protocol_4_files() {
    assert_small(&import(&data("legacy_state_dict.pth")).unwrap(), 0.0);
    assert_small(&import(&data("protocol4_state_dict.pth")).unwrap(), 0.0);
}

#[test]
fn every_dtype_and_strided_views() {
    let ck = import(&data("dtype_zoo.pth")).unwrap();
    let get = |n: &str| &ck.tensors.iter().find(|(name, _)| name == n).unwrap().1;
    let halves = |k: Kind| arange(5, Kind::Float).to_kind(k) * 0.5;
    assert_same("f16", get("f16"), &halves(Kind::Half));
    assert_same("bf16", get("bf16"), &halves(Kind::BFloat16));
    assert_same("f64", get("f64"), &halves(Kind::Double));
    for (n, k) in [("i32", Kind::Int), ("i16", Kind::Int16), ("i8", Kind::Int8)] {
        assert_same(n, get(n), &(arange(5, Kind::Int64) - 2).to_kind(k));
    }
    assert_same(
        "u8",
        get("u8"),
        &(arange(5, Kind::Int64) + 250).to_kind(Kind::Uint8),
    );
    assert_same(
        "bool",
        get("bool"),
        &Tensor::from_slice(&[true, false, true]),
    );
    let t = arange(6, Kind::Float).reshape([2, 3]).tr().contiguous();
    assert_same("transposed", get("transposed"), &t);
    let big = arange(12, Kind::Float).reshape([3, 4]);
    assert_same("big", get("big"), &big);
    assert_same("row", get("row"), &big.get(1));
    assert_same("scalar", get("scalar"), &Tensor::from(3.5f32));
    assert_same(
        "empty",
        get("empty"),
        &Tensor::zeros([0, 3], (Kind::Float, Device::Cpu)),
    );
    assert_eq!(ck.tensors.len(), 13);
}

#[test]
fn ema_weights_on_request() {
    let path = data("ema_checkpoint.pyth");
    let ck = import(&path).unwrap();
    assert_small(&ck, 0.0);
    assert_eq!(ck.from, ImportedFrom::ModelState);
    assert!(ck.has_ema);
    assert_eq!(ck.epoch, Some(4));
    assert_eq!(ck.cfg.as_deref(), Some(r#"{"TRAIN": {"BATCH_SIZE": 8}}"#));
    let ema = import_checkpoint(&path, ImportOptions { ema: true }).unwrap();
    assert_eq!(ema.from, ImportedFrom::ModelEmaState);
    assert_small(&ema, 100.0);

    let d = TempDir::new().unwrap();
    let out = d.path().join("ema.safetensors");
    let o = common::tada(&[
        "import",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--ema",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stdout(&o).contains("model_ema_state"));
    assert_eq!(
        read_safetensors(&out).unwrap().metadata["weights"],
        "model_ema_state"
    );

    let bare = data("plain_state_dict.pth");
    let e = import_checkpoint(&bare, ImportOptions { ema: true }).unwrap_err();
    assert!(e.to_string().contains("no model_ema_state"), "{e}");
}
