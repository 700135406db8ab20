use tch::nn;
use tch::{Device, Kind, Tensor};

use super::*;
use crate::models::heads::{NOUN, VERB};
use crate::models::test_support::{config, truthy};
use crate::models::VideoModel;

/// `configs/pool/backbone/timesformer.yaml` with a 400-class head, at the reference's base.yaml
/// sizes (112² crops of 16 frames).
pub const TIMESFORMER: &str = "
VIDEO:
  BACKBONE:
    META_ARCH: Transformer
    NUM_FEATURES: 768
    NUM_OUT_FEATURES: 768
    PATCH_SIZE: 16
    DEPTH: 12
    NUM_HEADS: 12
    DIM_HEAD: 64
    ATTN_DROPOUT: 0.1
    FF_DROPOUT: 0.1
    DROP_PATH: 0.0
    PRE_LOGITS: false
    STEM: {NAME: PatchEmbedStem}
    BRANCH: {NAME: TimesformerLayer}
  HEAD: {NAME: TransformerHead, ACTIVATION: softmax, DROPOUT_RATE: 0, NUM_CLASSES: 400}
";

/// `configs/pool/backbone/vivit.yaml` with a 400-class head, at base.yaml sizes.
pub const VIVIT: &str = "
VIDEO:
  BACKBONE:
    META_ARCH: Transformer
    NUM_FEATURES: 768
    NUM_OUT_FEATURES: 768
    PATCH_SIZE: 16
    TUBELET_SIZE: 2
    DEPTH: 12
    NUM_HEADS: 12
    DIM_HEAD: 64
    ATTN_DROPOUT: 0.0
    FF_DROPOUT: 0.0
    DROP_PATH: 0.1
    MLP_MULT: 4
    STEM: {NAME: TubeletEmbeddingStem}
    BRANCH: {NAME: BaseTransformerLayer}
  HEAD: {NAME: TransformerHead, ACTIVATION: softmax, DROPOUT_RATE: 0, NUM_CLASSES: 400, PRE_LOGITS: false}
";

/// Overrides shrinking either to D 32, 4 heads, 2 layers, 2×2 grids of 8×8 patches, 4 frames.
pub const SMALL: &[&str] = &[
    "VIDEO.BACKBONE.NUM_FEATURES=32",
    "VIDEO.BACKBONE.NUM_OUT_FEATURES=32",
    "VIDEO.BACKBONE.NUM_HEADS=4",
    "VIDEO.BACKBONE.DEPTH=2",
    "VIDEO.BACKBONE.PATCH_SIZE=8",
    "DATA.TRAIN_CROP_SIZE=16",
    "DATA.NUM_INPUT_FRAMES=4",
];

fn small(yaml: &str, extra: &[&str]) -> crate::config::Config {
    let all: Vec<&str> = SMALL.iter().chain(extra).copied().collect();
    config(yaml, &all)
}

fn build_err(cfg: &crate::config::Config) -> String {
    let vs = nn::VarStore::new(Device::Cpu);
    match VideoModel::new(&vs.root(), cfg) {
        Ok(_) => panic!("built"),
        Err(e) => e.to_string(),
    }
}

fn counts(cfg: &crate::config::Config) -> (i64, i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    VideoModel::new(&vs.root(), cfg).expect("builds");
    let count = |p: &str| crate::models::summary::parameter_count(&vs, p);
    (count("backbone."), count(""))
}

/// The reference's build_model of the pool files (base.yaml: 112² crops, 16 frames) and of the
/// sizes its projects train at (scripts in docs/models.md#parameter-counts).
#[test]
fn pool_backbone_parameter_counts_are_the_references() {
    let head = 768 * 400 + 400;
    assert_eq!(
        counts(&config(TIMESFORMER, &[])),
        (114_617_088, 114_617_088 + head)
    );
    assert_eq!(counts(&config(VIVIT, &[])), (86_539_008, 86_539_008 + head));
    let k400 = ["DATA.TRAIN_CROP_SIZE=224", "DATA.NUM_INPUT_FRAMES=32"];
    assert_eq!(counts(&config(VIVIT, &k400)).0, 88_646_400);
    let tsf = ["DATA.TRAIN_CROP_SIZE=224", "DATA.NUM_INPUT_FRAMES=8"];
    assert_eq!(counts(&config(TIMESFORMER, &tsf)).0, 115_219_200);
}

#[test]
fn keys_and_shapes_are_the_references() {
    let vs = nn::VarStore::new(Device::Cpu);
    VideoModel::new(&vs.root(), &small(TIMESFORMER, &[])).unwrap();
    let v = vs.variables();
    for (name, shape) in [
        ("backbone.stem.conv1.weight", vec![32, 3, 1, 8, 8]),
        ("backbone.stem.conv1.bias", vec![32]),
        ("backbone.cls_token", vec![1, 1, 32]),
        ("backbone.pos_embd", vec![1, 1 + 4 * 4, 32]),
        ("backbone.layers.1.norm_temporal.weight", vec![32]),
        (
            "backbone.layers.1.attn_temporal.to_qkv.weight",
            vec![96, 32],
        ),
        ("backbone.layers.1.attn.proj.bias", vec![32]),
        ("backbone.layers.1.ffn.net.0.weight", vec![128, 32]),
        ("backbone.layers.1.ffn.net.3.weight", vec![32, 128]),
        ("backbone.norm.bias", vec![32]),
        ("head.linear.weight", vec![400, 32]),
    ] {
        assert_eq!(v.get(name).map(Tensor::size), Some(shape), "{name}");
    }
    // ViViT: tubelets of 2 frames, no temporal attention.
    let vs = nn::VarStore::new(Device::Cpu);
    VideoModel::new(&vs.root(), &small(VIVIT, &["VIDEO.BACKBONE.MLP_MULT=2"])).unwrap();
    let v = vs.variables();
    assert_eq!(v["backbone.stem.conv1.weight"].size(), [32, 3, 2, 8, 8]);
    assert_eq!(v["backbone.pos_embd"].size(), [1, 1 + 2 * 4, 32]);
    assert_eq!(v["backbone.layers.0.ffn.net.0.weight"].size(), [64, 32]);
    assert!(!v.keys().any(|k| k.contains("temporal")));
}

/// Divided attention over one frame of patches equals joint attention: with a single frame the
/// temporal step attends each patch to itself and the class token, and the spatial step sees
/// every token, so the layer's spatial half must equal [`Attention::forward_joint`].
#[test]
fn divided_attention_over_space_of_one_frame_is_joint_attention() {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let attn = Attention::new(&vs.root(), 16, 4, 0.0, 0.0);
    let x = Tensor::randn([2, 1 + 6, 16], (Kind::Float, Device::Cpu));
    let joint = attn.forward_joint(&x, false);
    let divided = attn.forward_divided(&x, 1, 6, Divide::Space, false);
    assert!(divided.allclose(&joint, 1e-5, 1e-6, false));
    // Over time, each of the 6 patch positions attends to its one frame and the class token
    // only: not joint attention.
    let time = attn.forward_divided(&x, 1, 6, Divide::Time, false);
    assert!(!time.allclose(&joint, 1e-3, 1e-3, false));
    // The class token attends to everything in both.
    assert!(time
        .narrow(1, 0, 1)
        .allclose(&joint.narrow(1, 0, 1), 1e-5, 1e-6, false));
}

/// Train-mode forwards with dropout and stochastic depth run and give finite (B, K) logits.
#[test]
fn forward_shapes_in_both_modes() {
    for (yaml, extra) in [
        (TIMESFORMER, &["VIDEO.BACKBONE.DROP_PATH=0.3"][..]),
        (VIVIT, &["VIDEO.BACKBONE.FF_DROPOUT=0.2"][..]),
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = VideoModel::new(&vs.root(), &small(yaml, extra)).unwrap();
        let x = Tensor::randn([3, 3, 4, 16, 16], (Kind::Float, Device::Cpu));
        for train in [true, false] {
            let out = m.forward_t(&x, train);
            let p = out.predictions.single().unwrap();
            assert_eq!(p.size(), [3, 400]);
            assert_eq!(out.features.size(), [3, 32]);
            assert!(truthy(&p.isfinite().all()));
        }
    }
}

#[test]
fn bad_configs_fail_in_one_line_naming_the_key() {
    for (yaml, overrides, key) in [
        (
            TIMESFORMER,
            &["DATA.TRAIN_CROP_SIZE=20"][..],
            "VIDEO.BACKBONE.PATCH_SIZE",
        ),
        (
            VIVIT,
            &["DATA.NUM_INPUT_FRAMES=5"][..],
            "DATA.NUM_INPUT_FRAMES",
        ),
        (
            VIVIT,
            &["VIDEO.BACKBONE.NUM_HEADS=5"][..],
            "VIDEO.BACKBONE.NUM_HEADS",
        ),
        (
            VIVIT,
            &["VIDEO.BACKBONE.BRANCH.NAME=TimesformerLayer"][..],
            "VIDEO.BACKBONE.STEM.NAME",
        ),
        (
            TIMESFORMER,
            &["VIDEO.BACKBONE.TUBELET_SIZE=2"][..],
            "VIDEO.BACKBONE.TUBELET_SIZE",
        ),
        (
            TIMESFORMER,
            &["VIDEO.BACKBONE.BRANCH.NAME=CSNBranch"][..],
            "VIDEO.BACKBONE.BRANCH.NAME",
        ),
    ] {
        let e = build_err(&small(yaml, overrides));
        assert!(e.contains(key) && !e.contains('\n'), "{overrides:?}: {e}");
    }
    let no_mlp = VIVIT.replace("    MLP_MULT: 4\n", "");
    let e = build_err(&small(&no_mlp, &[]));
    assert!(e.contains("VIDEO.BACKBONE.MLP_MULT"), "{e}");
}

/// NUM_CLASSES: a list is for the two-head models; a one-head model given one is refused at
/// load time naming the key, and a two-head model given one number too.
#[test]
fn class_count_lists_belong_to_two_head_models() {
    let list = ["VIDEO.HEAD.NUM_CLASSES=[97, 300]"];
    let e = crate::config::load_str(VIVIT, "vivit.yaml", &list.map(String::from))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("VIDEO.HEAD.NUM_CLASSES") && !e.contains('\n'),
        "{e}"
    );
    let x2 = ["VIDEO.HEAD.NAME=TransformerHeadx2".to_string()];
    let e = crate::config::load_str(VIVIT, "vivit.yaml", &x2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("VIDEO.HEAD.NUM_CLASSES") && e.contains("two"),
        "{e}"
    );
    let cfg = small(VIVIT, &["VIDEO.HEAD.NAME=TransformerHeadx2", list[0]]);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = VideoModel::new(&vs.root(), &cfg).unwrap();
    let x = Tensor::randn([2, 3, 4, 16, 16], (Kind::Float, Device::Cpu));
    let out = m.forward_t(&x, false);
    assert_eq!(out.predictions.names(), [VERB, NOUN]);
    assert_eq!(out.predictions.get(VERB).unwrap().size(), [2, 97]);
    assert_eq!(out.predictions.get(NOUN).unwrap().size(), [2, 300]);
    assert_eq!(m.head().outputs_per_head(), [97, 300]);
    // Evaluation mode: softmax per head.
    let sums = out
        .predictions
        .get(NOUN)
        .unwrap()
        .sum_dim_intlist(1, false, Kind::Float);
    assert!(sums.allclose(
        &Tensor::ones([2], (Kind::Float, Device::Cpu)),
        1e-5,
        1e-5,
        false
    ));
    // The list is shown as written.
    let shown = crate::config::to_yaml(&cfg);
    assert!(shown.contains("- 97") && shown.contains("- 300"), "{shown}");
}
