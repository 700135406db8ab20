use tch::{nn, Device, Kind, Tensor};

use super::stems::r2plus1d_mid_width;
use super::*;
use crate::models::test_support::{config, tiny, truthy, R2D3D, R2P1D};

fn spec(yaml: &str, overrides: &[&str]) -> Result<ResNetSpec, ModelError> {
    let cfg = config(yaml, overrides);
    ResNetSpec::from_config(&cfg.video.backbone, &cfg.bn)
}

fn build(cfg: &crate::config::Config) -> (nn::VarStore, Result<ResNet3D, ModelError>) {
    let vs = nn::VarStore::new(Device::Cpu);
    let m = ResNet3D::new(&(vs.root() / "backbone"), &cfg.video.backbone, &cfg.bn);
    (vs, m)
}

fn shape(vs: &nn::VarStore, name: &str) -> Vec<i64> {
    match vs.variables().get(name) {
        Some(t) => t.size(),
        None => panic!("no variable {name}"),
    }
}

#[test]
fn depth_table() {
    use Transformation::{Bottleneck, Simple};
    assert_eq!(blocks_per_stage(10), Some(([1, 1, 1, 1], Simple)));
    assert_eq!(blocks_per_stage(16), Some(([2, 2, 2, 1], Simple)));
    assert_eq!(blocks_per_stage(18), Some(([2, 2, 2, 2], Simple)));
    assert_eq!(blocks_per_stage(26), Some(([2, 2, 2, 2], Simple)));
    assert_eq!(blocks_per_stage(34), Some(([3, 4, 6, 3], Simple)));
    assert_eq!(blocks_per_stage(50), Some(([3, 4, 6, 3], Bottleneck)));
    assert_eq!(blocks_per_stage(101), Some(([3, 4, 23, 3], Bottleneck)));
    assert_eq!(blocks_per_stage(152), Some(([3, 8, 36, 3], Bottleneck)));
    assert_eq!(blocks_per_stage(7), None);
}

#[test]
fn block_params_follow_update_3d_conv_params() {
    let s = spec(R2D3D, &[]).expect("R2D3D spec");
    // conv2: no downsampling, same width -> identity shortcut.
    let p = s.block_params(1, 0);
    assert_eq!((p.dim_in, p.num_filters, p.downsampling), (64, 64, false));
    assert_eq!(p.stride, [1, 1, 1]);
    // conv3 res_1: spatial only; res_2 never downsamples and keeps the width.
    let p = s.block_params(2, 0);
    assert_eq!((p.dim_in, p.num_filters, p.stride), (64, 128, [1, 2, 2]));
    assert_eq!(p.kernel, [1, 3, 3]);
    let p = s.block_params(2, 1);
    assert_eq!(
        (p.dim_in, p.downsampling, p.stride),
        (128, false, [1, 1, 1])
    );
    // conv5 res_1: 256 -> 256 but downsamples in space and time.
    let p = s.block_params(4, 0);
    assert_eq!((p.dim_in, p.num_filters, p.downsampling), (256, 256, true));
    assert_eq!((p.stride, p.kernel), ([2, 2, 2], [3, 3, 3]));
    assert_eq!(p.bottleneck_width, Some(128));
    assert_eq!((p.bn.eps, p.bn.momentum), (1e-3, 0.1));
}

#[test]
fn r2plus1d_mid_widths_match_the_spec() {
    assert_eq!(r2plus1d_mid_width([3, 7, 7], 3, 64), 83);
    let k = [3, 3, 3];
    let table = [
        (64, 64, 144, 144),
        (64, 128, 230, 288),
        (128, 256, 460, 576),
        (256, 512, 921, 1152),
    ];
    for (c_in, f, ma, mb) in table {
        assert_eq!(r2plus1d_mid_width(k, c_in, f), ma, "{c_in}->{f}");
        assert_eq!(r2plus1d_mid_width(k, f, f), mb, "{f}->{f}");
    }
}

#[test]
fn r2d3d_keys_and_shapes() {
    let cfg = config(R2D3D, &[]);
    let (vs, m) = build(&cfg);
    m.expect("R2D3D builds");
    assert_eq!(shape(&vs, "backbone.conv1.a.weight"), [64, 3, 1, 7, 7]);
    assert_eq!(shape(&vs, "backbone.conv1.a_bn.running_var"), [64]);
    assert!(!vs
        .variables()
        .contains_key("backbone.conv2.res_1.short_cut.weight"));
    assert_eq!(
        shape(&vs, "backbone.conv3.res_1.short_cut.weight"),
        [128, 64, 1, 1, 1]
    );
    assert_eq!(
        shape(&vs, "backbone.conv5.res_1.short_cut.weight"),
        [256, 256, 1, 1, 1]
    );
    assert_eq!(
        shape(&vs, "backbone.conv5.res_1.short_cut_bn.weight"),
        [256]
    );
    assert!(!vs
        .variables()
        .contains_key("backbone.conv5.res_2.short_cut.weight"));
    assert_eq!(
        shape(&vs, "backbone.conv4.res_2.conv_branch.b.weight"),
        [256, 256, 3, 3, 3]
    );
    assert_eq!(
        shape(&vs, "backbone.conv3.res_1.conv_branch.a.weight"),
        [128, 64, 1, 3, 3]
    );
}

#[test]
fn r2p1d_keys_and_shapes() {
    let cfg = config(R2P1D, &[]);
    let (vs, m) = build(&cfg);
    m.expect("R(2+1)D builds");
    assert_eq!(shape(&vs, "backbone.conv1.a1.weight"), [83, 3, 1, 7, 7]);
    assert_eq!(shape(&vs, "backbone.conv1.a2.weight"), [64, 83, 3, 1, 1]);
    assert_eq!(
        shape(&vs, "backbone.conv3.res_1.conv_branch.a1.weight"),
        [230, 64, 1, 3, 3]
    );
    assert_eq!(
        shape(&vs, "backbone.conv3.res_1.conv_branch.a2.weight"),
        [128, 230, 3, 1, 1]
    );
    assert_eq!(
        shape(&vs, "backbone.conv5.res_1.conv_branch.b1.weight"),
        [1152, 512, 1, 3, 3]
    );
    assert_eq!(
        shape(&vs, "backbone.conv5.res_1.conv_branch.b2_bn.bias"),
        [512]
    );
    assert!(!vs
        .variables()
        .contains_key("backbone.conv2.res_1.short_cut.weight"));
    assert_eq!(
        shape(&vs, "backbone.conv4.res_1.short_cut.weight"),
        [256, 128, 1, 1, 1]
    );
}

fn run_shapes(cfg: &crate::config::Config, input: &[i64]) -> Vec<Vec<i64>> {
    let (_vs, m) = build(cfg);
    let m = m.expect("tiny backbone builds");
    let xs = Tensor::randn(input, (Kind::Float, Device::Cpu));
    let mut taps = Taps::collecting();
    let out = m.forward_taps(&xs, false, &mut taps);
    assert!(truthy(&out.isfinite().all()), "non-finite output");
    // Stem and stage outputs only; TAda2D branches also record their `b_rf` and `b`.
    let stages: Vec<(String, Tensor)> = taps
        .into_vec()
        .into_iter()
        .filter(|(n, _)| !n.contains(".res_"))
        .collect();
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<String> = (1..=5).map(|s| format!("backbone.conv{s}")).collect();
    assert_eq!(names, expected);
    stages.into_iter().map(|(_, t)| t.size()).collect()
}

#[test]
fn tiny_r2d3d_stage_shapes() {
    let shapes = run_shapes(&tiny(R2D3D, &[]), &[1, 3, 8, 32, 32]);
    assert_eq!(
        shapes,
        [
            vec![1, 4, 8, 8, 8],
            vec![1, 4, 8, 8, 8],
            vec![1, 8, 8, 4, 4],
            vec![1, 8, 4, 2, 2],
            vec![1, 8, 2, 1, 1]
        ]
    );
}

#[test]
fn tiny_r2p1d_stage_shapes() {
    let shapes = run_shapes(&tiny(R2P1D, &[]), &[1, 3, 8, 32, 32]);
    assert_eq!(
        shapes,
        [
            vec![1, 4, 8, 16, 16],
            vec![1, 4, 8, 16, 16],
            vec![1, 8, 4, 8, 8],
            vec![1, 8, 2, 4, 4],
            vec![1, 8, 1, 2, 2]
        ]
    );
}

#[test]
fn bottleneck_variants_build_and_run() {
    for (yaml, branch) in [(R2D3D, "R2D3DBranch"), (R2P1D, "R2Plus1DBranch")] {
        let cfg = config(
            yaml,
            &[
                "VIDEO.BACKBONE.DEPTH=50",
                "VIDEO.BACKBONE.NUM_FILTERS=[4, 8, 8, 16, 16]",
                "VIDEO.BACKBONE.NUM_OUT_FEATURES=16",
            ],
        );
        let (vs, m) = build(&cfg);
        let m = m.unwrap_or_else(|e| panic!("{branch} bottleneck: {e}"));
        // Width 8 / EXPANSION_RATIO 2 = 4 inside the bottleneck; 3 blocks in conv2.
        assert_eq!(
            shape(&vs, "backbone.conv2.res_1.conv_branch.a.weight"),
            [4, 4, 1, 1, 1]
        );
        assert_eq!(
            shape(&vs, "backbone.conv2.res_3.conv_branch.c.weight"),
            [8, 4, 1, 1, 1]
        );
        assert!(vs
            .variables()
            .contains_key("backbone.conv4.res_6.conv_branch.c_bn.running_mean"));
        let out = m.forward_t(
            &Tensor::randn([1, 3, 8, 32, 32], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(out.size()[..2], [1, 16]);
    }
}

#[test]
fn kaiming_initialisation_is_fan_out_normal() {
    let cfg = config(R2D3D, &["VIDEO.BACKBONE.INITIALIZATION=kaiming"]);
    let (vs, m) = build(&cfg);
    m.expect("builds");
    // conv4 res_2 b: fan_out = 256 * 27, std = sqrt(2 / fan_out) ~ 0.0170.
    let w = &vs.variables()["backbone.conv4.res_2.conv_branch.b.weight"];
    let std = w.std(true).double_value(&[]);
    assert!(
        (std - (2.0f64 / (256.0 * 27.0)).sqrt()).abs() < 5e-4,
        "std {std}"
    );
    // The PyTorch default instead is U(±1/sqrt(fan_in)): std = 1/sqrt(3 * fan_in) ~ 0.0070.
    let cfg = config(R2D3D, &[]);
    let (vs, _) = build(&cfg);
    let w = &vs.variables()["backbone.conv4.res_2.conv_branch.b.weight"];
    let std = w.std(true).double_value(&[]);
    assert!(
        (std - 1.0 / (3.0f64 * 256.0 * 27.0).sqrt()).abs() < 3e-4,
        "std {std}"
    );
    let bn = &vs.variables()["backbone.conv1.a_bn.weight"];
    assert!(truthy(&bn.eq(1.0).all()), "BN weight must start at 1");
}

fn error_for(overrides: &[&str]) -> ModelError {
    let cfg = tiny(R2D3D, overrides);
    match build(&cfg).1 {
        Ok(_) => panic!("{overrides:?} should not build"),
        Err(e) => e,
    }
}

#[test]
fn bad_configs_name_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (&["VIDEO.BACKBONE.DEPTH=7"], KEY_DEPTH),
        (&["VIDEO.BACKBONE.DEPTH=[2, 2, 2, 2]"], KEY_DEPTH),
        (&["VIDEO.BACKBONE.NUM_FILTERS=[4, 8, 8]"], KEY_FILTERS),
        (&["VIDEO.BACKBONE.NUM_FILTERS=[4, 0, 8, 8, 8]"], KEY_FILTERS),
        (
            &["VIDEO.BACKBONE.KERNEL_SIZE=[[1, 7, 7], [1, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]]"],
            KEY_KERNEL,
        ),
        (&["VIDEO.BACKBONE.DOWNSAMPLING=[true, false]"], KEY_DOWN),
        (
            &["VIDEO.BACKBONE.DOWNSAMPLING_TEMPORAL=[true, false, true, true, true, true]"],
            KEY_DOWN_T,
        ),
        (&["VIDEO.BACKBONE.INITIALIZATION=xavier"], KEY_INIT),
        (&["VIDEO.BACKBONE.BRANCH.NAME=TAdaFormerBlock"], KEY_BRANCH),
        (
            &[
                "VIDEO.BACKBONE.DEPTH=50",
                "VIDEO.BACKBONE.EXPANSION_RATIO=16",
            ],
            KEY_EXPANSION,
        ),
    ];
    for (overrides, key) in cases {
        let e = error_for(overrides);
        assert_eq!(e.key(), Some(*key), "{overrides:?}: {e}");
        assert!(e.to_string().contains(key), "message names the key: {e}");
    }
}

#[test]
fn missing_keys_are_reported() {
    let yaml = "
VIDEO:
  BACKBONE: {META_ARCH: ResNet3D, DEPTH: 18, STEM: {NAME: DownSampleStem}, BRANCH: {NAME: R2D3DBranch}}
  HEAD: {NUM_CLASSES: 5}
";
    let cfg = config(yaml, &[]);
    let e = build(&cfg).1.expect_err("no NUM_FILTERS");
    assert!(
        matches!(&e, ModelError::Key(k) if k.key == KEY_FILTERS),
        "{e}"
    );
}

/// TAda2D-R50 as in `configs/pool/backbone/tada2d.yaml` + the K400 project (400 classes).
const TADA2D: &str = "
MODEL: {NAME: TAda2D}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 50
    NUM_FILTERS: [64, 256, 512, 1024, 2048]
    NUM_OUT_FEATURES: 2048
    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]]
    DOWNSAMPLING: [true, true, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, false, false, false]
    EXPANSION_RATIO: 4
    INITIALIZATION: kaiming
    STEM: {NAME: Base2DStem}
    BRANCH: {NAME: TAda2DBlock, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 4, POOL_K: [3, 1, 1]}
  HEAD: {NAME: BaseHead, NUM_CLASSES: 400, DROPOUT_RATE: 0.5}
BN: {EPS: 1e-5, MOMENTUM: 0.1}
";

/// The widths of the `tada2d` fixture: bottleneck widths 4, 8, 16, 32.
const TADA2D_SMALL: &[&str] = &[
    "VIDEO.BACKBONE.NUM_FILTERS=[16, 32, 64, 128, 256]",
    "VIDEO.BACKBONE.NUM_OUT_FEATURES=256",
    "VIDEO.HEAD.NUM_CLASSES=10",
];

#[test]
fn tada2d_r50_parameter_count_matches_backbones_md() {
    let cfg = config(TADA2D, &[]);
    let vs = nn::VarStore::new(Device::Cpu);
    crate::models::VideoModel::new(&vs.root(), &cfg).expect("TAda2D-R50 builds");
    let (mut backbone, mut total) = (0i64, 0i64);
    for (name, t) in vs.variables() {
        if t.requires_grad() {
            total += t.numel() as i64;
            if name.starts_with("backbone.") {
                backbone += t.numel() as i64;
            }
        }
    }
    // docs/models.md#parameter-counts.
    assert_eq!((backbone, total), (26_665_872, 27_485_472));
}

/// ir-CSN-152 as the reference's pool `csn.yaml` describes it (its EPIC-Kitchens configs add a
/// verb/noun head pair, which tada does not build yet; the backbone is the same).
const CSN152: &str = "
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 152
    NUM_FILTERS: [64, 256, 512, 1024, 2048]
    NUM_OUT_FEATURES: 2048
    KERNEL_SIZE: [[3, 7, 7], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, true, true, true]
    EXPANSION_RATIO: 4
    BRANCH: {NAME: CSNBranch}
    STEM: {NAME: DownSampleStem}
  HEAD: {NAME: BaseHead, NUM_CLASSES: 400}
";

#[test]
fn csn152_backbone_parameter_count_is_the_references() {
    let cfg = config(CSN152, &[]);
    let vs = nn::VarStore::new(Device::Cpu);
    crate::models::VideoModel::new(&vs.root(), &cfg).expect("ir-CSN-152 builds");
    let count = |prefix: &str| crate::models::summary::parameter_count(&vs, prefix);
    // The reference's build_model of its csn_ek100 configs (tests/data/reference_param_counts.json,
    // docs/models.md#parameter-counts); the 400-class head adds 2048 x 400 + 400.
    assert_eq!(count("backbone."), 28_883_968);
    assert_eq!(count(""), 28_883_968 + 2048 * 400 + 400);
    // Depthwise `b`: one 3x3x3 filter per channel.
    let b = &vs.variables()["backbone.conv2.res_1.conv_branch.b.weight"];
    assert_eq!(b.size(), [64, 1, 3, 3, 3]);
}

#[test]
fn csn_needs_a_bottleneck_depth() {
    let cfg = config(CSN152, &["VIDEO.BACKBONE.DEPTH=18"]);
    let vs = nn::VarStore::new(Device::Cpu);
    let Err(e) = crate::models::VideoModel::new(&vs.root(), &cfg) else {
        panic!("ir-CSN-18 built");
    };
    let e = e.to_string();
    assert!(e.contains("CSNBranch is a bottleneck branch"), "{e}");
}

#[test]
fn tada2d_keys_and_shapes() {
    let cfg = config(TADA2D, TADA2D_SMALL);
    let (vs, m) = build(&cfg);
    m.expect("TAda2D builds");
    let branch = "backbone.conv3.res_2.conv_branch";
    let expect: &[(&str, &[i64])] = &[
        ("backbone.conv1.a.weight", &[16, 3, 1, 7, 7]),
        // conv2 res_1 has a projection shortcut: 16 -> 32 and stride 2.
        ("backbone.conv2.res_1.short_cut.weight", &[32, 16, 1, 1, 1]),
        (
            "backbone.conv2.res_1.conv_branch.a.weight",
            &[8, 16, 1, 1, 1],
        ),
        ("a.weight", &[16, 64, 1, 1, 1]),
        ("a_bn.running_var", &[16]),
        ("b.weight", &[1, 1, 16, 16, 3, 3]),
        ("b_rf.g.weight", &[16, 16, 1, 1, 1]),
        ("b_rf.g.bias", &[16]),
        ("b_rf.a.weight", &[4, 16, 3, 1, 1]),
        ("b_rf.a.bias", &[4]),
        ("b_rf.bn.running_mean", &[4]),
        ("b_rf.b.weight", &[16, 4, 3, 1, 1]),
        ("b_bn.weight", &[16]),
        ("b_avgpool_bn.bias", &[16]),
        ("c.weight", &[64, 16, 1, 1, 1]),
        ("c_bn.weight", &[64]),
    ];
    for (name, dims) in expect {
        let full = if name.starts_with("backbone.") {
            name.to_string()
        } else {
            format!("{branch}.{name}")
        };
        assert_eq!(shape(&vs, &full), *dims, "{full}");
    }
    let vars = vs.variables();
    assert!(!vars.contains_key("backbone.conv2.res_2.short_cut.weight"));
    assert!(!vars.contains_key(&format!("{branch}.b.bias")));
    assert!(vars.contains_key("backbone.conv5.res_3.conv_branch.c_bn.running_mean"));
    // Per block: a, a_bn (weight, bias, running mean and var), b, b_rf (g 2, a 2, bn 4, b 1),
    // b_bn, b_avgpool_bn, c, c_bn; 16 blocks, 4 shortcuts (conv + BN), the stem (conv + BN).
    // (tch keeps no num_batches_tracked counter.)
    let per_block = 1 + 4 + 1 + (2 + 2 + 4 + 1) + 4 + 4 + 1 + 4;
    assert_eq!(vars.len(), 16 * per_block + 4 * 5 + 5);
}

#[test]
fn tada2d_zero_init_and_skip_init_survive_kaiming() {
    tch::manual_seed(3);
    let cfg = config(TADA2D, TADA2D_SMALL);
    let vs = nn::VarStore::new(Device::Cpu);
    let spec = ResNetSpec::from_config(&cfg.video.backbone, &cfg.bn).expect("spec");
    let p = spec.block_params(3, 1);
    let tada = spec.tada.expect("TAda2DBlock keys are read");
    let branch = TAda2DBranch::new(&(vs.root() / "conv_branch"), &tada, &p).expect("builds");
    assert_eq!(
        branch.skip_init(),
        [
            "conv_branch.b_rf.b.weight",
            "conv_branch.b_avgpool_bn.weight",
            "conv_branch.b_avgpool_bn.bias"
        ]
    );
    let vars = vs.variables();
    for name in branch.skip_init() {
        assert!(truthy(&vars[name].eq(0.0).all()), "{name} must start at 0");
    }
    // The ResNet initialiser reached the routing function's convs: Kaiming-normal fan-out
    // (conv4, width 32: g is 32 x 32 x 1 x 1 x 1 -> std sqrt(2/32) = 0.25; PyTorch's default
    // would give 1/sqrt(3·32) ~ 0.10) and zero biases.
    let g = &vars["conv_branch.b_rf.g.weight"];
    let std = g.std(true).double_value(&[]);
    assert!((std - 0.25).abs() < 0.03, "b_rf.g std {std}");
    for bias in ["conv_branch.b_rf.g.bias", "conv_branch.b_rf.a.bias"] {
        assert!(truthy(&vars[bias].eq(0.0).all()), "{bias} must start at 0");
    }
    // At initialisation the routing function outputs exactly 1 and the pooled term is 0.
    let xs = Tensor::randn([2, 128, 4, 6, 6], (Kind::Float, Device::Cpu));
    let mut taps = Taps::collecting();
    let out = branch.forward_taps(&xs, true, &mut taps);
    assert_eq!(out.size(), [2, 128, 4, 6, 6]);
    let alpha = taps.get("conv_branch.b_rf").expect("alpha recorded");
    assert_eq!(alpha.size(), [2, 32, 4, 1, 1]);
    assert!(truthy(&alpha.eq(1.0).all()));
    assert_eq!(
        taps.get("conv_branch.b").expect("b recorded").size(),
        [2, 32, 4, 6, 6]
    );
}

#[test]
fn tada2d_stage_shapes_keep_time() {
    let cfg = config(TADA2D, TADA2D_SMALL);
    let shapes = run_shapes(&cfg, &[2, 3, 4, 32, 32]);
    assert_eq!(
        shapes,
        [
            vec![2, 16, 4, 16, 16],
            vec![2, 32, 4, 8, 8],
            vec![2, 64, 4, 4, 4],
            vec![2, 128, 4, 2, 2],
            vec![2, 256, 4, 1, 1]
        ]
    );
}

#[test]
fn tada2d_config_errors_name_the_key() {
    let cases: &[(&[&str], &str)] = &[
        // TAda2DBlock has no simple block.
        (&["VIDEO.BACKBONE.DEPTH=18"], KEY_DEPTH),
        (&["VIDEO.BACKBONE.DEPTH=34"], KEY_DEPTH),
        (
            &["VIDEO.BACKBONE.DOWNSAMPLING_TEMPORAL=[false, false, true, false, false]"],
            KEY_DOWN_T,
        ),
        (
            &["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R=0"],
            "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R",
        ),
        (
            &["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R=16"],
            "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R",
        ),
        (
            &["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K=[3, 2]"],
            "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K",
        ),
        (
            &["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K=[3]"],
            "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K",
        ),
        (
            &["VIDEO.BACKBONE.BRANCH.POOL_K=[2, 1, 1]"],
            "VIDEO.BACKBONE.BRANCH.POOL_K",
        ),
    ];
    let mut all: Vec<&str> = TADA2D_SMALL.to_vec();
    for (overrides, key) in cases {
        all.truncate(TADA2D_SMALL.len());
        all.extend_from_slice(overrides);
        let cfg = config(TADA2D, &all);
        let e = match build(&cfg).1 {
            Ok(_) => panic!("{overrides:?} should not build"),
            Err(e) => e,
        };
        assert_eq!(e.key(), Some(*key), "{overrides:?}: {e}");
        assert!(e.to_string().contains(key), "message names the key: {e}");
    }
    let msg = error_for(&[
        "VIDEO.BACKBONE.BRANCH.NAME=TAda2DBlock",
        "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R=4",
        "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K=[3, 3]",
        "VIDEO.BACKBONE.BRANCH.POOL_K=[3, 1, 1]",
    ])
    .to_string();
    assert!(msg.contains("bottleneck") && msg.contains("DEPTH"), "{msg}");
    // The keys have no defaults (neither has the reference): a missing one is named.
    let mut cfg = config(TADA2D, TADA2D_SMALL);
    cfg.video.backbone.branch.pool_k = None;
    let e = build(&cfg).1.expect_err("no POOL_K");
    assert!(
        matches!(&e, ModelError::Key(k) if k.key == "VIDEO.BACKBONE.BRANCH.POOL_K"),
        "{e}"
    );
}
