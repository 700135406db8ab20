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
    let names: Vec<&str> = taps.names().collect();
    let expected: Vec<String> = (1..=5).map(|s| format!("backbone.conv{s}")).collect();
    assert_eq!(names, expected);
    taps.into_vec().into_iter().map(|(_, t)| t.size()).collect()
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
        matches!(&e, ModelError::Missing { key, .. } if key == KEY_FILTERS),
        "{e}"
    );
}

#[test]
fn tada2d_branch_is_a_typed_unsupported_error() {
    let e = error_for(&[
        "VIDEO.BACKBONE.BRANCH.NAME=TAda2DBlock",
        "VIDEO.BACKBONE.DEPTH=50",
    ]);
    match e {
        ModelError::Unsupported(msg) => {
            assert!(msg.starts_with("TAda2DBlock: "), "{msg}");
            assert!(msg.contains(KEY_BRANCH), "{msg}");
        }
        other => panic!("expected Unsupported, got {other}"),
    }
}
