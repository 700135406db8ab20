use tch::{nn, Device, Kind, Tensor};

use super::*;
use crate::models::test_support::{config, truthy, R2D3D};

fn pretrain(decouple: bool, data_mode: &str, zero_out: bool) -> PretrainConfig {
    let d = format!("PRETRAIN.DECOUPLE={decouple}");
    let m = format!("PRETRAIN.DATA_MODE={data_mode}");
    let z = format!("PRETRAIN.ZERO_OUT={zero_out}");
    config(R2D3D, &[&d, &m, &z]).pretrain
}

#[test]
fn mosi_head_sizes_match_the_reference_table() {
    use MoSIHeadKind::{Joint, OnlyX, OnlyY};
    let cases = [
        (Joint, 5, true, "xy", false, 9),
        (Joint, 5, true, "xy", true, 8),
        (Joint, 5, false, "xy", false, 25),
        (Joint, 5, false, "xy", true, 25),
        (Joint, 3, true, "xy", false, 5),
        (Joint, 5, true, "x", false, 5),
        (OnlyX, 5, true, "x", false, 5),
        (OnlyX, 5, true, "x", true, 4),
        (OnlyY, 5, true, "y", true, 4),
        (OnlyY, 3, true, "y", false, 3),
    ];
    for (kind, n, decouple, mode, zero_out, k) in cases {
        let p = pretrain(decouple, mode, zero_out);
        let got = mosi_num_classes(kind, n, &p).expect("valid head");
        assert_eq!(
            got, k,
            "{kind:?} n={n} decouple={decouple} {mode} zero_out={zero_out}"
        );
    }
    let e = mosi_num_classes(OnlyX, 1, &pretrain(true, "x", true)).expect_err("no classes");
    assert_eq!(e.key(), Some(KEY_NUM_CLASSES));
}

fn head(overrides: &[&str], dim: i64) -> (nn::VarStore, Head) {
    let cfg = config(R2D3D, overrides);
    let vs = nn::VarStore::new(Device::Cpu);
    let h = Head::new(
        &(vs.root() / "head"),
        &cfg.video.head,
        dim,
        &cfg.pretrain,
        &cfg.bn,
    );
    (vs, h.unwrap_or_else(|e| panic!("{overrides:?}: {e}")))
}

fn names(vs: &nn::VarStore) -> Vec<String> {
    let mut v: Vec<String> = vs.variables().into_keys().collect();
    v.sort();
    v
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn mosi_joint_eval_is_softmax_then_mean() {
    let (vs, h) = head(&[], 8);
    assert_eq!(names(&vs), ["head.out_joint.bias", "head.out_joint.weight"]);
    let xs = Tensor::randn([6, 8, 2, 3, 3], (Kind::Float, Device::Cpu));
    let mut taps = Taps::collecting();
    let out = h.forward_taps(&xs, false, &mut taps);
    let logits = taps.get("head.out_joint").expect("tap");
    assert_eq!(logits.size(), [6, 1, 1, 1, 9]);
    let Predictions::Tensor(p) = &out.predictions else {
        panic!("the joint head returns an unnamed tensor");
    };
    assert_eq!(p.size(), [6, 9]);
    let expected = logits.reshape([6, 9]).softmax(-1, None);
    assert!(max_abs_diff(p, &expected) < 1e-6);
    let pooled = xs.mean_dim([2, 3, 4].as_slice(), false, None);
    assert!(max_abs_diff(&out.features, &pooled) < 1e-6);
    // Training mode: raw logits, flattened.
    let out = h.forward_t(&xs, true);
    assert_eq!(out.predictions.single().map(Tensor::size), Some(vec![6, 9]));
}

#[test]
fn mosi_only_y_uses_the_out_x_layer_and_names_move_y() {
    let (vs, h) = head(
        &[
            "VIDEO.HEAD.NAME=MoSIHeadOnlyY",
            "PRETRAIN.DATA_MODE=y",
            "PRETRAIN.ZERO_OUT=true",
        ],
        8,
    );
    assert_eq!(names(&vs), ["head.out_x.bias", "head.out_x.weight"]);
    let out = h.forward_t(
        &Tensor::randn([2, 8, 1, 2, 2], (Kind::Float, Device::Cpu)),
        false,
    );
    assert_eq!(out.predictions.names(), ["move_y"]);
    let p = out.predictions.get("move_y").expect("move_y");
    assert_eq!(p.size(), [2, 4]);
    let sums = p.sum_dim_intlist([1].as_slice(), false, None);
    assert!(max_abs_diff(&sums, &Tensor::ones([2], (Kind::Float, Device::Cpu))) < 1e-6);

    let (_, h) = head(
        &["VIDEO.HEAD.NAME=MoSIHeadOnlyX", "PRETRAIN.DATA_MODE=x"],
        8,
    );
    let out = h.forward_t(
        &Tensor::randn([2, 8, 1, 2, 2], (Kind::Float, Device::Cpu)),
        false,
    );
    assert_eq!(out.predictions.names(), ["move_x"]);
    assert_eq!(h.num_outputs(), 5);
}

#[test]
fn base_head_pools_5d_and_takes_2d_as_is() {
    let (vs, h) = head(&["VIDEO.HEAD.NAME=BaseHead", "VIDEO.HEAD.NUM_CLASSES=7"], 8);
    assert_eq!(names(&vs), ["head.out.bias", "head.out.weight"]);
    let x2 = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
    let out = h.forward_t(&x2, false);
    assert!(max_abs_diff(&out.features, &x2) == 0.0);
    let w = &vs.variables()["head.out.weight"];
    let b = &vs.variables()["head.out.bias"];
    let expected = x2.linear(w, Some(b)).softmax(-1, None);
    let p = out.predictions.single().expect("one tensor");
    assert!(max_abs_diff(p, &expected) < 1e-6);

    let x5 = Tensor::randn([3, 8, 2, 2, 2], (Kind::Float, Device::Cpu));
    let out = h.forward_t(&x5, false);
    assert!(
        max_abs_diff(
            &out.features,
            &x5.mean_dim([2, 3, 4].as_slice(), false, None)
        ) < 1e-6
    );
    assert_eq!(out.predictions.single().map(Tensor::size), Some(vec![3, 7]));
}

#[test]
fn sigmoid_activation() {
    let (_, h) = head(
        &[
            "VIDEO.HEAD.NAME=BaseHead",
            "VIDEO.HEAD.ACTIVATION=sigmoid",
            "VIDEO.HEAD.DROPOUT_RATE=0.0",
        ],
        4,
    );
    let x = Tensor::randn([2, 4], (Kind::Float, Device::Cpu));
    let raw = h.forward_t(&x, true);
    let act = h.forward_t(&x, false);
    let raw = raw.predictions.single().expect("raw").sigmoid();
    let act = act.predictions.single().expect("activated").shallow_clone();
    assert!(max_abs_diff(&raw, &act) < 1e-7);
}

#[test]
fn transformer_head_keys_and_init() {
    let (vs, h) = head(
        &[
            "VIDEO.HEAD.NAME=TransformerHead",
            "VIDEO.HEAD.PRE_LOGITS=true",
            "VIDEO.HEAD.DROPOUT_RATE=0.0",
            "VIDEO.HEAD.ACTIVATION=identity",
        ],
        64,
    );
    assert_eq!(
        names(&vs),
        [
            "head.linear.bias",
            "head.linear.weight",
            "head.pre_logits.fc.bias",
            "head.pre_logits.fc.weight"
        ]
    );
    let vars = vs.variables();
    assert!(truthy(&vars["head.linear.bias"].eq(0.0).all()));
    let std = vars["head.pre_logits.fc.weight"]
        .std(true)
        .double_value(&[]);
    assert!((std - 0.02).abs() < 2e-3, "std {std}");
    let x = Tensor::randn([3, 64], (Kind::Float, Device::Cpu));
    let mut taps = Taps::collecting();
    let out = h.forward_taps(&x, false, &mut taps);
    let expected = x
        .linear(
            &vars["head.pre_logits.fc.weight"],
            Some(&vars["head.pre_logits.fc.bias"]),
        )
        .tanh()
        .linear(&vars["head.linear.weight"], Some(&vars["head.linear.bias"]));
    let p = out.predictions.single().expect("one tensor");
    assert!(max_abs_diff(p, &expected) < 1e-6);
    assert!(taps.get("head.linear").is_some());
    assert!(max_abs_diff(&out.features, &x) == 0.0);
}

#[test]
fn bad_head_values_name_the_key() {
    let cfg = config(
        R2D3D,
        &[
            "VIDEO.HEAD.NUM_CLASSES=1",
            "PRETRAIN.ZERO_OUT=true",
            "VIDEO.HEAD.NAME=MoSIHeadOnlyX",
        ],
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let e =
        Head::new(&vs.root(), &cfg.video.head, 8, &cfg.pretrain, &cfg.bn).expect_err("no classes");
    assert_eq!(e.key(), Some(KEY_NUM_CLASSES));
}
