//! Checkpoints: round trip, atomic writes, and load reports that name every key at fault.

use std::collections::HashMap;
use std::io::Write;

use tada::atomic_write;
use tada::checkpoint::{
    latest_checkpoint, load_into, read_safetensors, write_safetensors, Checkpoint, CheckpointError,
    RunState,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use tempfile::TempDir;

fn sample() -> Checkpoint {
    Checkpoint {
        model: vec![
            (
                "backbone.conv1.a.weight".into(),
                Tensor::arange(24, (Kind::Float, Device::Cpu)).reshape([2, 3, 1, 2, 2]),
            ),
            (
                "backbone.conv1.a_bn.num_batches_tracked".into(),
                Tensor::from(5i64),
            ),
            // A non-contiguous view must be saved by value.
            (
                "head.out.weight".into(),
                Tensor::arange(6, (Kind::Float, Device::Cpu))
                    .reshape([2, 3])
                    .tr(),
            ),
        ],
        optimizer: vec![(
            "exp_avg.head.out.weight".into(),
            Tensor::ones([3, 2], (Kind::Float, Device::Cpu)),
        )],
        optimizer_meta: serde_json::json!({"method": "adam", "step": 12}),
        ema: vec![(
            "head.out.weight".into(),
            Tensor::full([3, 2], 0.5, (Kind::Float, Device::Cpu)),
        )],
        run: RunState {
            epoch: 3,
            step: 12,
            seed: 42,
            extra: serde_json::json!({"queue_ptr": 7}),
        },
        config_yaml: "TRAIN:\n  BATCH_SIZE: 8\n".into(),
    }
}

#[test]
fn checkpoint_round_trip() {
    let d = TempDir::new().unwrap();
    let path = d.path().join(Checkpoint::file_name(3));
    let ck = sample();
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back.run, ck.run);
    assert_eq!(back.config_yaml, ck.config_yaml);
    assert_eq!(back.optimizer_meta, ck.optimizer_meta);
    assert_eq!(back.model.len(), 3);
    for (n1, t1) in &ck.model {
        let t2 = &back
            .model
            .iter()
            .find(|(n, _)| n == n1)
            .unwrap_or_else(|| panic!("{n1} lost"))
            .1;
        assert_eq!(t1.kind(), t2.kind());
        assert!(t1.equal(t2), "{n1}");
    }
    assert_eq!(back.optimizer[0].0, "exp_avg.head.out.weight");
    assert!(back.optimizer[0].1.equal(&ck.optimizer[0].1));
    // The EMA weights come back apart from the model's, and plain weight loading skips them.
    assert_eq!(back.ema.len(), 1);
    assert_eq!(back.ema[0].0, "head.out.weight");
    assert!(back.ema[0].1.equal(&ck.ema[0].1));
    let raw = read_safetensors(&path).unwrap();
    assert!(raw.get("__ema.head.out.weight__").is_some());
    assert_eq!(latest_checkpoint(d.path()), Some(path));
}

#[test]
fn interrupted_write_keeps_the_old_file_and_leaves_no_temp() {
    let d = TempDir::new().unwrap();
    let path = d.path().join("checkpoint_epoch_00001.safetensors");
    sample().save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let r = atomic_write::write_with(&path, |f| {
        f.write_all(&before[..before.len() / 2])?;
        Err(std::io::Error::other("disk full (simulated)"))
    });
    assert!(r.is_err());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "old checkpoint intact"
    );
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    // A temp file left by a killed process is never taken for a checkpoint.
    std::fs::write(
        atomic_write::temp_path(&d.path().join("checkpoint_epoch_00002.safetensors")),
        b"junk",
    )
    .unwrap();
    assert_eq!(latest_checkpoint(d.path()), Some(path.clone()));
    assert!(Checkpoint::load(&path).is_ok());
}

#[test]
fn truncated_or_foreign_files_are_clear_errors() {
    let d = TempDir::new().unwrap();
    let path = d.path().join("c.safetensors");
    sample().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cut = d.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let e = Checkpoint::load(&cut).unwrap_err().to_string();
    assert!(
        e.contains("cut.safetensors") && e.contains("safetensors"),
        "{e}"
    );

    let plain = d.path().join("weights.safetensors");
    let t = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    write_safetensors(&plain, &[("w".into(), &t)], &HashMap::new()).unwrap();
    let e = Checkpoint::load(&plain).unwrap_err();
    assert!(matches!(e, CheckpointError::NotACheckpoint { .. }), "{e}");
    assert!(e.to_string().contains("weights.safetensors"));
}

fn model_vs() -> VarStore {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let _ = root.sub("a").zeros("weight", &[2, 3]);
    let _ = root.sub("a").zeros("bias", &[2]);
    let _ = root.sub("b").zeros("weight", &[4]);
    vs
}

fn file_with(d: &TempDir, tensors: &[(&str, Tensor)]) -> std::path::PathBuf {
    let path = d.path().join("w.safetensors");
    let named: Vec<(String, &Tensor)> = tensors.iter().map(|(n, t)| (n.to_string(), t)).collect();
    write_safetensors(&path, &named, &HashMap::new()).unwrap();
    path
}

#[test]
fn load_report_names_missing_unexpected_and_mismatched() {
    let d = TempDir::new().unwrap();
    let f = |s: &[i64]| Tensor::ones(s, (Kind::Float, Device::Cpu));
    let path = file_with(
        &d,
        &[
            ("a.weight", f(&[2, 3])),
            ("a.bias", f(&[3])),
            ("c.weight", f(&[1])),
        ],
    );
    let file = read_safetensors(&path).unwrap();
    let vs = model_vs();
    let e = load_into(&vs, &file, &path, false).unwrap_err().to_string();
    assert!(
        e.contains("a.bias") && e.contains("[2]") && e.contains("[3]"),
        "{e}"
    );
    assert!(
        e.contains("b.weight") && e.contains("c.weight") && e.contains("w.safetensors"),
        "{e}"
    );

    let path = file_with(
        &d,
        &[
            ("module.a.weight", f(&[2, 3])),
            ("module.x.num_batches_tracked", Tensor::from(1i64)),
            ("__input__", f(&[9])),
        ],
    );
    let file = read_safetensors(&path).unwrap();
    let report = load_into(&vs, &file, &path, false).unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!(report.missing, vec!["a.bias", "b.weight"]);
    assert!(report.unexpected.is_empty(), "{report}");
    assert!(
        vs.variables()["a.weight"].equal(&f(&[2, 3])),
        "values copied"
    );
    let e = load_into(&vs, &file, &path, true).unwrap_err().to_string();
    assert!(e.contains("missing from the file: a.bias, b.weight"), "{e}");
}

#[test]
fn a_checkpoint_is_also_a_weights_file() {
    let d = TempDir::new().unwrap();
    let path = d.path().join("ck.safetensors");
    let vs = VarStore::new(Device::Cpu);
    let _ = vs.root().sub("head").sub("out").zeros("weight", &[3, 2]);
    let ck = sample();
    ck.save(&path).unwrap();
    let file = read_safetensors(&path).unwrap();
    let report = load_into(&vs, &file, &path, false).unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!(
        report.unexpected,
        vec!["backbone.conv1.a.weight"],
        "optimiser entries are not weights"
    );
}

#[test]
fn the_newest_checkpoint_is_found_across_epoch_and_mid_epoch_names() {
    let d = TempDir::new().unwrap();
    let dir = d.path();
    let touch = |name: String| std::fs::write(dir.join(name), b"").unwrap();
    touch(Checkpoint::file_name(1));
    touch(Checkpoint::file_name(2));
    touch(Checkpoint::mid_epoch_file_name(2, 9));
    assert_eq!(
        latest_checkpoint(dir).unwrap(),
        dir.join(Checkpoint::mid_epoch_file_name(2, 9))
    );
    touch(Checkpoint::mid_epoch_file_name(2, 10));
    assert_eq!(
        latest_checkpoint(dir).unwrap(),
        dir.join("checkpoint_epoch_00002_step_00000010.safetensors")
    );
    touch(Checkpoint::file_name(3));
    assert_eq!(
        latest_checkpoint(dir).unwrap(),
        dir.join(Checkpoint::file_name(3))
    );
}
