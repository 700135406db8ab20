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
    assert!(
        out.contains("distributed    c10d: gloo (CPU tensors)"),
        "{out}"
    );
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

#[test]
fn mosi_preview_writes_gifs_grid_and_labels() {
    let d = TempDir::new().unwrap();
    let cfg = write(
        d.path(),
        "mosi.yaml",
        "VIDEO:\n  HEAD:\n    NUM_CLASSES: 3\nPRETRAIN:\n  NUM_FRAMES: 4\n  STANDARD_SIZE: 96\n",
    );
    let out = d.path().join("preview");
    let o = tada(&[
        "mosi-preview",
        "--config",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--images",
        "1",
        "--set",
        "DATA.TRAIN_CROP_SIZE=48",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 3 speeds per axis, decoupled xy: [-1,0] [1,0] [0,-1] [0,1] [0,0].
    let labels: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("labels.json")).unwrap()).unwrap();
    assert_eq!(
        labels["speed_set"],
        serde_json::json!([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])
    );
    assert_eq!(
        labels["labels"]["move_joint"],
        serde_json::json!([0, 1, 2, 3, 4])
    );
    for k in 0..5 {
        let name = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with(&format!("image0_class{k}_")) && n.ends_with(".gif"))
            .unwrap_or_else(|| panic!("no GIF for class {k}"));
        let file = std::io::BufReader::new(std::fs::File::open(out.join(name)).unwrap());
        use image::AnimationDecoder;
        let frames = image::codecs::gif::GifDecoder::new(file)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].buffer().dimensions(), (48, 48));
    }
    // 5 labelled rows of 4 frames of 48x48, enlarged to 144 px tiles.
    let grid = image::open(out.join("image0_grid.png")).unwrap().to_rgb8();
    crate::pictures::assert_labelled_rows(&grid, 5, 144);
}

#[test]
fn mosi_preview_rejects_what_the_reference_rejects() {
    let d = TempDir::new().unwrap();
    let cfg = write(
        d.path(),
        "bad.yaml",
        "VIDEO:\n  HEAD:\n    NUM_CLASSES: 5\nPRETRAIN:\n  DECOUPLE: false\n  DATA_MODE: x\n",
    );
    let o = tada(&[
        "mosi-preview",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        d.path().join("o").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(
        err.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("DATA_MODE x") && err.contains("DECOUPLE"),
        "{err}"
    );
}

#[test]
fn bench_data_reports_clips_per_second_last() {
    let d = TempDir::new().unwrap();
    let cfg = write(
        d.path(),
        "m.yaml",
        "VIDEO:\n  HEAD:\n    NUM_CLASSES: 5\nPRETRAIN:\n  NUM_FRAMES: 4\n",
    );
    let o = tada(&[
        "bench",
        "data",
        "--config",
        cfg.to_str().unwrap(),
        "--seconds",
        "0.2",
        "--set",
        "DATA.TRAIN_CROP_SIZE=64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let last = out.lines().last().unwrap_or_default();
    let n: f64 = last
        .split_whitespace()
        .rev()
        .skip_while(|w| *w != "clips/s")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or(-1.0);
    assert!(last.contains("clips/s") && n > 0.0, "{out}");
    assert!(out.contains("[3, 4, 64, 64]"), "{out}");
}

/// The fixture's reference config written out as YAML (JSON is YAML).
fn fixture_config(dir: &std::path::Path, case: &str) -> std::path::PathBuf {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::fixtures_dir().join(format!("{case}.json")))
            .unwrap(),
    )
    .unwrap();
    write(dir, &format!("{case}.yaml"), &json["cfg"].to_string())
}

/// Runs `tada forward` on a fixture's input with `weights` (plus extra arguments); returns the
/// process output and, on success, the largest difference of each output tensor to the fixture.
fn forward_fixture(
    case: &str,
    weights: &str,
    extra: &[&str],
) -> (std::process::Output, Vec<(String, f64)>) {
    let d = TempDir::new().unwrap();
    let cfg = fixture_config(d.path(), case);
    let fixture = crate::common::fixtures_dir().join(format!("{case}.safetensors"));
    let weights = crate::common::fixtures_dir().join(weights);
    let out = d.path().join("out.safetensors");
    let mut args = vec![
        "forward",
        "--config",
        cfg.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        fixture.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = tada(&args);
    if !o.status.success() {
        return (o, Vec::new());
    }
    let ours = tada::checkpoint::read_safetensors(&out).unwrap();
    let reference = tada::checkpoint::read_safetensors(&fixture).unwrap();
    let diffs = ["__output__", "__out_logits__"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                tada::models::inference::max_abs_diff(
                    ours.get(n).unwrap(),
                    reference.get(n).unwrap(),
                ),
            )
        })
        .collect();
    (o, diffs)
}

#[test]
fn forward_reproduces_a_fixture_through_the_cli() {
    let (o, diffs) = forward_fixture("r2d3d_mosi_joint", "r2d3d_mosi_joint.safetensors", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (name, diff) in diffs {
        assert!(diff <= 2e-5, "{name}: {diff}");
    }
    // A model that does not fit the weights fails by name.
    let (o, _) = forward_fixture(
        "r2d3d_mosi_joint",
        "r2d3d_mosi_joint.safetensors",
        &[
            "--set",
            "VIDEO.BACKBONE.NUM_FILTERS=[16,16,32,64,32]",
            "--set",
            "VIDEO.BACKBONE.NUM_OUT_FEATURES=32",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("shape mismatch for backbone.conv5"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn forward_runs_an_official_pyth_checkpoint_directly() {
    let (o, diffs) = forward_fixture("r2p1d_mosi_joint", "r2p1d_mosi_joint.pyth", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(diffs[0].1 <= 5e-6, "__output__: {}", diffs[0].1);
}

#[test]
fn info_model_counts_parameters_and_matches_the_reference_figure() {
    let d = TempDir::new().unwrap();
    let cfg = fixture_config(d.path(), "r2d3d_mosi_joint");
    // Released widths of R2D3D-18; a small input keeps the forward quick.
    let o = tada(&[
        "info",
        "--model",
        cfg.to_str().unwrap(),
        "--set",
        "VIDEO.BACKBONE.NUM_FILTERS=[64,64,128,256,256]",
        "--set",
        "VIDEO.BACKBONE.NUM_OUT_FEATURES=256",
        "--set",
        "PRETRAIN.NUM_FRAMES=8",
        "--set",
        "DATA.TRAIN_CROP_SIZE=64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("parameters     14,059,849 (14,057,536 in the backbone)"),
        "{out}"
    );
    assert!(out.contains("output         [9, 9]"), "{out}");
    assert!(
        out.contains(
            "R2D3D-18 backbone: 14,057,536 parameters (docs/models.md#parameter-counts), equal"
        ),
        "{out}"
    );
}

/// A TAdaFormer file laid out as the reference's pool backbone files (no DATA section): `tada
/// info` probes it at INPUT_RES and says so; a crop that does not give its patch grid is a
/// one-line error naming the keys, not a panic inside the forward pass.
#[test]
fn info_model_on_a_pool_tadaformer_file_follows_input_res() {
    let d = TempDir::new().unwrap();
    let cfg = write(
        d.path(),
        "tadaformer_pool.yaml",
        "MODEL: {NAME: TAdaFormer_tiny}\nVIDEO:\n  BACKBONE:\n    META_ARCH: VisionTransformer\n    INPUT_RES: 48\n    PATCH_SIZE: 16\n    TUBLET_SIZE: 3\n    TUBLET_STRIDE: 2\n    NUM_FEATURES: 128\n    NUM_OUT_FEATURES: 128\n    DEPTH: 1\n    NUM_HEADS: 2\n    REDUCTION: 2\n    BRANCH: {NAME: TAdaFormerBlock, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 1}\n  HEAD: {NAME: BaseHead, NUM_CLASSES: 7}\n",
    );
    let o = tada(&["info", "--model", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "(the file sets no DATA.TRAIN_CROP_SIZE: probing at VIDEO.BACKBONE.INPUT_RES = 48)"
        ),
        "{out}"
    );
    assert!(out.contains("output         [1, 7]"), "{out}");

    // A crop set on purpose is kept, and one that misses the grid is refused in one line.
    let o = tada(&[
        "info",
        "--model",
        cfg.to_str().unwrap(),
        "--set",
        "DATA.TRAIN_CROP_SIZE=112",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("H = W = 48 for the 3×3 patch grid of VIDEO.BACKBONE.INPUT_RES = 48"),
        "{err}"
    );
    let o = tada(&[
        "info",
        "--model",
        cfg.to_str().unwrap(),
        "--set",
        "DATA.TRAIN_CROP_SIZE=63",
    ]);
    assert!(
        o.status.success(),
        "63 pixels still give 3 patches: {}",
        stderr(&o)
    );
}

#[test]
fn bench_model_times_a_training_step() {
    let d = TempDir::new().unwrap();
    let cfg = fixture_config(d.path(), "r2p1d_mosi_joint");
    let o = tada(&[
        "bench",
        "model",
        "--config",
        cfg.to_str().unwrap(),
        "--batch",
        "1",
        "--seconds",
        "0.1",
        "--set",
        "PRETRAIN.NUM_FRAMES=4",
        "--set",
        "DATA.TRAIN_CROP_SIZE=32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("[1, 9, 3, 4, 32, 32]")
            && out.lines().last().unwrap_or_default().ends_with("clips/s"),
        "{out}"
    );
}

#[test]
fn crops_draws_views_and_reports_overlap_with_and_without_weights() {
    use tada_augment::paramcrop::{ParamCropConfig, ParamNet};
    let d = TempDir::new().unwrap();
    let cfg = write(d.path(), "c.yaml", "VIDEO:\n  HEAD:\n    NUM_CLASSES: 5\nDATA:\n  NUM_INPUT_FRAMES: 4\n  TRAIN_CROP_SIZE: 32\nPRETRAIN:\n  PARAMCROP:\n    INPUT_FRAMES: 8\n");
    let run = |out: &str, extra: &[&str]| {
        let out = d.path().join(out);
        let mut args = vec![
            "crops",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--clips",
            "2",
        ];
        args.extend_from_slice(extra);
        let o = tada(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("crops.json")).unwrap())
                .unwrap();
        for k in 0..2 {
            let png = image::open(out.join(format!("clip{k}_views.png"))).unwrap();
            // 2 views x 4 frames of 32x32, enlarged to 128 px tiles.
            assert!(
                png.width() > 4 * 128 && png.height() > 2 * 128,
                "{}x{}",
                png.width(),
                png.height()
            );
            assert!(image::open(out.join(format!("clip{k}_source.png"))).is_ok());
        }
        j["clips"][0]["iou"].as_f64().unwrap()
    };
    let initial = run("init", &[]);
    assert!((0.0..=1.0).contains(&initial), "{initial}");

    // Trained weights: push the views' width centres apart through the last layer's bias.
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = ParamNet::new(&(vs.root() / "paramcrop"), &ParamCropConfig::default());
    let vars = vs.variables();
    tch::no_grad(|| {
        let bias = &vars["paramcrop.out.bias"];
        let _ = bias.get(4).fill_(5.0); // view 0: b_w -> right edge
        let _ = bias.get(9).fill_(-5.0); // view 1: b_w -> left edge
        let _ = bias.get(1).fill_(-5.0); // both views small
        let _ = bias.get(6).fill_(-5.0);
    });
    let named: Vec<(String, &tch::Tensor)> = vars.iter().map(|(k, v)| (k.clone(), v)).collect();
    let w = d.path().join("paramcrop.safetensors");
    tada::checkpoint::write_safetensors(&w, &named, &Default::default()).unwrap();
    let trained = run("trained", &["--weights", w.to_str().unwrap()]);
    assert!(
        trained < 0.05 && trained < initial,
        "trained views are far apart: {trained} vs {initial}"
    );

    // A weights file without ParamCrop tensors is refused by name.
    let other = d.path().join("other.safetensors");
    let t = tch::Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu));
    tada::checkpoint::write_safetensors(&other, &[("x".into(), &t)], &Default::default()).unwrap();
    let o = tada(&[
        "crops",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        d.path().join("x").to_str().unwrap(),
        "--weights",
        other.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("paramcrop.fc1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn os_errors_are_reported_once() {
    let o = tada(&[
        "import",
        "/nonexistent/x.pyth",
        "-o",
        "/tmp/never.safetensors",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("/nonexistent/x.pyth"), "{err}");
}

/// The help line of `flag` in `text`, if it has one with words after the flag's value name.
fn explained(text: &str, flag: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with(flag) && l.split_once('>').is_some_and(|(_, h)| h.trim().len() > 10)
    })
}

#[test]
fn every_command_explains_config_set_and_output() {
    // (command, takes --config and --set, writes a file or folder)
    let commands: [(&[&str], bool, bool); 16] = [
        (&["forward"], true, true),
        (&["test"], true, true),
        (&["pretrain"], true, true),
        (&["finetune"], true, true),
        (&["mosi-preview"], true, true),
        (&["crops"], true, true),
        (&["bench", "model"], true, false),
        (&["bench", "data"], true, false),
        (&["data", "check"], true, false),
        (&["config", "show"], true, false),
        (&["info"], false, false),
        (&["demo"], false, true),
        (&["import"], false, true),
        (&["localize"], true, true),
        (&["extract-features"], true, true),
        (&["data", "tiny-tal"], false, true),
    ];
    for (cmd, config, output) in commands {
        let o = tada(&[cmd, &["--help"][..]].concat());
        let help = stdout(&o);
        assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
        if config {
            assert!(explained(&help, "--config <FILE>"), "{cmd:?}:\n{help}");
        }
        // `info --set` overrides the config of `--model`.
        if config || cmd == ["info"] {
            assert!(explained(&help, "--set <KEY=VALUE>"), "{cmd:?}:\n{help}");
        }
        // Whatever writes takes -o/--output; the old --out is not advertised.
        if output {
            assert!(help.contains("-o, --output <"), "{cmd:?}:\n{help}");
        }
        assert!(!help.contains("--out "), "{cmd:?}:\n{help}");
    }
}

#[test]
fn pyslowfast_spellings_get_a_hint_and_a_usage_exit() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["pretrain", "--cfg", "x.yaml"],
            "tada uses --config FILE (PySlowFast's --cfg)",
        ),
        (
            &[
                "finetune",
                "--config",
                "x.yaml",
                "TRAIN.BATCH_SIZE",
                "8",
                "NUM_GPUS",
                "1",
            ],
            "use --set TRAIN.BATCH_SIZE=8 --set NUM_GPUS=1 (PySlowFast's trailing",
        ),
        (
            &["config", "show", "--config", "x.yaml", "OUTPUT_DIR"],
            "use --set OUTPUT_DIR=VALUE",
        ),
    ];
    for (args, hint) in cases {
        let o = tada(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("unexpected argument") && err.contains(hint),
            "{args:?}: {err}"
        );
    }
    // Other unexpected arguments keep clap's own tip.
    let err = stderr(&tada(&["config", "show", "--config", "x.yaml", "extra"]));
    assert!(!err.contains("--set"), "{err}");
}

#[test]
fn completions_are_generated_for_each_shell() {
    let o = tada(&["completions", "bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bash = stdout(&o);
    for word in [
        "pretrain",
        "mosi-preview",
        "--config",
        "--output",
        "--verbose",
    ] {
        assert!(bash.contains(word), "{word} missing in the bash script");
    }
    for shell in ["zsh", "fish"] {
        let o = tada(&["completions", shell]);
        assert!(
            o.status.success() && stdout(&o).contains("pretrain"),
            "{shell}"
        );
    }
    assert_eq!(tada(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn verbosity_flags_set_the_level_and_rust_log_wins() {
    let d = TempDir::new().unwrap();
    // OSS is a reference key tada does not use: one warning.
    let cfg = write(
        d.path(),
        "c.yaml",
        "VIDEO:\n  HEAD:\n    NUM_CLASSES: 7\nOSS:\n  ENABLE: false\n",
    );
    let cfg = cfg.to_str().unwrap();
    let run = |flags: &[&str], rust_log: Option<&str>| {
        let mut c = std::process::Command::new(crate::common::tada_bin());
        c.args(flags).args(["config", "show", "--config", cfg]);
        match rust_log {
            Some(v) => c.env("RUST_LOG", v),
            None => c.env_remove("RUST_LOG"),
        };
        let o = c.output().unwrap();
        assert!(o.status.success(), "{flags:?}: {}", stderr(&o));
        let err = stderr(&o);
        (err.contains("OSS"), err.contains("DEBUG"))
    };
    assert_eq!(run(&[], None), (true, false));
    assert_eq!(run(&["-v"], None), (true, true));
    assert_eq!(run(&["--verbose", "-v"], None), (true, true));
    assert_eq!(run(&["-q"], None), (true, false));
    assert_eq!(run(&["-v"], Some("error")), (false, false));
    assert_eq!(run(&[], Some("debug")), (true, true));
    let o = tada(&["-q", "-v", "info"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
