//! Which parameter lands in which group, with which decay and multiplier
//! (docs/training.md#parameter-groups).

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::groups::DefaultGroup;
use super::test_support::config as cfg;
use super::{build_groups, trainable_parameters, OptimError, ParamGroup};
use crate::models::VideoModel;
use crate::runs::group_rules;

/// Parameters with these names; 1-D for names ending in `bias`/norm-like, else 2-D.
fn named(names: &[(&str, usize)]) -> Vec<(String, Tensor)> {
    names
        .iter()
        .map(|&(n, dims)| {
            let shape: Vec<i64> = vec![2; dims];
            (
                n.to_string(),
                Tensor::zeros(shape, (Kind::Float, Device::Cpu)),
            )
        })
        .collect()
}

/// `(group name, weight decay, lr_mult)` of the group holding `param`.
fn group_of<'a>(groups: &'a [ParamGroup], param: &str) -> Option<(&'a str, f64, f64)> {
    groups
        .iter()
        .find(|g| g.params.iter().any(|(n, _)| n == param))
        .map(|g| (g.name.as_str(), g.weight_decay, g.lr_mult))
}

/// TAda2D, TAdaConvNeXtV2 and R2D3D parameter names with the group docs/training.md#default-groups
/// puts them in.
const DEFAULT_CASES: &[(&str, DefaultGroup)] = &[
    ("backbone.conv1.a.weight", DefaultGroup::Weights),
    ("backbone.conv1.a_bn.weight", DefaultGroup::Norm),
    ("backbone.conv1.a_bn.bias", DefaultGroup::Norm),
    (
        "backbone.conv2.res_1.conv_branch.b.weight",
        DefaultGroup::Weights,
    ),
    (
        "backbone.conv2.res_1.conv_branch.b.bias",
        DefaultGroup::Bias,
    ),
    (
        "backbone.conv2.res_1.conv_branch.b_rf.a.weight",
        DefaultGroup::Routing,
    ),
    (
        "backbone.conv2.res_1.conv_branch.b_rf.g.bias",
        DefaultGroup::RoutingBias,
    ),
    (
        "backbone.conv2.res_1.conv_branch.b_rf.bn.weight",
        DefaultGroup::RoutingBn,
    ),
    (
        "backbone.conv2.res_1.conv_branch.b_rf.bn.bias",
        DefaultGroup::RoutingBn,
    ),
    // TAdaConvNeXtV2: the routing function's LayerNorms hold `rf` but not `bn` -> decayed.
    (
        "backbone.stages.0.0.dwconv_rf.norm.weight",
        DefaultGroup::Routing,
    ),
    (
        "backbone.stages.0.0.dwconv_rf.norm_transformer.weight",
        DefaultGroup::Routing,
    ),
    (
        "backbone.stages.0.0.dwconv_rf.b_bias.weight",
        DefaultGroup::RoutingBias,
    ),
    ("backbone.stages.0.0.dwconv.bias", DefaultGroup::Bias),
    (
        "backbone.stages.0.0.norm_avgpool.weight",
        DefaultGroup::Norm,
    ),
    ("backbone.stages.0.0.gamma", DefaultGroup::Weights),
    (
        "backbone.downsample_layers.1.0.weight",
        DefaultGroup::Weights,
    ),
    ("backbone.downsample_layers.1.0.bias", DefaultGroup::Bias),
    ("backbone.norm.weight", DefaultGroup::Norm),
    ("backbone.cls_token", DefaultGroup::NoDecay),
    ("backbone.pos_embd", DefaultGroup::NoDecay),
    ("head.out.weight", DefaultGroup::Head),
    ("head.out.bias", DefaultGroup::HeadBias),
];

fn default_params() -> Vec<(String, Tensor)> {
    let names: Vec<(&str, usize)> = DEFAULT_CASES.iter().map(|(n, _)| (*n, 2)).collect();
    named(&names)
}

#[test]
fn default_branch_puts_each_name_in_its_group() {
    for (name, want) in DEFAULT_CASES {
        assert_eq!(DefaultGroup::classify(name), *want, "{name}");
    }
    let c = cfg("OPTIMIZER: {WEIGHT_DECAY: 0.001}\nBN: {WEIGHT_DECAY: 0.0}");
    let groups = build_groups(&default_params(), &group_rules(&c)).unwrap();
    let order: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "norm",
            "routing_bn",
            "routing",
            "routing_bias",
            "weights",
            "bias",
            "head",
            "head_bias",
            "no_decay"
        ]
    );
    let total: usize = groups.iter().map(|g| g.params.len()).sum();
    assert_eq!(total, DEFAULT_CASES.len(), "every parameter exactly once");
    for (name, want) in DEFAULT_CASES {
        let (g, wd, mult) = group_of(&groups, name).unwrap();
        assert_eq!(g, want.name(), "{name}");
        let decayed = matches!(
            want,
            DefaultGroup::Weights | DefaultGroup::Routing | DefaultGroup::Head
        );
        assert_eq!(wd, if decayed { 0.001 } else { 0.0 }, "{name}");
        assert_eq!(mult, 1.0, "{name}");
    }
}

#[test]
fn default_branch_multipliers() {
    let params = default_params();
    let at = |yaml: &str, name: &str| {
        let groups = build_groups(&params, &group_rules(&cfg(yaml))).unwrap();
        group_of(&groups, name).map(|(_, wd, m)| (wd, m))
    };
    let bias = "backbone.conv2.res_1.conv_branch.b.bias";
    let head_bias = "head.out.bias";
    let routing = "backbone.conv2.res_1.conv_branch.b_rf.a.weight";
    let head = "head.out.weight";
    let norm = "backbone.conv1.a_bn.weight";
    // BIAS_DOUBLE: x2 on every bias group.
    let y = "OPTIMIZER: {BIAS_DOUBLE: true}";
    assert_eq!(at(y, bias), Some((0.0, 2.0)));
    assert_eq!(at(y, head_bias), Some((0.0, 2.0)));
    assert_eq!(at(y, head), Some((1e-3, 1.0)));
    // LR_REDUCE counts only when fine-tuning; then routing/head x5, their biases x10.
    let y = "TRAIN: {LR_REDUCE: true, FINE_TUNE: true}\nOPTIMIZER: {BIAS_DOUBLE: true}";
    assert_eq!(at(y, routing), Some((1e-3, 5.0)));
    assert_eq!(at(y, head), Some((1e-3, 5.0)));
    assert_eq!(at(y, head_bias), Some((0.0, 10.0)));
    assert_eq!(at(y, bias), Some((0.0, 2.0)));
    let y = "TRAIN: {LR_REDUCE: true, FINE_TUNE: false}";
    assert_eq!(at(y, head), Some((1e-3, 1.0)));
    // NEW_PARAMS / HEAD_LRMULT are inert in this branch (docs/training.md#default-groups).
    let y = "OPTIMIZER: {NEW_PARAMS: [head], HEAD_LRMULT: 10.0}";
    assert_eq!(at(y, head), Some((1e-3, 1.0)));
    // BN.WEIGHT_DECAY decays norms; BN.WB_LOCK leaves them out of the optimiser.
    assert_eq!(at("BN: {WEIGHT_DECAY: 0.5}", norm), Some((0.5, 1.0)));
    assert_eq!(at("BN: {WB_LOCK: true}", norm), None);
    let y = "BN: {WB_LOCK: true}";
    assert_eq!(
        at(y, "backbone.conv2.res_1.conv_branch.b_rf.bn.weight"),
        None
    );
    assert_eq!(at(y, routing), Some((1e-3, 1.0)));
}

#[test]
fn only_linear_steps_the_head_with_decay_on_everything() {
    let c = cfg("TRAIN: {ONLY_LINEAR: true}\nOPTIMIZER: {WEIGHT_DECAY: 0.01}");
    let groups = build_groups(&default_params(), &group_rules(&c)).unwrap();
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!((g.weight_decay, g.lr_mult), (0.01, 1.0));
    let names: Vec<&str> = g.params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["head.out.weight", "head.out.bias"]);
}

/// The tiny R2D3D + MoSI joint head of the model tests.
const TINY_R2D3D: &str = "
MODEL: {NAME: MoSINet}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 18
    NUM_FILTERS: [4, 4, 8, 8, 8]
    NUM_OUT_FEATURES: 8
    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, false, true, true]
    EXPANSION_RATIO: 2
    STEM: {NAME: DownSampleStem}
    BRANCH: {NAME: R2D3DBranch}
  HEAD: {NAME: MoSIHeadJoint, NUM_CLASSES: 5}
BN: {EPS: 1e-3}
";

#[test]
fn r2d3d_model_groups() {
    let c = cfg(TINY_R2D3D);
    let vs = VarStore::new(Device::Cpu);
    VideoModel::new(&vs.root(), &c).expect("tiny R2D3D builds");
    let params = trainable_parameters(&vs);
    assert!(params.iter().all(|(n, _)| !n.contains("running_")));
    let groups = build_groups(&params, &group_rules(&c)).unwrap();
    let total: usize = groups.iter().map(|g| g.params.len()).sum();
    assert_eq!(total, params.len());
    let names = |g: &str| -> Vec<String> {
        let g = groups.iter().find(|x| x.name == g).unwrap();
        g.params.iter().map(|(n, _)| n.clone()).collect()
    };
    // Convs have no bias; every BN affine parameter is undecayed; the head bias too.
    assert!(names("bias").is_empty());
    assert!(names("routing").is_empty());
    let norm = names("norm");
    assert!(!norm.is_empty() && norm.iter().all(|n| n.contains("_bn.")));
    assert!(names("weights")
        .iter()
        .all(|n| n.starts_with("backbone.") && n.ends_with(".weight") && !n.contains("bn")));
    assert!(names("weights").contains(&"backbone.conv1.a.weight".to_string()));
    let head: Vec<String> = names("head")
        .into_iter()
        .chain(names("head_bias"))
        .collect();
    assert!(!head.is_empty() && head.iter().all(|n| n.starts_with("head.")));
    assert!(names("head_bias").iter().all(|n| n.ends_with(".bias")));
}

#[test]
fn frozen_parameters_are_not_grouped() {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let _w = (&root / "backbone").var("w", &[2], tch::nn::Init::Const(1.0));
    let _b = (&root / "backbone").zeros_no_train("running_mean", &[2]);
    let names: Vec<String> = trainable_parameters(&vs)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["backbone.w"]);
}

/// A TAdaFormer-like model with DEPTH 2 (layer ids 0..=3).
const LAYERWISE: &[(&str, usize)] = &[
    ("backbone.conv1.weight", 4),
    ("backbone.class_embedding", 1),
    ("backbone.positional_embedding", 2),
    ("backbone.ln_pre.weight", 1),
    ("backbone.layers.0.attn.in_proj_weight", 2),
    ("backbone.layers.0.attn.in_proj_bias", 1),
    ("backbone.layers.1.tada.conv.weight", 2),
    ("backbone.layers.1.ln_1.weight", 1),
    ("backbone.ln_post.weight", 1),
    ("backbone.proj", 2),
    ("head.linear.weight", 2),
    ("head.linear.bias", 1),
];

#[test]
fn layer_wise_decay_groups() {
    let base = "VIDEO: {BACKBONE: {DEPTH: 2}}\nOPTIMIZER: {LAYER_WISE_LR_DECAY: 0.5, \
                WEIGHT_DECAY: 0.05";
    let params = named(LAYERWISE);
    let groups = build_groups(&params, &group_rules(&cfg(&format!("{base}}}")))).unwrap();
    let total: usize = groups.iter().map(|g| g.params.len()).sum();
    assert_eq!(total, LAYERWISE.len());
    let d = 0.5f64;
    let expect = [
        ("backbone.conv1.weight", "layer_0_decay", 0.05, d.powi(3)),
        (
            "backbone.class_embedding",
            "layer_0_no_decay",
            0.0,
            d.powi(3),
        ),
        (
            "backbone.positional_embedding",
            "layer_0_decay",
            0.05,
            d.powi(3),
        ),
        ("backbone.ln_pre.weight", "layer_0_no_decay", 0.0, d.powi(3)),
        (
            "backbone.layers.0.attn.in_proj_weight",
            "layer_1_decay",
            0.05,
            d.powi(2),
        ),
        (
            "backbone.layers.0.attn.in_proj_bias",
            "layer_1_no_decay",
            0.0,
            d.powi(2),
        ),
        (
            "backbone.layers.1.tada.conv.weight",
            "layer_2_decay",
            0.05,
            d,
        ),
        ("backbone.layers.1.ln_1.weight", "layer_2_no_decay", 0.0, d),
        ("backbone.ln_post.weight", "layer_3_no_decay", 0.0, 1.0),
        ("backbone.proj", "layer_3_decay", 0.05, 1.0),
        ("head.linear.weight", "layer_3_decay", 0.05, 1.0),
        ("head.linear.bias", "layer_3_no_decay", 0.0, 1.0),
    ];
    for (name, group, wd, mult) in expect {
        let got = group_of(&groups, name).unwrap();
        assert_eq!(got.0, group, "{name}");
        assert_eq!(got.1, wd, "{name}");
        assert!((got.2 - mult).abs() < 1e-15, "{name}: {} vs {mult}", got.2);
    }
    // NEW_PARAMS x NEW_PARAMS_MULT, HEAD_LRMULT x on the head (the new-param multiplier is
    // dropped for a parameter that is both, as in the reference).
    let y = format!("{base}, NEW_PARAMS: [tada, head.linear.bias], HEAD_LRMULT: 10.0}}");
    let groups = build_groups(&params, &group_rules(&cfg(&y))).unwrap();
    let tada = group_of(&groups, "backbone.layers.1.tada.conv.weight").unwrap();
    assert_eq!(tada.0, "layer_2_decay_new_param");
    assert!((tada.2 - d * 10.0).abs() < 1e-15);
    let head = group_of(&groups, "head.linear.weight").unwrap();
    assert_eq!((head.0, head.2), ("layer_3_decay_head", 10.0));
    let hb = group_of(&groups, "head.linear.bias").unwrap();
    assert_eq!((hb.0, hb.2), ("layer_3_no_decay_new_param_head", 10.0));
}

#[test]
fn layer_wise_decay_errors() {
    let err = |yaml: &str, names: &[(&str, usize)]| -> OptimError {
        build_groups(&named(names), &group_rules(&cfg(yaml))).unwrap_err()
    };
    let one = &[("backbone.layers.0.w", 2)][..];
    let e = err("OPTIMIZER: {LAYER_WISE_LR_DECAY: 0.7}", one);
    assert_eq!(e.key(), Some("VIDEO.BACKBONE.DEPTH"), "{e}");
    let y = "VIDEO: {BACKBONE: {DEPTH: [2, 2, 6, 2]}}\nOPTIMIZER: {LAYER_WISE_LR_DECAY: 0.7}";
    let e = err(y, one);
    assert!(
        matches!(&e, OptimError::Unsupported(m) if m.contains("LAYER_WISE_LR_DECAY")),
        "{e}"
    );
    let y = "VIDEO: {BACKBONE: {DEPTH: 2}}\nOPTIMIZER: {LAYER_WISE_LR_DECAY: 0.7}";
    let e = err(y, &[("backbone.stem.weight", 2)]);
    assert!(e.to_string().contains("backbone.stem.weight"), "{e}");
    let e = err(y, &[("backbone.layers.2.w", 2)]);
    assert_eq!(e.key(), Some("VIDEO.BACKBONE.DEPTH"), "{e}");
}
