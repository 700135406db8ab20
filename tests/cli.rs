//! The command line: help, version, info, config show, and one-line errors with a non-zero exit.

use tempfile::TempDir;

use crate::common::{stderr, stdout, tada, write};

#[test]
fn help_and_version() {
    let o = tada(&["--help"]);
    assert!(o.status.success());
    for cmd in ["info", "config"] {
        assert!(stdout(&o).contains(cmd), "{}", stdout(&o));
    }
    let o = tada(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("tada {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn info_reports_versions_and_devices() {
    let o = tada(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("libtorch       2.11.0"), "{out}");
    assert!(out.contains("CUDA"), "{out}");
    assert!(out.contains("cuDNN"), "{out}");
    assert!(out.contains("intra-op"), "{out}");
}

#[test]
fn config_show_prints_merged_yaml() {
    let d = TempDir::new().unwrap();
    write(
        d.path(),
        "base.yaml",
        "VIDEO:\n  HEAD:\n    NUM_CLASSES: 7\nOSS:\n  ENABLE: false\n",
    );
    let f = write(
        d.path(),
        "top.yaml",
        "_BASE: base.yaml\nTRAIN:\n  BATCH_SIZE: 16\n",
    );
    let o = tada(&[
        "config",
        "show",
        "--config",
        f.to_str().unwrap(),
        "--set",
        "OPTIMIZER.BASE_LR=0.5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let v: serde_json::Value = serde_saphyr::from_str(&out).expect("output is YAML");
    assert_eq!(v["TRAIN"]["BATCH_SIZE"], 16);
    assert_eq!(v["VIDEO"]["HEAD"]["NUM_CLASSES"], 7);
    assert_eq!(v["OPTIMIZER"]["BASE_LR"], 0.5);
    assert_eq!(v["TRAIN"]["EVAL_PERIOD"], 10, "defaults filled in");
    // The unused reference key is reported once, as a warning on stderr.
    let warnings: Vec<_> = stderr(&o)
        .lines()
        .filter(|l| l.contains("OSS"))
        .map(String::from)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn bad_input_exits_nonzero_with_one_line() {
    let d = TempDir::new().unwrap();
    let typo = write(
        d.path(),
        "typo.yaml",
        "VIDEO:\n  HEAD:\n    NUM_CLASSES: 7\nTRAIN:\n  BATCH_SZE: 1\n",
    );
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![
                "--config".into(),
                d.path().join("nope.yaml").display().to_string(),
            ],
            vec!["nope.yaml"],
        ),
        (
            vec!["--config".into(), typo.display().to_string()],
            vec!["TRAIN.BATCH_SZE", "typo.yaml", "TRAIN.BATCH_SIZE"],
        ),
        (
            vec![
                "--config".into(),
                typo.display().to_string(),
                "--set".into(),
                "TRAIN.BATCH_SIZE=x".into(),
            ],
            vec!["typo.yaml"],
        ),
    ];
    for (args, needles) in cases {
        let mut full = vec!["config", "show"];
        full.extend(args.iter().map(String::as_str));
        let o = tada(&full);
        assert!(!o.status.success(), "{full:?} should fail");
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line expected for {full:?}: {err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        for n in needles {
            assert!(lines[0].contains(n), "{n} missing in {err}");
        }
    }
}
