use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::*;
use crate::config::load_str;

const S3DG: &str = "VIDEO:\n  BACKBONE:\n    META_ARCH: Inception3D\n    NUM_OUT_FEATURES: 128\n    WIDTH_DIVISOR: 8\n    BRANCH: {NAME: STConv3d, GATING: true}\n    STEM: {NAME: STConv3d}\n  HEAD: {NUM_CLASSES: 3}\n";

fn build(yaml: &str) -> Result<(VarStore, Inception3D), ModelError> {
    let cfg = load_str(yaml, "s3dg.yaml", &[]).expect("loads").config;
    let vs = VarStore::new(Device::Cpu);
    let m = Inception3D::new(&(vs.root() / "backbone"), &cfg)?;
    Ok((vs, m))
}

#[test]
fn block_spellings_map_onto_the_named_units_and_back() {
    assert_eq!(
        canonical_key("backbone.block3.1.branch0.0.conv.weight").as_deref(),
        Some("backbone.Mixed_3b.branch0.0.conv.weight")
    );
    assert_eq!(
        canonical_key("block1.0.bn1.running_var").as_deref(),
        Some("Conv_1a.bn1.running_var")
    );
    assert_eq!(
        canonical_key("backbone.Mixed_3b.branch0.0.conv.weight"),
        None
    );
    assert_eq!(canonical_key("backbone.subblock1.0.x"), None);
    assert_eq!(
        alias_key("backbone.Mixed_5c.gating_b3.fc.bias").as_deref(),
        Some("backbone.block5.2.gating_b3.fc.bias")
    );
    assert_eq!(alias_key("head.out.weight"), None);
}

#[test]
fn an_eighth_width_s3dg_has_the_reference_layout() {
    let (vs, m) = build(S3DG).unwrap();
    assert_eq!(m.out_features(), 128);
    let vars = vs.variables();
    for key in [
        "backbone.Conv_1a.conv1.weight",
        "backbone.Conv_1a.conv2.weight",
        "backbone.Conv_2b.bn.running_mean",
        "backbone.Mixed_3b.branch1.1.conv2.weight",
        "backbone.Mixed_3b.branch3.1.conv.weight",
        "backbone.Mixed_5c.gating_b3.fc.weight",
    ] {
        assert!(vars.contains_key(key), "{key} missing");
    }
    // Conv_1a: (1,7,7) then (7,1,1); 3 -> 8 channels.
    assert_eq!(
        vars["backbone.Conv_1a.conv1.weight"].size(),
        [8, 3, 1, 7, 7]
    );
    assert_eq!(
        vars["backbone.Conv_1a.conv2.weight"].size(),
        [8, 8, 7, 1, 1]
    );
    let xs = Tensor::randn([1, 3, 8, 32, 32], (Kind::Float, Device::Cpu));
    let y = m.forward_taps(&xs, false, &mut Taps::off());
    assert_eq!(y.size(), [1, 128, 1, 1, 1]);
}

#[test]
fn gating_adds_one_linear_per_branch_and_nothing_else() {
    let (gated, _) = build(S3DG).unwrap();
    let (plain, _) = build(&S3DG.replace("GATING: true", "GATING: false")).unwrap();
    let gates: Vec<String> = gated
        .variables()
        .into_keys()
        .filter(|k| !plain.variables().contains_key(k))
        .collect();
    assert_eq!(gates.len(), 9 * 4 * 2, "{gates:?}");
    assert!(gates.iter().all(|k| k.contains(".gating_b")));
}

#[test]
fn a_divisor_that_does_not_divide_the_widths_is_refused_by_name() {
    let e = build(&S3DG.replace("WIDTH_DIVISOR: 8", "WIDTH_DIVISOR: 16"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("VIDEO.BACKBONE.WIDTH_DIVISOR"), "{e}");
    let e = build(&S3DG.replace("STEM: {NAME: STConv3d}", "STEM: {NAME: DownSampleStem}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("VIDEO.BACKBONE.STEM.NAME"), "{e}");
}

#[test]
fn width_divisor_is_refused_where_it_does_nothing() {
    let cfg = load_str(
        "VIDEO:\n  BACKBONE:\n    META_ARCH: ConvNeXt\n    WIDTH_DIVISOR: 2\n  HEAD: {NUM_CLASSES: 3}\n",
        "convnext.yaml",
        &[],
    )
    .expect("loads")
    .config;
    let vs = VarStore::new(Device::Cpu);
    let e = crate::models::backbones::Backbone::new(&vs.root(), &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("VIDEO.BACKBONE.WIDTH_DIVISOR"), "{e}");
}
