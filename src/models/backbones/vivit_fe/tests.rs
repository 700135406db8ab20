use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::models::backbones::transformer::tests::SMALL;
use crate::models::test_support::config;
use crate::models::VideoModel;

/// `configs/pool/backbone/vivit_fac_enc.yaml` with a 400-class head, at base.yaml sizes (112²
/// crops, 16 frames).
const VIVIT_FE: &str = "
VIDEO:
  BACKBONE:
    META_ARCH: FactorizedTransformer
    NUM_FEATURES: 768
    NUM_OUT_FEATURES: 768
    PATCH_SIZE: 16
    TUBELET_SIZE: 2
    DEPTH: 12
    DEPTH_TEMP: 4
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

fn small(extra: &[&str]) -> crate::config::Config {
    let all: Vec<&str> = SMALL
        .iter()
        .chain(&["VIDEO.BACKBONE.DEPTH_TEMP=1"])
        .chain(extra)
        .copied()
        .collect();
    config(VIVIT_FE, &all)
}

/// The reference's build_model: the pool file at base.yaml sizes, and the EPIC-Kitchens project
/// (TransformerHeadx2, verb 97 / noun 300, 32 frames at 224² and fine-tuned at 320²).
#[test]
fn parameter_counts_are_the_references() {
    let count = |cfg: &crate::config::Config| {
        let vs = nn::VarStore::new(Device::Cpu);
        VideoModel::new(&vs.root(), cfg).expect("builds");
        let c = |p: &str| crate::models::summary::parameter_count(&vs, p);
        (c("backbone."), c(""))
    };
    assert_eq!(count(&config(VIVIT_FE, &[])), (114_636_288, 114_943_888));
    let ek100 = [
        "DATA.NUM_INPUT_FRAMES=32",
        "DATA.TRAIN_CROP_SIZE=224",
        "VIDEO.HEAD.NAME=TransformerHeadx2",
        "VIDEO.HEAD.NUM_CLASSES=[97, 300]",
    ];
    assert_eq!(count(&config(VIVIT_FE, &ek100)), (114_755_328, 115_060_621));
}

#[test]
fn keys_and_shapes_are_the_references() {
    let vs = nn::VarStore::new(Device::Cpu);
    VideoModel::new(&vs.root(), &small(&[])).unwrap();
    let v = vs.variables();
    for (name, shape) in [
        ("backbone.stem.conv1.weight", vec![32, 3, 2, 8, 8]),
        ("backbone.pos_embd", vec![1, 1 + 4, 32]),
        ("backbone.temp_embd", vec![1, 1 + 2, 32]),
        ("backbone.cls_token", vec![1, 1, 32]),
        ("backbone.cls_token_out", vec![1, 1, 32]),
        ("backbone.layers.1.attn.to_qkv.weight", vec![96, 32]),
        ("backbone.norm.weight", vec![32]),
        ("backbone.layers_temporal.0.ffn.net.3.bias", vec![32]),
        ("backbone.norm_out.weight", vec![32]),
    ] {
        assert_eq!(v.get(name).map(Tensor::size), Some(shape), "{name}");
    }
    assert!(!v.contains_key("backbone.layers_temporal.1.norm.weight"));
}

/// In evaluation mode another square crop resizes the spatial positional embedding (as the
/// reference, to test at another size); in training it is an error of the input.
#[test]
fn another_crop_is_resized_in_evaluation_only() {
    let vs = nn::VarStore::new(Device::Cpu);
    let m = VideoModel::new(&vs.root(), &small(&[])).unwrap();
    let x = Tensor::randn([2, 3, 4, 24, 24], (Kind::Float, Device::Cpu));
    let out = m.forward_t(&x, false);
    assert_eq!(out.predictions.single().unwrap().size(), [2, 400]);
    let train = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.forward_t(&x, true)));
    assert!(train.is_err());
}

#[test]
fn timesformer_layers_are_refused() {
    let cfg = small(&["VIDEO.BACKBONE.BRANCH.NAME=TimesformerLayer"]);
    let vs = nn::VarStore::new(Device::Cpu);
    let e = VideoModel::new(&vs.root(), &cfg).unwrap_err().to_string();
    assert!(
        e.contains("VIDEO.BACKBONE.BRANCH.NAME") && e.contains("BaseTransformerLayer"),
        "{e}"
    );
    let no_depth = VIVIT_FE.replace("    DEPTH_TEMP: 4\n", "");
    let vs = nn::VarStore::new(Device::Cpu);
    let all: Vec<&str> = SMALL.to_vec();
    let e = VideoModel::new(&vs.root(), &config(&no_depth, &all))
        .unwrap_err()
        .to_string();
    assert!(e.contains("VIDEO.BACKBONE.DEPTH_TEMP"), "{e}");
}

/// TRAIN.CHECKPOINT_PRE_PROCESS (image ViT weights into ViViT: `central_frame`, `repeat`) sizes
/// the stem and the embeddings by the ViViT key TUBELET_SIZE, as the reference does.
#[test]
fn checkpoint_preprocessing_reads_the_tubelet_size() {
    let s = crate::checkpoint::image_init::InitSettings::from_config(&config(VIVIT_FE, &[]));
    assert_eq!(s.tubelet, Some(2));
}
