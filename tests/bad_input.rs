//! Bad command-line and config input: every case is one line naming the input and a non-zero
//! exit, never a panic, an abort or a silently lost file; outputs never replace their input.

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

use crate::common::{run_options, serial, stderr, stdout, tada, write, TINY_BACKBONE};
use crate::import_hostile::{floats, state_dict, tensor, torch_zip};

/// A tiny classification config on the embedded synthetic videos (4 frames of 32x32).
fn tiny_config(dir: &Path, classes: usize) -> PathBuf {
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: {classes}, DROPOUT_RATE: 0.0}}
NUM_GPUS: 0
MODEL: {{NAME: R2D3D}}
DATA_LOADER: {{NUM_WORKERS: 0}}
DATA: {{TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 8, CHECKPOINT_PERIOD: 100}}
TEST: {{BATCH_SIZE: 8}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.01, MAX_EPOCH: 1, WARMUP_EPOCHS: 0}}
"
    );
    write(dir, "tiny.yaml", &yaml)
}

/// The initial weights of `cfg`'s model, as safetensors.
fn tiny_weights(cfg: &Path, out: &Path) {
    let loaded = tada::config::load(cfg, &[]).unwrap();
    let session = tada::models::Session::new(&loaded.config).unwrap();
    session.vs.save(out).unwrap();
}

/// The command failed with exactly one line `error: …` holding every needle; returns it.
fn one_error_line(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].len() < 600, "a short line expected: {}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing in {err}");
    }
    lines[0].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn out_of_range_flags_are_refused_by_name() {
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 4);
    let c = s(&cfg);
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["bench", "data", "--seconds", "inf"],
            "--seconds",
            "inf",
        ),
        (
            vec!["bench", "data", "--seconds", "1e20"],
            "--seconds",
            "1e20",
        ),
        (
            vec!["bench", "data", "--seconds", "nan"],
            "--seconds",
            "nan",
        ),
        (vec!["bench", "data", "--seconds", "0"], "--seconds", "0"),
        (vec!["bench", "model", "--seconds=-1"], "--seconds", "-1"),
        (vec!["bench", "model", "--batch", "0"], "--batch", "0"),
        (vec!["bench", "model", "--batch", "1e8"], "--batch", "1e8"),
        (
            vec!["bench", "model", "--batch", "65537"],
            "--batch",
            "65537",
        ),
        (
            vec!["data", "check", "--workers", "1000"],
            "--workers",
            "1000",
        ),
    ];
    for (mut args, flag, value) in cases {
        args.extend(["--config", c]);
        let o = tada(&args);
        one_error_line(&o, &[flag, value]);
    }
    // Misspelt flags are one line too, with clap's suggestion.
    let o = tada(&["bench", "model", "--confg", c]);
    one_error_line(&o, &["--confg", "--config"]);
}

#[test]
fn sizes_that_cannot_be_allocated_are_refused_by_key() {
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 4);
    for (set, key) in [
        (
            "VIDEO.HEAD.NUM_CLASSES=100000000000",
            "VIDEO.HEAD.NUM_CLASSES",
        ),
        ("DATA.TRAIN_CROP_SIZE=100000", "DATA.TRAIN_CROP_SIZE"),
        ("DATA_LOADER.NUM_WORKERS=1000", "DATA_LOADER.NUM_WORKERS"),
        ("TRAIN.BATCH_SIZE=100000000", "TRAIN.BATCH_SIZE"),
    ] {
        let o = tada(&["info", "--model", s(&cfg), "--set", set]);
        one_error_line(&o, &[key, set]);
    }
}

#[test]
fn a_libtorch_failure_is_one_short_line() {
    // Within every bound, but 65536 clips of 3 x 1 x 4096² floats (13 TB) cannot be allocated.
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 4);
    let o = tada(&[
        "bench",
        "model",
        "--config",
        s(&cfg),
        "--batch",
        "65536",
        "--seconds",
        "0.1",
        "--set",
        "DATA.TRAIN_CROP_SIZE=4096",
        "--set",
        "DATA.NUM_INPUT_FRAMES=1",
    ]);
    let line = one_error_line(&o, &["allocat", "65536"]);
    assert!(
        !line.contains("Exception raised from") && !line.contains("frame #"),
        "{line}"
    );
}

#[test]
fn forward_refuses_an_input_with_an_empty_dimension() {
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 4);
    let weights = d.path().join("w.safetensors");
    tiny_weights(&cfg, &weights);
    for (name, shape) in [
        ("batch0", [0i64, 3, 4, 32, 32]),
        ("frames0", [1, 3, 0, 32, 32]),
    ] {
        let input = d.path().join(format!("{name}.safetensors"));
        let t = tch::Tensor::zeros(shape, (tch::Kind::Float, tch::Device::Cpu));
        tada::checkpoint::write_safetensors(
            &input,
            &[("__input__".into(), &t)],
            &Default::default(),
        )
        .unwrap();
        let out = d.path().join("out.safetensors");
        let o = tada(&[
            "forward",
            "--config",
            s(&cfg),
            "--weights",
            s(&weights),
            "--input",
            s(&input),
            "-o",
            s(&out),
        ]);
        one_error_line(&o, &[s(&input), "__input__"]);
        assert!(!out.exists());
    }
}

#[test]
fn outputs_never_replace_their_input_a_link_or_a_device() {
    let d = TempDir::new().unwrap();
    let pth = d.path().join("x.pth");
    std::fs::copy(
        crate::common::repo().join("tests/data/import/plain_state_dict.pth"),
        &pth,
    )
    .unwrap();
    let original = std::fs::read(&pth).unwrap();
    let import = |out: &Path| tada(&["import", s(&pth), "-o", s(out)]);

    // Its own input, also under another spelling and through a hard link.
    one_error_line(&import(&pth), &[s(&pth), "input"]);
    one_error_line(&import(&d.path().join(".").join("x.pth")), &["input"]);
    let hard = d.path().join("hard.pth");
    std::fs::hard_link(&pth, &hard).unwrap();
    one_error_line(&import(&hard), &["input"]);
    assert_eq!(std::fs::read(&pth).unwrap(), original);

    // A symbolic link (to another file), a FIFO, a folder, a missing folder.
    let target = write(d.path(), "target.safetensors", "keep");
    let link = d.path().join("link.safetensors");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    one_error_line(&import(&link), &[s(&link), "symbolic link"]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    let fifo = d.path().join("fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    one_error_line(&import(&fifo), &[s(&fifo), "FIFO"]);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    one_error_line(&import(d.path()), &["folder"]);
    let missing = d.path().join("no/such/out.safetensors");
    one_error_line(&import(&missing), &["no/such", "does not exist"]);

    // `forward` and `crops` check theirs too, before anything is read.
    let cfg = tiny_config(d.path(), 4);
    let weights = d.path().join("w.safetensors");
    tiny_weights(&cfg, &weights);
    let before = std::fs::read(&weights).unwrap();
    let o = tada(&[
        "forward",
        "--config",
        s(&cfg),
        "--weights",
        s(&weights),
        "--input",
        s(&weights),
        "-o",
        s(&weights),
    ]);
    one_error_line(&o, &[s(&weights), "input"]);
    assert_eq!(std::fs::read(&weights).unwrap(), before);
    let o = tada(&["crops", "--config", s(&cfg), "--out", s(&target)]);
    one_error_line(&o, &[s(&target), "not a folder"]);
}

#[test]
fn test_checks_its_output_before_evaluating() {
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 4);
    // Weights that cannot be read: an evaluation would fail on them first.
    let weights = write(d.path(), "w.safetensors", "not weights");
    let out = d.path().join("missing/results.json");
    let o = tada(&[
        "test",
        "--config",
        s(&cfg),
        "--weights",
        s(&weights),
        "-o",
        s(&out),
    ]);
    one_error_line(&o, &["missing/results.json", "does not exist"]);
}

#[test]
fn test_reports_no_top5_accuracy_below_5_classes() {
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 3);
    let weights = d.path().join("w.safetensors");
    tiny_weights(&cfg, &weights);
    let out = d.path().join("r.json");
    let o = tada(&[
        "test",
        "--config",
        s(&cfg),
        "--weights",
        s(&weights),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("acc@5 n/a"), "{}", stdout(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(json["acc5"].is_null(), "{json}");
    assert!(json["acc1"].is_number(), "{json}");
}

/// UCF101 lists with 4 classes (labels 0 to 3); the videos need not exist.
fn four_class_ucf101(dir: &Path) -> (PathBuf, PathBuf) {
    let anno = dir.join("anno");
    write(
        &anno,
        "ucfTrainTestlist/classInd.txt",
        "1 A\n2 B\n3 C\n4 D\n",
    );
    let list = "A/a.avi 1\nB/b.avi 2\nC/c.avi 3\nD/d.avi 4\n";
    write(&anno, "ucfTrainTestlist/trainlist01.txt", list);
    write(
        &anno,
        "ucfTrainTestlist/testlist01.txt",
        "A/a.avi\nD/d.avi\n",
    );
    (dir.join("videos"), anno)
}

#[test]
fn a_dataset_with_more_classes_than_the_head_fails_at_start() {
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 2);
    let (root, anno) = four_class_ucf101(d.path());
    let set = [
        "TRAIN.DATASET=ucf101".to_string(),
        format!("DATA.DATA_ROOT_DIR={}", root.display()),
        format!("DATA.ANNO_DIR={}", anno.display()),
    ];
    let loaded = tada::config::load(&cfg, &set).unwrap();
    let run = d.path().join("run");
    let e = {
        let _serial = serial();
        tada::runs::finetune(&loaded, &run_options(&run, false, None)).unwrap_err()
    }
    .to_string();
    assert!(
        e.contains("VIDEO.HEAD.NUM_CLASSES")
            && e.contains("is 2")
            && e.contains("ucf101 has 4 classes"),
        "{e}"
    );
    assert!(!run.exists(), "nothing is started");

    let weights = d.path().join("w.safetensors");
    tiny_weights(&cfg, &weights);
    let mut args = vec![
        "test".to_string(),
        "--config".into(),
        s(&cfg).into(),
        "--weights".into(),
        s(&weights).into(),
    ];
    for v in &set {
        args.extend(["--set".to_string(), v.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    one_error_line(
        &tada(&args),
        &["VIDEO.HEAD.NUM_CLASSES", "is 2", "4 classes"],
    );
}

#[test]
fn finetune_refuses_weights_of_which_nothing_loads() {
    let d = TempDir::new().unwrap();
    let cfg = tada::config::load(&tiny_config(d.path(), 4), &[]).unwrap();
    let other = d.path().join("other.safetensors");
    let t = tch::Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu));
    tada::checkpoint::write_safetensors(
        &other,
        &[("backbone.nothing.weight".into(), &t)],
        &Default::default(),
    )
    .unwrap();
    let mut opts = run_options(&d.path().join("run"), false, None);
    opts.weights = Some(other.clone());
    let _serial = serial();
    let e = tada::runs::finetune(&cfg, &opts)
        .map(|(s, _)| s.steps)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(s(&other)) && e.contains("none of its 1 tensor(s)"),
        "{e}"
    );
}

#[test]
fn finetune_reads_official_pth_weights() {
    let d = TempDir::new().unwrap();
    let cfg = tada::config::load(&tiny_config(d.path(), 4), &[]).unwrap();
    // One backbone tensor of the model, as the reference's torch.save writes it.
    let (name, numel) = {
        let session = tada::models::Session::new(&cfg.config).unwrap();
        let vars = session.vs.variables();
        let (name, t) = vars
            .iter()
            .filter(|(n, t)| n.starts_with("backbone.") && t.dim() == 1)
            .min_by_key(|(n, _)| n.as_str())
            .unwrap();
        (name.clone(), t.numel() as u64)
    };
    let values: Vec<f32> = (0..numel).map(|i| 0.5 + i as f32).collect();
    let pickle = state_dict(&[(name.as_str(), tensor("0", numel, 0, &[numel], &[1]))]);
    let pth = d.path().join("official.pth");
    std::fs::write(&pth, torch_zip(&pickle, &[("0", &floats(&values))])).unwrap();
    let mut opts = run_options(&d.path().join("run"), false, None);
    opts.weights = Some(pth);
    let _serial = serial();
    let (_, report) = tada::runs::finetune(&cfg, &opts).unwrap();
    let report = report.unwrap();
    assert_eq!(report.load.loaded, 1, "{}", report.load);
}

#[test]
fn a_value_the_run_refuses_names_the_file_or_override_it_came_from() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny_config(d.path(), 4);
    let out = d.path().join("run");
    let set = tada(&[
        "finetune",
        "--config",
        s(&cfg),
        "--output",
        s(&out),
        "--set",
        "TRAIN.NUM_FOLDS=2",
    ]);
    let err = stderr(&set);
    assert!(!set.status.success(), "{err}");
    assert!(
        err.contains("TRAIN.NUM_FOLDS (from --set TRAIN.NUM_FOLDS=2): is 2"),
        "{err}"
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    let folded = write(
        d.path(),
        "folded.yaml",
        &text.replace("TRAIN: {", "TRAIN: {NUM_FOLDS: 3, "),
    );
    let file = tada(&["finetune", "--config", s(&folded), "--output", s(&out)]);
    let err = stderr(&file);
    assert!(!file.status.success(), "{err}");
    let from = format!("TRAIN.NUM_FOLDS (from {}): is 3", folded.display());
    assert!(err.contains(&from), "{err}");
}

/// The reference recipes' augmentations are built; settings they cannot use stop the run
/// before it starts, in one line naming the key.
#[test]
fn augmentation_settings_that_cannot_be_used_are_refused_naming_the_key() {
    let d = TempDir::new().unwrap();
    let cfg = tiny_config(d.path(), 4);
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &[
                "AUGMENTATION.AUTOAUGMENT.ENABLE=true",
                "AUGMENTATION.AUTOAUGMENT.TYPE=augmix-m5-w3",
            ],
            &["AUGMENTATION.AUTOAUGMENT.TYPE", "augmix-m5-w3"],
        ),
        (
            &[
                "AUGMENTATION.AUTOAUGMENT.ENABLE=true",
                "AUGMENTATION.AUTOAUGMENT.TYPE=rand-m9-q3",
            ],
            &[
                "AUGMENTATION.AUTOAUGMENT.TYPE",
                "unknown RandAugment config section \"q3\"",
            ],
        ),
        (
            &["AUGMENTATION.MIXUP.ENABLE=true"],
            &["no alpha is positive", "AUGMENTATION.MIXUP.ALPHA"],
        ),
        (
            &[
                "AUGMENTATION.CUTMIX.ENABLE=true",
                "AUGMENTATION.CUTMIX.MINMAX=[0.8, 0.2]",
            ],
            &["AUGMENTATION.CUTMIX.MINMAX", "[0.8, 0.2]"],
        ),
        (
            &[
                "AUGMENTATION.RANDOM_ERASING.ENABLE=true",
                "AUGMENTATION.RANDOM_ERASING.AREA_RANGE=[0.5, 0.1]",
            ],
            &["AUGMENTATION.RANDOM_ERASING.AREA_RANGE", "[0.5, 0.1]"],
        ),
    ];
    for (k, (sets, needles)) in cases.iter().enumerate() {
        let out = d.path().join(format!("run{k}"));
        let mut args = vec!["finetune", "--config", s(&cfg), "-o", s(&out)];
        for set in sets.iter() {
            args.extend(["--set", set]);
        }
        one_error_line(&tada(&args), needles);
        assert!(
            !out.join("checkpoints").exists(),
            "the run started: {sets:?}"
        );
    }
}
