use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::*;
use crate::config::load_str;

/// SlowFast-R50 at 1/16 width: slow [4, 16, 32, 64, 128], fast / BETA 4.
const SLOWFAST: &str = "VIDEO:\n  BACKBONE:\n    META_ARCH: Slowfast\n    DEPTH: 50\n    NUM_FILTERS: [4, 16, 32, 64, 128]\n    NUM_OUT_FEATURES: 128\n    KERNEL_SIZE: [[[1, 7, 7], [1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]], [[5, 7, 7], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]]\n    DOWNSAMPLING: [true, false, true, true, true]\n    DOWNSAMPLING_TEMPORAL: [false, false, false, false, false]\n    TEMPORAL_CONV_BOTTLENECK: [[false, false, false, true, true], [false, true, true, true, true]]\n    EXPANSION_RATIO: 4\n    BRANCH: {NAME: SlowfastBranch}\n    STEM: {NAME: DownSampleStem}\n    SLOWFAST: {MODE: slowfast, ALPHA: 4, BETA: 4, CONV_CHANNEL_RATIO: 2, KERNEL_SIZE: 5, FUSION_CONV_BIAS: false, FUSION_BN: true, FUSION_RELU: true}\n  HEAD: {NAME: SlowFastHead, NUM_CLASSES: 3}\n";

fn build(yaml: &str) -> Result<(VarStore, SlowFast), ModelError> {
    let cfg = load_str(yaml, "slowfast.yaml", &[]).expect("loads").config;
    let vs = VarStore::new(Device::Cpu);
    let b = &cfg.video.backbone;
    let m = SlowFast::new(&(vs.root() / "backbone"), b, &cfg.bn)?;
    Ok((vs, m))
}

#[test]
fn slow_frames_follow_the_reference_datasets_rule() {
    let idx = |t, a| Vec::<i64>::try_from(slow_frame_indices(t, a, Device::Cpu)).unwrap();
    assert_eq!(idx(32, 8), [0, 8, 16, 24]);
    assert_eq!(idx(8, 4), [0, 4]);
    // 10 frames, alpha 4: linspace(0, 10, 3) = 0, 5, 10 -> [0, 5].
    assert_eq!(idx(10, 4), [0, 5]);
    assert_eq!(idx(4, 4), [0]);
}

#[test]
fn lateral_fusions_widen_the_slow_stage_inputs() {
    let (vs, m) = build(SLOWFAST).unwrap();
    let v = vs.variables();
    // Fast stem 4/4 = 1 channel -> fusion 2 channels; slow conv2 input 4 + 4·2/4 = 6.
    assert_eq!(
        v["backbone.slowfast_fusion1.conv_fast_to_slow.weight"].size(),
        [2, 1, 5, 1, 1]
    );
    assert!(v.contains_key("backbone.slowfast_fusion1.bn.running_var"));
    assert!(!v.contains_key("backbone.slowfast_fusion1.conv_fast_to_slow.bias"));
    assert_eq!(
        v["backbone.slow_conv2.res_1.conv_branch.a.weight"].size(),
        [4, 6, 1, 1, 1]
    );
    assert_eq!(
        v["backbone.slow_conv2.res_1.short_cut.weight"].size(),
        [16, 6, 1, 1, 1]
    );
    // TEMPORAL_CONV_BOTTLENECK: slow conv4 and the fast conv3 have a (3,1,1) `a`.
    assert_eq!(
        v["backbone.slow_conv4.res_1.conv_branch.a.weight"].size()[2..],
        [3, 1, 1]
    );
    assert_eq!(
        v["backbone.slow_conv3.res_1.conv_branch.a.weight"].size()[2..],
        [1, 1, 1]
    );
    assert_eq!(
        v["backbone.fast_conv3.res_2.conv_branch.a.weight"].size()[2..],
        [3, 1, 1]
    );
    assert!(!v.keys().any(|k| k.contains("slowfast_fusion5")));
    // The reference's transform_final_bn: each branch's last BN starts at 0, the others at 1.
    let weight = |k: &str| v[k].abs().max().double_value(&[]);
    assert_eq!(
        weight("backbone.fast_conv3.res_2.conv_branch.c_bn.weight"),
        0.0
    );
    assert_eq!(
        weight("backbone.slow_conv5.res_3.conv_branch.c_bn.weight"),
        0.0
    );
    assert_eq!(
        weight("backbone.slow_conv5.res_3.conv_branch.b_bn.weight"),
        1.0
    );
    assert_eq!(weight("backbone.slow_conv2.res_1.short_cut_bn.weight"), 1.0);
    assert_eq!(m.out_features(), 128 + 32);
    assert_eq!(m.num_out_features(), 128);

    let xs = Tensor::randn([2, 3, 8, 32, 32], (Kind::Float, Device::Cpu));
    let out = m.forward_taps(&xs, false, &mut Taps::off());
    assert_eq!(out[0].size(), [2, 128, 2, 1, 1]);
    assert_eq!(out[1].size(), [2, 32, 8, 1, 1]);
}

#[test]
fn single_pathway_modes_build_one_pathway_and_no_fusion() {
    let (vs, m) = build(&SLOWFAST.replace("MODE: slowfast", "MODE: slowonly")).unwrap();
    assert!(!vs.variables().keys().any(|k| k.contains("fast_")));
    assert_eq!(m.out_features(), 128);
    let v = vs.variables();
    assert_eq!(
        v["backbone.slow_conv2.res_1.conv_branch.a.weight"].size(),
        [4, 4, 1, 1, 1]
    );
    let (vs, m) = build(&SLOWFAST.replace("MODE: slowfast", "MODE: fastonly")).unwrap();
    assert!(!vs.variables().keys().any(|k| k.contains("slow")));
    assert_eq!(m.out_features(), 32);
}

#[test]
fn missing_or_malformed_slowfast_keys_are_named() {
    let e = build(&SLOWFAST.replace("ALPHA: 4, ", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("VIDEO.BACKBONE.SLOWFAST.ALPHA"), "{e}");
    let e = build(&SLOWFAST.replace(", FUSION_RELU: true", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("VIDEO.BACKBONE.SLOWFAST.FUSION_RELU"), "{e}");
    let e = build(&SLOWFAST.replace(
        "[[false, false, false, true, true], [false, true, true, true, true]]",
        "[[false, false, false, true, true]]",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("VIDEO.BACKBONE.TEMPORAL_CONV_BOTTLENECK"), "{e}");
    let e = build(&SLOWFAST.replace("BETA: 4", "BETA: 8"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("VIDEO.BACKBONE.SLOWFAST.BETA"), "{e}");
}

#[test]
fn a_clip_shorter_than_alpha_is_an_input_error() {
    let cfg = load_str(SLOWFAST, "slowfast.yaml", &[])
        .expect("loads")
        .config;
    let vs = VarStore::new(Device::Cpu);
    let m = crate::models::VideoModel::new(&vs.root(), &cfg).expect("builds");
    let short = Tensor::zeros([1, 3, 3, 32, 32], (Kind::Float, Device::Cpu));
    let e = m.check_input(&short).unwrap_err().to_string();
    assert!(e.contains("T >= 4"), "{e}");
    let ok = Tensor::zeros([1, 3, 4, 32, 32], (Kind::Float, Device::Cpu));
    m.check_input(&ok).unwrap();
    // SlowFastHead: both pathways pooled, 128 + 32 features.
    let out = m.forward_t(&ok, false);
    assert_eq!(out.features.size(), [1, 160]);
    assert_eq!(out.predictions.single().unwrap().size(), [1, 3]);
}

#[test]
fn a_kernel_size_of_neither_shape_is_a_config_error_saying_what_fits() {
    let Err(e) = load_str(
        "VIDEO:\n  BACKBONE:\n    KERNEL_SIZE: [1, 2, 3]\n  HEAD: {NUM_CLASSES: 3}\n",
        "bad.yaml",
        &[],
    ) else {
        panic!("a flat list is refused");
    };
    let e = e.to_string();
    assert!(
        e.contains("VIDEO.BACKBONE.KERNEL_SIZE") && e.contains("two such lists"),
        "{e}"
    );
}
