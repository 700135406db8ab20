//! Whole-model tests: parameter counts (docs/models.md#parameter-counts), training-mode gradients,
//! MoSINet folding, input checks and config errors that involve both backbone and head.

use tch::{nn, Device, Kind, Tensor};

use super::test_support::{config, tiny, truthy, R2D3D, R2P1D};
use super::*;
use crate::config::Config;

fn build(cfg: &Config) -> (nn::VarStore, VideoModel) {
    let vs = nn::VarStore::new(Device::Cpu);
    let m = VideoModel::new(&vs.root(), cfg).unwrap_or_else(|e| panic!("model builds: {e}"));
    (vs, m)
}

/// (backbone, total) trainable parameters; BN running statistics are buffers, not counted.
fn counts(cfg: &Config) -> (i64, i64) {
    let (vs, _) = build(cfg);
    let (mut backbone, mut total) = (0, 0);
    for (name, t) in vs.variables() {
        if t.requires_grad() {
            total += t.numel() as i64;
            if name.starts_with("backbone.") {
                backbone += t.numel() as i64;
            }
        }
    }
    (backbone, total)
}

#[test]
fn parameter_counts_match_backbones_md() {
    let base = |k: &'static str| ["VIDEO.HEAD.NAME=BaseHead", k];
    assert_eq!(counts(&config(R2D3D, &[])), (14_057_536, 14_059_849));
    assert_eq!(
        counts(&config(R2D3D, &base("VIDEO.HEAD.NUM_CLASSES=51"))).1,
        14_070_643
    );
    assert_eq!(
        counts(&config(R2D3D, &base("VIDEO.HEAD.NUM_CLASSES=101"))).1,
        14_083_493
    );
    assert_eq!(counts(&config(R2P1D, &[])), (14_365_477, 14_370_094));
    assert_eq!(
        counts(&config(R2P1D, &base("VIDEO.HEAD.NUM_CLASSES=51"))).1,
        14_391_640
    );
    assert_eq!(
        counts(&config(R2P1D, &base("VIDEO.HEAD.NUM_CLASSES=101"))).1,
        14_417_290
    );
}

fn assert_all_grads_useful(vs: &nn::VarStore, what: &str) {
    let vars = vs.variables();
    let mut trainable = 0;
    for (name, t) in &vars {
        if !t.requires_grad() {
            continue;
        }
        trainable += 1;
        let g = t.grad();
        assert!(g.defined(), "{what}: {name} has no gradient");
        assert!(
            truthy(&g.isfinite().all()),
            "{what}: {name} has a non-finite gradient"
        );
        assert!(
            g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{what}: {name} gradient is all zero"
        );
    }
    assert!(trainable > 10, "{what}: only {trainable} trainable tensors");
}

#[test]
fn tiny_models_train_forward_and_backward() {
    tch::manual_seed(7);
    for (yaml, label) in [(R2D3D, "R2D3D"), (R2P1D, "R(2+1)D")] {
        // Plain model (BaseHead) on one clip, and MoSINet on one item of two clips.
        let plain = [
            "MODEL.NAME=R2D3D",
            "VIDEO.HEAD.NAME=BaseHead",
            "VIDEO.HEAD.DROPOUT_RATE=0.2",
        ];
        let cases: [(&[&str], Vec<i64>, i64); 2] = [
            (&plain, vec![1, 3, 8, 32, 32], 1),
            (&[], vec![1, 2, 3, 8, 32, 32], 2),
        ];
        for (overrides, input, n) in cases {
            let cfg = tiny(yaml, overrides);
            let (vs, m) = build(&cfg);
            let xs = Tensor::randn(input.as_slice(), (Kind::Float, Device::Cpu));
            m.check_input(&xs).expect("valid input");
            let out = m.forward_t(&xs, true);
            let logits = out.predictions.single().expect("one prediction");
            let k = m.head().num_outputs();
            assert_eq!(logits.size(), [n, k], "{label} {overrides:?}");
            assert_eq!(out.features.size(), [n, 8]);
            assert!(truthy(&logits.isfinite().all()));
            let loss =
                (logits * Tensor::randn([n, k], (Kind::Float, Device::Cpu))).sum(Kind::Float);
            loss.backward();
            assert_all_grads_useful(&vs, &format!("{label} {overrides:?}"));
        }
    }
}

#[test]
fn mosi_net_folds_items_with_the_sample_index_fastest() {
    let cfg = tiny(R2P1D, &[]);
    let (_vs, m) = build(&cfg);
    assert!(m.is_mosi());
    let xs = Tensor::randn([2, 3, 3, 8, 32, 32], (Kind::Float, Device::Cpu));
    let (out, taps) = m.forward_collect(&xs, false);
    assert_eq!(out.predictions.names(), ["move_joint"]);
    let p = out.predictions.get("move_joint").expect("move_joint");
    assert_eq!(p.size(), [6, 9]);
    assert!(taps.get("backbone.conv5").is_some() && taps.get("head.out_joint").is_some());
    // Row b*N + n must be clip (b, n) run on its own (eval mode: no batch coupling).
    for (b, n) in [(0, 0), (0, 2), (1, 1)] {
        let clip = xs.get(b).get(n).unsqueeze(0).unsqueeze(0);
        let single = m.forward_t(&clip, false);
        let row = p.get(b * 3 + n);
        let diff = (single.predictions.get("move_joint").expect("row").get(0) - row)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "clip ({b}, {n}): {diff}");
    }
}

#[test]
fn input_shapes_are_checked() {
    let (_vs, mosi) = build(&tiny(R2D3D, &[]));
    let five = Tensor::zeros([1, 3, 8, 32, 32], (Kind::Float, Device::Cpu));
    let six = Tensor::zeros([1, 2, 3, 8, 32, 32], (Kind::Float, Device::Cpu));
    assert!(matches!(
        mosi.check_input(&five),
        Err(ModelError::Input { .. })
    ));
    assert!(mosi.check_input(&six).is_ok());
    let (_vs, plain) = build(&tiny(R2D3D, &["MODEL.NAME=R2D3D"]));
    assert!(plain.check_input(&five).is_ok());
    assert!(plain.check_input(&six).is_err());
    let gray = Tensor::zeros([1, 1, 8, 32, 32], (Kind::Float, Device::Cpu));
    assert!(plain.check_input(&gray).is_err());
}

#[test]
fn bn_freeze_keeps_running_statistics() {
    for (freeze, changes) in [(false, true), (true, false)] {
        let f = format!("BN.FREEZE={freeze}");
        let (vs, m) = build(&tiny(R2D3D, &[&f]));
        let before = vs.variables()["backbone.conv1.a_bn.running_mean"].copy();
        let xs = Tensor::randn([1, 2, 3, 8, 32, 32], (Kind::Float, Device::Cpu)) + 3.0;
        let _ = m.forward_t(&xs, true);
        let after = &vs.variables()["backbone.conv1.a_bn.running_mean"];
        let moved = (after - before).abs().max().double_value(&[]) > 0.0;
        assert_eq!(moved, changes, "BN.FREEZE={freeze}");
    }
}

fn build_error(cfg: &Config) -> ModelError {
    let vs = nn::VarStore::new(Device::Cpu);
    match VideoModel::new(&vs.root(), cfg) {
        Ok(_) => panic!("should not build"),
        Err(e) => e,
    }
}

#[test]
fn model_level_config_errors_name_the_key() {
    let e = build_error(&tiny(R2D3D, &["VIDEO.BACKBONE.NUM_OUT_FEATURES=16"]));
    assert_eq!(e.key(), Some("VIDEO.BACKBONE.NUM_OUT_FEATURES"), "{e}");
    let mut cfg = tiny(R2D3D, &[]);
    cfg.video.backbone.num_out_features = None;
    let e = build_error(&cfg);
    assert!(
        matches!(&e, ModelError::Key(k) if k.key == "VIDEO.BACKBONE.NUM_OUT_FEATURES"),
        "{e}"
    );
    let e = build_error(&tiny(R2D3D, &["VIDEO.BACKBONE.DEPTH=7"]));
    assert_eq!(e.key(), Some("VIDEO.BACKBONE.DEPTH"), "{e}");
    let e = build_error(&tiny(R2D3D, &["VIDEO.BACKBONE.NUM_FILTERS=[4, 8, 8]"]));
    assert_eq!(e.key(), Some("VIDEO.BACKBONE.NUM_FILTERS"), "{e}");
    // A ResNet config under the ConvNeXt meta-architecture: its DEPTH is the wrong kind.
    let e = build_error(&tiny(R2D3D, &["VIDEO.BACKBONE.META_ARCH=ConvNeXt"]));
    assert_eq!(e.key(), Some("VIDEO.BACKBONE.DEPTH"), "{e}");
}
