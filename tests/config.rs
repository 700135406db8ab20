//! Config loading: inheritance, overrides, and one test per kind of bad input, each asserting
//! that the message names the culprit (file and key).

use tada::config::schema::{LrPolicy, OptimMethod};
use tada::config::{load, load_str, ConfigError, Source};
use tempfile::TempDir;

use crate::common::{fixtures_dir, write};

const MIN: &str = "VIDEO:\n  HEAD:\n    NUM_CLASSES: 5\n";

fn err_text(e: &ConfigError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "error must be one line: {s:?}");
    s
}

#[test]
fn base_run_and_model_precedence() {
    let d = TempDir::new().unwrap();
    write(d.path(), "pool/model.yaml", "MODEL:\n  NAME: FromModel\nTRAIN:\n  BATCH_SIZE: 7\nOPTIMIZER:\n  BASE_LR: 0.5\n  MAX_EPOCH: 19\n");
    write(d.path(), "pool/run.yaml", "MODEL:\n  NAME: FromRun\nOPTIMIZER:\n  BASE_LR: 0.25\nVIDEO:\n  HEAD:\n    NUM_CLASSES: 3\n");
    let top = write(
        d.path(),
        "projects/x/top.yaml",
        "_BASE_RUN: ../../pool/run.yaml\n_BASE_MODEL: ../../pool/model.yaml\nOPTIMIZER:\n  BASE_LR: 0.125\n",
    );
    let c = load(&top, &[]).unwrap();
    assert_eq!(c.config.model.name, "FromRun", "run file beats model file");
    assert_eq!(c.config.train.batch_size, 7, "model file beats defaults");
    assert_eq!(c.config.optimizer.base_lr, 0.125, "top file beats both");
    assert_eq!(c.config.optimizer.max_epoch, 19);
    assert_eq!(
        c.sources.of("OPTIMIZER.MAX_EPOCH"),
        Source::File(d.path().join("projects/x/../../pool/model.yaml"))
    );
    assert_eq!(c.sources.of("TRAIN.EVAL_PERIOD"), Source::Default);
}

#[test]
fn base_chain_is_relative_to_each_including_file_and_lists_replace() {
    let d = TempDir::new().unwrap();
    write(
        d.path(),
        "a/base.yaml",
        &format!("{MIN}DATA:\n  MEAN: [0.1, 0.2, 0.3]\n  STD: [1, 1, 1]\n"),
    );
    write(
        d.path(),
        "a/b/mid.yaml",
        "_BASE: ../base.yaml\nDATA:\n  MEAN: [0.5, 0.5, 0.5]\n",
    );
    let top = write(
        d.path(),
        "a/b/c/top.yaml",
        "_BASE: ../mid.yaml\nDATA:\n  NUM_INPUT_FRAMES: 4\n",
    );
    let c = load(&top, &[]).unwrap().config;
    assert_eq!(c.data.mean, vec![0.5; 3]);
    assert_eq!(c.data.std, vec![1.0; 3]);
    assert_eq!(c.data.num_input_frames, 4);
}

#[test]
fn overrides_are_typed_and_win() {
    let d = TempDir::new().unwrap();
    let f = write(d.path(), "c.yaml", MIN);
    let sets = [
        "TRAIN.BATCH_SIZE=8",
        "OPTIMIZER.BASE_LR=1e-2",
        "OPTIMIZER.OPTIM_METHOD=sgd",
        "OUTPUT_DIR=2024",
        "DATA.MEAN=[0.4, 0.4, 0.4]",
    ]
    .map(String::from);
    let c = load(&f, &sets).unwrap();
    assert_eq!(c.config.train.batch_size, 8);
    assert_eq!(c.config.optimizer.base_lr, 0.01);
    assert_eq!(c.config.optimizer.optim_method, OptimMethod::Sgd);
    assert_eq!(c.config.output_dir, "2024", "string keys keep the text");
    assert_eq!(c.config.data.mean, vec![0.4; 3]);
    assert_eq!(
        c.sources.of("TRAIN.BATCH_SIZE"),
        Source::Override("TRAIN.BATCH_SIZE=8".into())
    );
}

#[test]
fn pyyaml_style_numbers_in_strings_are_numbers() {
    let c = load_str(
        &format!("{MIN}OPTIMIZER:\n  WEIGHT_DECAY: \"1e-4\"\n  LR_POLICY: cosine_v2\n"),
        "x.yaml",
        &[],
    )
    .unwrap();
    assert_eq!(c.config.optimizer.weight_decay, 1e-4);
    assert_eq!(c.config.optimizer.lr_policy, LrPolicy::CosineV2);
}

#[test]
fn dataset_names_are_case_insensitive() {
    let c = load_str(
        &format!("{MIN}TRAIN:\n  DATASET: UCF101\nTEST:\n  DATASET: \"\"\n"),
        "x.yaml",
        &[],
    )
    .unwrap();
    assert_eq!(c.config.train.dataset.map(|d| d.name()), Some("ucf101"));
    assert_eq!(c.config.test.dataset, None);
}

#[test]
fn unknown_key_names_file_and_suggests() {
    let d = TempDir::new().unwrap();
    let f = write(
        d.path(),
        "typo.yaml",
        &format!("{MIN}OPTIMIZER:\n  BASE_LRR: 0.1\n"),
    );
    let e = err_text(&load(&f, &[]).unwrap_err());
    assert!(
        e.contains("OPTIMIZER.BASE_LRR") && e.contains("typo.yaml"),
        "{e}"
    );
    assert!(e.contains("did you mean OPTIMIZER.BASE_LR?"), "{e}");
}

#[test]
fn key_in_the_wrong_section_suggests_its_home() {
    let e =
        err_text(&load_str(&format!("{MIN}TRAIN:\n  BASE_LR: 0.1\n"), "w.yaml", &[]).unwrap_err());
    assert!(
        e.contains("TRAIN.BASE_LR") && e.contains("OPTIMIZER.BASE_LR"),
        "{e}"
    );
}

#[test]
fn unknown_override_key_is_named() {
    let d = TempDir::new().unwrap();
    let f = write(d.path(), "c.yaml", MIN);
    let e = err_text(&load(&f, &["TRAIN.BATCH_SIZ=3".into()]).unwrap_err());
    assert!(
        e.contains("TRAIN.BATCH_SIZ") && e.contains("--set") && e.contains("TRAIN.BATCH_SIZE"),
        "{e}"
    );
    let e = err_text(&load(&f, &["TRAIN.BATCH_SIZE".into()]).unwrap_err());
    assert!(e.contains("KEY=VALUE"), "{e}");
}

#[test]
fn wrong_type_names_key_and_file() {
    let d = TempDir::new().unwrap();
    let f = write(
        d.path(),
        "types.yaml",
        &format!("{MIN}TRAIN:\n  BATCH_SIZE: lots\n"),
    );
    let e = err_text(&load(&f, &[]).unwrap_err());
    assert!(
        e.contains("TRAIN.BATCH_SIZE") && e.contains("types.yaml"),
        "{e}"
    );

    let e = err_text(
        &load(
            &f,
            &[
                "TRAIN.BATCH_SIZE=4".into(),
                "OPTIMIZER.OPTIM_METHOD=adamm".into(),
            ],
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("OPTIMIZER.OPTIM_METHOD") && e.contains("--set OPTIMIZER.OPTIM_METHOD=adamm"),
        "{e}"
    );
    assert!(e.contains("adamw"), "lists the choices: {e}");

    let e = err_text(
        &load_str(&format!("{MIN}DATA:\n  MEAN: [a, b, c]\n"), "m.yaml", &[]).unwrap_err(),
    );
    assert!(e.contains("DATA.MEAN") && e.contains("m.yaml"), "{e}");
}

#[test]
fn missing_required_value_is_named() {
    let e = err_text(&load_str("TRAIN:\n  BATCH_SIZE: 4\n", "req.yaml", &[]).unwrap_err());
    assert!(e.contains("VIDEO.HEAD.NUM_CLASSES"), "{e}");
    assert!(load_str("{}", "x.yaml", &["VIDEO.HEAD.NUM_CLASSES=4".into()]).is_ok());
}

#[test]
fn invalid_value_names_key_and_file() {
    let d = TempDir::new().unwrap();
    let f = write(
        d.path(),
        "bad.yaml",
        &format!("{MIN}DATA:\n  MEAN: [0.4, 0.4]\n"),
    );
    let e = err_text(&load(&f, &[]).unwrap_err());
    assert!(
        e.contains("DATA.MEAN") && e.contains("bad.yaml") && e.contains("channel"),
        "{e}"
    );
    let e = err_text(
        &load(
            &f,
            &["DATA.MEAN=[1,1,1]".into(), "TRAIN.BATCH_SIZE=0".into()],
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("TRAIN.BATCH_SIZE") && e.contains("--set TRAIN.BATCH_SIZE=0"),
        "{e}"
    );
}

#[test]
fn missing_base_file_is_named() {
    let d = TempDir::new().unwrap();
    let f = write(d.path(), "child.yaml", "_BASE_RUN: ../nowhere/run.yaml\n");
    let e = err_text(&load(&f, &[]).unwrap_err());
    assert!(
        e.contains("child.yaml") && e.contains("_BASE_RUN") && e.contains("nowhere/run.yaml"),
        "{e}"
    );
}

#[test]
fn include_cycle_is_detected() {
    let d = TempDir::new().unwrap();
    write(d.path(), "a.yaml", "_BASE: b.yaml\n");
    write(d.path(), "b.yaml", "_BASE: c.yaml\n");
    write(d.path(), "c.yaml", "_BASE: a.yaml\n");
    let e = err_text(&load(&d.path().join("a.yaml"), &[]).unwrap_err());
    assert!(
        e.contains("cycle") && e.contains("a.yaml -> ") && e.contains("c.yaml"),
        "{e}"
    );
    let own = write(d.path(), "self.yaml", "_BASE: self.yaml\n");
    assert!(err_text(&load(&own, &[]).unwrap_err()).contains("cycle"));
}

#[test]
fn unreadable_and_malformed_files_are_named() {
    let d = TempDir::new().unwrap();
    let e = err_text(&load(&d.path().join("absent.yaml"), &[]).unwrap_err());
    assert!(e.contains("absent.yaml"), "{e}");
    let f = write(d.path(), "broken.yaml", "TRAIN:\n  BATCH_SIZE: [1, 2\n");
    let e = err_text(&load(&f, &[]).unwrap_err());
    assert!(e.contains("broken.yaml") && e.contains("YAML"), "{e}");
    let f = write(d.path(), "list.yaml", "- 1\n- 2\n");
    assert!(err_text(&load(&f, &[]).unwrap_err()).contains("list.yaml"));
}

#[test]
fn unused_reference_keys_are_accepted_and_reported() {
    let c = load_str(
        &format!("{MIN}OSS:\n  ENABLE: false\nNUM_SHARDS: 2\nBN:\n  SYNC: true\nPAI: false\n"),
        "r.yaml",
        &[],
    )
    .unwrap();
    assert_eq!(c.ignored_keys, vec!["OSS", "NUM_SHARDS", "PAI"]);
    // BN.SYNC is read now: SyncBatchNorm in distributed runs (docs/distributed.md).
    assert!(c.config.bn.sync);
}

#[test]
fn every_fixture_config_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("tests/fixtures") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(cfg) = v.get("cfg") else { continue };
        // JSON is YAML: the fixture's full merged reference config is a valid tada config.
        let c = load_str(&cfg.to_string(), &path.display().to_string(), &[])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // One class count, or one per head of the EPIC two-head models.
        let head = &c.config.video.head;
        assert!(head.num_classes.is_some() != head.num_classes_per_head.is_some());
        n += 1;
    }
    assert!(n >= 7, "expected the model fixtures, found {n}");
}

#[test]
fn resolved_config_is_written_and_reloads_identically() {
    let d = TempDir::new().unwrap();
    let f = write(
        d.path(),
        "c.yaml",
        &format!("{MIN}OPTIMIZER:\n  BASE_LR: 0.0123\n"),
    );
    let c = load(&f, &["TRAIN.BATCH_SIZE=3".into()]).unwrap();
    let out = c.write_resolved(d.path()).unwrap();
    let again = load(&out, &[]).unwrap();
    assert_eq!(again.config, c.config);
}

#[test]
fn bases_need_a_file_to_resolve_against() {
    let e = err_text(&load_str("_BASE: x.yaml\n", "embedded", &[]).unwrap_err());
    assert!(e.contains("embedded") && e.contains("_BASE"), "{e}");
    let d = TempDir::new().unwrap();
    let f = write(d.path(), "n.yaml", "_BASE: 3\n");
    let e = err_text(&load(&f, &[]).unwrap_err());
    assert!(
        e.contains("n.yaml") && e.contains("_BASE must be a path"),
        "{e}"
    );
}

#[test]
fn a_section_written_as_a_list_or_scalar_is_a_type_error() {
    let d = TempDir::new().unwrap();
    for (text, key) in [
        (format!("{MIN}TRAIN: [bf16]\n"), "TRAIN"),
        (format!("{MIN}TRAIN: 5\n"), "TRAIN"),
        ("VIDEO:\n  HEAD: [BaseHead]\n".to_string(), "VIDEO.HEAD"),
    ] {
        let f = write(d.path(), "s.yaml", &text);
        let e = err_text(&load(&f, &[]).unwrap_err());
        assert!(
            e.contains(&format!("key {key} ")) && e.contains("s.yaml") && e.contains("mapping"),
            "{text:?}: {e}"
        );
        // A later key of the section cannot hide it either.
        let e = err_text(&load(&f, &["TRAIN.BATCH_SIZE=8".into()]).unwrap_err());
        assert!(e.contains("s.yaml"), "{e}");
    }
    // In a base, under a file that writes the section properly.
    write(d.path(), "base.yaml", &format!("{MIN}TRAIN: [bf16]\n"));
    let top = write(
        d.path(),
        "top.yaml",
        "_BASE: base.yaml\nTRAIN:\n  BATCH_SIZE: 8\n",
    );
    let e = err_text(&load(&top, &[]).unwrap_err());
    assert!(e.contains("TRAIN") && e.contains("base.yaml"), "{e}");

    // On the command line: a mapping sets keys of the section, anything else is refused.
    let f = write(
        d.path(),
        "ok.yaml",
        &format!("{MIN}TRAIN:\n  EVAL_PERIOD: 3\n"),
    );
    let e = err_text(&load(&f, &["TRAIN=[bf16]".into()]).unwrap_err());
    assert!(
        e.contains("TRAIN") && e.contains("--set TRAIN=[bf16]"),
        "{e}"
    );
    let c = load(&f, &["TRAIN={BATCH_SIZE: 8}".into()]).unwrap().config;
    assert_eq!((c.train.batch_size, c.train.eval_period), (8, 3));
}

#[test]
fn an_empty_output_dir_is_refused() {
    let e = err_text(&load_str(MIN, "o.yaml", &["OUTPUT_DIR=".into()]).unwrap_err());
    assert!(
        e.contains("OUTPUT_DIR") && e.contains("--set OUTPUT_DIR="),
        "{e}"
    );
    let e = err_text(&load_str(&format!("{MIN}OUTPUT_DIR: ''\n"), "o.yaml", &[]).unwrap_err());
    assert!(e.contains("OUTPUT_DIR") && e.contains("o.yaml"), "{e}");
}

#[test]
fn sizes_beyond_the_documented_limits_are_refused_by_key() {
    assert!(load_str(MIN, "ok.yaml", &[]).is_ok(), "the defaults fit");
    for (set, key) in [
        ("DATA_LOADER.NUM_WORKERS=257", "DATA_LOADER.NUM_WORKERS"),
        ("TRAIN.BATCH_SIZE=65537", "TRAIN.BATCH_SIZE"),
        ("TEST.BATCH_SIZE=100000000", "TEST.BATCH_SIZE"),
        ("DATA.TRAIN_CROP_SIZE=100000", "DATA.TRAIN_CROP_SIZE"),
        ("DATA.TEST_SCALE=5000", "DATA.TEST_SCALE"),
        (
            "DATA.TRAIN_JITTER_SCALES=[256, 100000]",
            "DATA.TRAIN_JITTER_SCALES",
        ),
        ("PRETRAIN.STANDARD_SIZE=100000", "PRETRAIN.STANDARD_SIZE"),
        ("DATA.NUM_INPUT_FRAMES=1000000", "DATA.NUM_INPUT_FRAMES"),
        (
            "VIDEO.BACKBONE.NUM_FILTERS=[64, 1000000]",
            "VIDEO.BACKBONE.NUM_FILTERS",
        ),
        (
            "VIDEO.HEAD.NUM_CLASSES=100000000000",
            "VIDEO.HEAD.NUM_CLASSES",
        ),
        (
            "PRETRAIN.CONTRASTIVE.QUEUE_SIZE=100000000",
            "PRETRAIN.CONTRASTIVE.QUEUE_SIZE",
        ),
        // Each within its bound; a batch of such clips is terabytes.
        ("DATA.NUM_INPUT_FRAMES=4096", "DATA.TRAIN_CROP_SIZE"),
    ] {
        let mut overrides = vec![set.to_string()];
        if set.starts_with("DATA.NUM_INPUT_FRAMES=4096") {
            overrides.push("DATA.TRAIN_CROP_SIZE=1024".into());
        }
        let e = err_text(&load_str(MIN, "m.yaml", &overrides).unwrap_err());
        assert!(e.contains(key) && e.contains("--set"), "{set}: {e}");
    }
    let e = err_text(
        &load_str(
            "VIDEO:\n  HEAD: {NUM_CLASSES: 5}\n  BACKBONE: {NUM_OUT_FEATURES: 2048}\n",
            "h.yaml",
            &["VIDEO.HEAD.NUM_CLASSES=1000000".into()],
        )
        .unwrap_err(),
    );
    assert!(e.contains("1000000 classes x 2048 features"), "{e}");
}

/// An empty value means "not given here", as the reference's configs use it (11 of them write
/// `OUTPUT_DIR:`): the key keeps its base's value, or the default.
#[test]
fn an_empty_value_keeps_the_base_or_default_value() {
    let d = TempDir::new().unwrap();
    write(
        d.path(),
        "base.yaml",
        &format!("{MIN}TRAIN: {{BATCH_SIZE: 12}}\nOUTPUT_DIR: out/base\n"),
    );
    let top = write(
        d.path(),
        "top.yaml",
        "_BASE: base.yaml\nTRAIN:\n  BATCH_SIZE:\n  EVAL_PERIOD: ~\nOUTPUT_DIR:\nTEST:\nDATA: {SAMPLING_RATE: null}\n",
    );
    let c = load(&top, &[]).unwrap();
    assert_eq!(c.config.train.batch_size, 12);
    assert_eq!(c.config.train.eval_period, 10);
    assert_eq!(c.config.output_dir, "out/base");
    assert_eq!(c.config.data.sampling_rate, 4);
    let alone = write(d.path(), "alone.yaml", &format!("{MIN}OUTPUT_DIR:\n"));
    assert_eq!(load(&alone, &[]).unwrap().config.output_dir, "runs/alone");
    // PyYAML's reading of plain scalars: `y` is the MoSI y-only data mode, not `true`.
    let y = write(
        d.path(),
        "y.yaml",
        &format!("{MIN}PRETRAIN: {{DATA_MODE: y}}\n"),
    );
    let c = load(&y, &[]).unwrap();
    assert_eq!(format!("{:?}", c.config.pretrain.data_mode), "Y");
    // `1e-1` and `1.0e30` are strings to PyYAML, in lists too; number keys read them as numbers.
    let sci = write(
        d.path(),
        "sci.yaml",
        &format!("{MIN}DATA: {{MEAN: [1e-1, 0.5, 0.5]}}\nOPTIMIZER: {{BASE_LR: 1e-4}}\n"),
    );
    let c = load(&sci, &[]).unwrap();
    assert_eq!(c.config.data.mean, [0.1, 0.5, 0.5]);
    assert_eq!(c.config.optimizer.base_lr, 1e-4);
}

/// A localisation config (BMN's task on its EPIC-Kitchens features dataset, with several
/// feature folders) loads, shows as written, its unused reference keys in the one warning, and
/// builds; a typo in a component name is still a typo.
#[test]
fn a_localisation_config_loads_shows_and_builds() {
    let d = TempDir::new().unwrap();
    let f = write(
        d.path(),
        "bmn_task.yaml",
        "TASK_TYPE: localization\nTRAIN: {DATASET: Epickitchen100Localization}\nSOLVER: {BASE_LR: 0.1}\nDATA: {DATA_ROOT_DIR: [/a, /b], TEMPORAL_SCALE: 8, DURATION_SCALE: 4, NUM_INPUT_CHANNELS: 8, LOAD_TYPE: numpy}\nVIDEO:\n  DIM1D: 8\n  DIM2D: 8\n  DIM3D: 8\n  BACKBONE_LAYER: 1\n  BACKBONE_GROUPS_NUM: 2\n  BACKBONE: {META_ARCH: SimpleLocalizationConv, DIM_HEAD: 64}\n  HEAD: {NAME: BaseBMN, NUM_SAMPLE: 2, NUM_SAMPLE_PERBIN: 1, BOUNDARY_RATIO: 0.5}\n",
    );
    let c = load(&f, &[]).unwrap();
    assert!(c
        .ignored_keys
        .contains(&"VIDEO.BACKBONE.DIM_HEAD".to_string()));
    assert!(c.ignored_keys.contains(&"SOLVER".to_string()));
    assert_eq!(c.config.data.data_root_dir.all(), ["/a", "/b"]);
    // `--set` takes the list too; a plain path stays one folder.
    let over = load(&f, &["DATA.DATA_ROOT_DIR=[/x, /y]".to_string()]).unwrap();
    assert_eq!(over.config.data.data_root_dir.all(), ["/x", "/y"]);
    let one = load(&f, &["DATA.DATA_ROOT_DIR=/z".to_string()]).unwrap();
    assert_eq!(one.config.data.data_root_dir.all(), ["/z"]);
    let shown = c.to_yaml();
    for part in [
        "TASK_TYPE: localization",
        "DATASET: epickitchen100localization",
        "- /a",
        "LOAD_TYPE: numpy",
    ] {
        assert!(shown.contains(part), "{part} not shown:\n{shown}");
    }
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    tada::models::VideoModel::new(&vs.root(), &c.config).unwrap();
    let typo = write(
        d.path(),
        "typo.yaml",
        "VIDEO:\n  HEAD: {NUM_CLASSES: 3}\n  BACKBONE: {BRANCH: {NAME: CSNBrnch}}\n",
    );
    assert!(err_text(&load(&typo, &[]).unwrap_err()).contains("CSNBrnch"));
}

/// With `TADA_REFERENCE` pointing at a checkout of alibaba-mmai-research/TAdaConv, every one of
/// its project configs loads and builds its network (the EPIC-Kitchens CSN and ViViT-FE
/// configs and the BMN ones too, whose task or dataset tada does not run yet) with the
/// reference's parameter counts (whole model and backbone; tests/data/reference_param_counts.json, made by the
/// reference's build_model through scripts/fixtures/param_counts.py). The repo carries no copy
/// of the reference's files.
#[test]
fn every_reference_project_config_loads() {
    let Some(root) = std::env::var_os("TADA_REFERENCE") else {
        eprintln!("skipped: set TADA_REFERENCE to a checkout of TAdaConv to walk its configs");
        return;
    };
    // Building 55 networks draws from libtorch's global generator, which the training tests seed
    // and draw from (initialisation, dropout): not at the same time as they run.
    let _serial = crate::common::serial();
    let mut files = Vec::new();
    let root = std::path::PathBuf::from(root);
    let mut todo = vec![root.join("configs/projects")];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    let counts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::common::repo().join("tests/data/reference_param_counts.json"),
        )
        .unwrap(),
    )
    .unwrap();
    files.sort();
    for f in &files {
        let c = load(f, &[]).unwrap_or_else(|e| panic!("{}: {}", f.display(), err_text(&e)));
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let want = &counts["configs"][&rel];
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _model = tada::models::VideoModel::new(&vs.root(), &c.config)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let count = |prefix: &str| tada::models::summary::parameter_count(&vs, prefix);
        assert_eq!(
            (count(""), count("backbone.")),
            (
                want["parameters"].as_i64().unwrap(),
                want["backbone"].as_i64().unwrap()
            ),
            "{rel}: parameters (model, backbone) against the reference's"
        );
    }
    assert_eq!(files.len(), 57);
}
