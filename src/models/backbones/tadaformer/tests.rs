use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::block::{drop_path, MultiheadAttention};
use super::*;
use crate::config::{load_str, Config};
use crate::models::VideoModel;

/// A tiny TAdaFormer with every option on (TEMP_ENHANCE, DOUBLE_TADA, drop path): W 128, two
/// layers of two heads, a 2×2 patch grid, 3 frames after the tubelet embedding (the
/// temporal aggregation's 3-frame pool needs at least 3), TAda width 64 and one 64-wide routing head.
pub const TINY_TADAFORMER: &str = "
MODEL: {NAME: TAdaFormer_tiny}
VIDEO:
  BACKBONE:
    META_ARCH: VisionTransformer
    INPUT_RES: 32
    PATCH_SIZE: 16
    TUBLET_SIZE: 3
    TUBLET_STRIDE: 2
    NUM_FEATURES: 128
    NUM_OUT_FEATURES: 128
    DEPTH: 2
    NUM_HEADS: 2
    DROP_PATH: 0.2
    REDUCTION: 2
    BRANCH: {NAME: TAdaFormerBlock, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 1}
    TEMP_ENHANCE: true
    DOUBLE_TADA: true
  HEAD: {NAME: BaseHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
DATA: {NUM_INPUT_FRAMES: 6, TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32}
";

/// TAdaFormer-B/16 as `configs/pool/backbone/tadaformer_b16.yaml` with the K400 project's head.
const B16_K400: &str = "
MODEL: {NAME: TAdaFormer_B16}
VIDEO:
  BACKBONE:
    META_ARCH: VisionTransformer
    INPUT_RES: 224
    PATCH_SIZE: 16
    TUBLET_SIZE: 3
    TUBLET_STRIDE: 2
    NUM_FEATURES: 768
    NUM_OUT_FEATURES: 768
    DEPTH: 12
    NUM_HEADS: 12
    REDUCTION: 2
    BRANCH: {NAME: TAdaFormerBlock, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 2}
  HEAD: {NAME: BaseHead, NUM_CLASSES: 400, DROPOUT_RATE: 0.5}
DATA: {NUM_INPUT_FRAMES: 16}
";

/// Overrides turning [`B16_K400`] into the other released models.
const SSV2: &[&str] = &[
    "VIDEO.BACKBONE.TEMP_ENHANCE=true",
    "VIDEO.BACKBONE.DOUBLE_TADA=true",
    "VIDEO.HEAD.NUM_CLASSES=174",
];
const L14: &[&str] = &[
    "MODEL.NAME=TAdaFormer_L14",
    "VIDEO.BACKBONE.PATCH_SIZE=14",
    "VIDEO.BACKBONE.NUM_FEATURES=1024",
    "VIDEO.BACKBONE.NUM_OUT_FEATURES=1024",
    "VIDEO.BACKBONE.DEPTH=24",
    "VIDEO.BACKBONE.NUM_HEADS=16",
];

/// (overrides, backbone parameters, with head) from docs/models.md#parameter-counts.
fn released() -> [(Vec<&'static str>, i64, i64); 4] {
    let cat = |a: &[&'static str], b: &[&'static str]| [a, b].concat();
    [
        (vec![], 103_888_128, 104_195_728),
        (SSV2.to_vec(), 134_952_960, 135_086_766),
        (L14.to_vec(), 364_417_024, 364_827_024),
        (cat(L14, SSV2), 474_781_696, 474_960_046),
    ]
}

fn config(yaml: &str, overrides: &[&str]) -> Config {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match load_str(yaml, "test.yaml", &overrides) {
        Ok(c) => c.config,
        Err(e) => panic!("test config does not load: {e}"),
    }
}

fn build(cfg: &Config) -> (nn::VarStore, TAdaFormer) {
    let vs = nn::VarStore::new(Device::Cpu);
    let m = TAdaFormer::new(&(vs.root() / "backbone"), &cfg.video.backbone, &cfg.bn)
        .unwrap_or_else(|e| panic!("{e}"));
    (vs, m)
}

fn trainable(vs: &nn::VarStore) -> i64 {
    vs.variables()
        .values()
        .filter(|t| t.requires_grad())
        .map(|t| t.numel() as i64)
        .sum()
}

fn shape(vs: &nn::VarStore, name: &str) -> Vec<i64> {
    match vs.variables().get(name) {
        Some(t) => t.size(),
        None => panic!("no variable {name}"),
    }
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn tiny_keys_and_shapes() {
    let (vs, _m) = build(&config(TINY_TADAFORMER, &[]));
    let l = "backbone.layers.1";
    let expect: &[(&str, &[i64])] = &[
        ("backbone.class_embedding", &[128]),
        ("backbone.positional_embedding", &[5, 128]),
        ("backbone.conv1.weight", &[128, 3, 3, 16, 16]),
        ("backbone.ln_pre.weight", &[128]),
        ("backbone.ln_post.bias", &[128]),
        ("tada.tada_pre_proj.weight", &[64, 128, 3, 1, 1]),
        ("tada.tadaconv.weight", &[1, 1, 64, 1, 3, 3]),
        ("tada.tadaconv.bias", &[1, 1, 64]),
        ("tada.tadaconv.rf_func.a.weight", &[64, 64, 3, 1, 1]),
        ("tada.tadaconv.rf_func.qkv_proj.weight", &[192, 64, 1, 1, 1]),
        ("tada.tadaconv.rf_func.b_bias.weight", &[64, 64, 3, 1, 1]),
        ("tada.tadaconv.bn_b.running_var", &[64]),
        ("tada2.tada_proj.weight", &[128, 64, 1, 1, 1]),
        ("tada2.tada_proj.bias", &[128]),
        ("attn.in_proj_weight", &[384, 128]),
        ("attn.in_proj_bias", &[384]),
        ("attn.out_proj.weight", &[128, 128]),
        ("ln_1.weight", &[128]),
        ("mlp.c_fc.weight", &[512, 128]),
        ("mlp.c_proj.weight", &[128, 512]),
        ("ln_2.bias", &[128]),
    ];
    for (name, want) in expect {
        let full = if name.starts_with("backbone.") {
            name.to_string()
        } else {
            format!("{l}.{name}")
        };
        assert_eq!(shape(&vs, &full), *want, "{full}");
    }
    assert!(!vs.variables().contains_key("backbone.conv1.bias"));
    assert!(!vs.variables().contains_key("backbone.proj"));
}

#[test]
fn plain_tada_uses_linear_projections() {
    let cfg = config(
        TINY_TADAFORMER,
        &[
            "VIDEO.BACKBONE.TEMP_ENHANCE=false",
            "VIDEO.BACKBONE.DOUBLE_TADA=false",
        ],
    );
    let (vs, _m) = build(&cfg);
    let l = "backbone.layers.0";
    assert_eq!(
        shape(&vs, &format!("{l}.tada.tada_pre_proj.weight")),
        [64, 128]
    );
    assert_eq!(shape(&vs, &format!("{l}.tada.tada_proj.weight")), [128, 64]);
    assert!(!vs.variables().keys().any(|k| k.contains(".tada2.")));
}

/// Every block has the same parameters, so count(DEPTH) = count(1) + (DEPTH − 1)·(one block):
/// the released sizes from two small builds instead of a 1.9 GB one.
#[test]
fn released_backbone_counts_by_layers() {
    for (overrides, backbone, _) in released() {
        let count = |depth: usize| {
            let d = format!("VIDEO.BACKBONE.DEPTH={depth}");
            let all: Vec<&str> = overrides.iter().copied().chain([d.as_str()]).collect();
            let cfg = config(B16_K400, &all);
            trainable(&build(&cfg).0)
        };
        let depth = match config(B16_K400, &overrides).video.backbone.depth {
            Some(Depth::Layers(d)) => d as i64,
            other => panic!("depth {other:?}"),
        };
        let (one, two) = (count(1), count(2));
        assert_eq!(one + (depth - 1) * (two - one), backbone, "{overrides:?}");
    }
}

/// TAdaFormer-B/16 (K400) built whole, head included: 416 MB of parameters.
#[test]
fn b16_k400_count_whole_model() {
    let cfg = config(B16_K400, &[]);
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = VideoModel::new(&vs.root(), &cfg).expect("builds");
    let backbone: i64 = vs
        .variables()
        .iter()
        .filter(|(n, t)| n.starts_with("backbone.") && t.requires_grad())
        .map(|(_, t)| t.numel() as i64)
        .sum();
    assert_eq!(backbone, 103_888_128);
    assert_eq!(trainable(&vs), 104_195_728);
}

/// All four released models built whole (up to 1.9 GB): run with `--ignored`.
#[test]
#[ignore]
fn released_counts_whole_models() {
    for (overrides, backbone, with_head) in released() {
        let cfg = config(B16_K400, &overrides);
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = VideoModel::new(&vs.root(), &cfg).expect("builds");
        let bb: i64 = vs
            .variables()
            .iter()
            .filter(|(n, t)| n.starts_with("backbone.") && t.requires_grad())
            .map(|(_, t)| t.numel() as i64)
            .sum();
        println!("{overrides:?}: backbone {bb}, with head {}", trainable(&vs));
        assert_eq!((bb, trainable(&vs)), (backbone, with_head), "{overrides:?}");
    }
}

#[test]
fn forward_shapes_and_taps() {
    tch::manual_seed(0);
    let (_vs, m) = build(&config(TINY_TADAFORMER, &[]));
    let xs = Tensor::randn([2, 3, 6, 32, 32], (Kind::Float, Device::Cpu));
    let mut taps = Taps::collecting();
    let out = tch::no_grad(|| m.forward_taps(&xs, false, &mut taps));
    assert_eq!(out.size(), [2, 128]);
    let b = "backbone";
    let want: &[(&str, &[i64])] = &[
        ("conv1", &[2, 128, 3, 2, 2]),
        ("ln_pre", &[6, 5, 128]),
        ("layers.0.tada.tadaconv.rf_func.0", &[2, 64, 3, 1, 1]),
        ("layers.0.tada.tadaconv.rf_func.1", &[2, 64, 3, 1, 1]),
        // TEMP_ENHANCE: the TAdaConv sees clips.
        ("layers.0.tada.tadaconv", &[2, 64, 3, 2, 2]),
        ("layers.0.tada", &[4, 6, 128]),
        ("layers.0.tada2", &[4, 6, 128]),
        ("layers.1", &[5, 6, 128]),
        ("ln_post", &[2, 128]),
    ];
    for (path, s) in want {
        let t = taps
            .get(&format!("{b}.{path}"))
            .unwrap_or_else(|| panic!("no tap {path}"));
        assert_eq!(t.size(), *s, "{path}");
    }
    // The zero-initialised `tada_proj` makes every TAda branch exactly 0 at the start, so CLIP
    // weights loaded over the rest give CLIP.
    for path in ["layers.0.tada", "layers.1.tada2"] {
        let t = taps.get(&format!("{b}.{path}")).expect("tap");
        assert_eq!(max_abs(t), 0.0, "{path}");
    }
}

#[test]
fn attention_equals_explicit_softmax() {
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let attn = MultiheadAttention::new(&vs.root(), 8, 2, 0.0);
    let x = Tensor::randn([5, 3, 8], (Kind::Float, Device::Cpu));
    let ours = tch::no_grad(|| attn.forward_t(&x, false));
    let vars = vs.variables();
    let qkv = x.linear(&vars["in_proj_weight"], Some(&vars["in_proj_bias"]));
    let mut heads = Vec::new();
    for h in 0..2 {
        // Head h reads channels h·4 .. h·4 + 4 of q, k and v: (L, N, 4) -> (N, L, 4).
        let part = |s: i64| qkv.narrow(2, s * 8 + h * 4, 4).transpose(0, 1);
        let a = (part(0).matmul(&part(1).transpose(1, 2)) / 2.0).softmax(-1, Kind::Float);
        heads.push(a.matmul(&part(2)).transpose(0, 1));
    }
    let merged = Tensor::cat(&heads, 2);
    let expect = merged.linear(&vars["out_proj.weight"], Some(&vars["out_proj.bias"]));
    let diff = max_abs(&(ours - expect));
    assert!(diff < 1e-5, "max |diff| {diff}");
}

#[test]
fn drop_path_is_per_video() {
    tch::manual_seed(2);
    let x = Tensor::ones([3, 8 * 4, 2], (Kind::Float, Device::Cpu));
    assert_eq!(max_abs(&(drop_path(&x, 0.5, 4, false) - &x)), 0.0);
    let y = drop_path(&x, 0.5, 4, true);
    // (L, B·T, W) -> (B, L·T·W): one value per video, 0 or 1 / 0.5.
    let per_video = y
        .reshape([3, 8, 4, 2])
        .permute([1, 0, 2, 3])
        .reshape([8, -1]);
    let (lo, hi) = (per_video.amin(1, false), per_video.amax(1, false));
    assert_eq!(max_abs(&(&lo - &hi)), 0.0);
    let kept = hi.eq(2.0).sum(Kind::Int64).int64_value(&[]);
    let dropped = hi.eq(0.0).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(kept + dropped, 8);
    assert!(kept > 0 && dropped > 0, "kept {kept} of 8");
}

#[test]
fn drop_path_rates_rise_linearly() {
    let cfg = config(B16_K400, &["VIDEO.BACKBONE.DROP_PATH=0.2"]);
    let spec = TAdaFormerSpec::from_config(&cfg.video.backbone, &cfg.bn).expect("spec");
    assert_eq!(spec.drop_path_rate(0), 0.0);
    assert!((spec.drop_path_rate(11) - 0.2).abs() < 1e-12);
    assert!((spec.drop_path_rate(1) - 0.2 / 11.0).abs() < 1e-12);
}

/// Train mode, forward and backward through the whole tiny model: every parameter gets a
/// gradient. `tada_proj`, `bn_b` and the TAdaConv bias start at zero (as the reference), which
/// would block the gradient of everything before them in the TAda branch (the bias calibration
/// `b_bias` scales that zero bias), so they are redrawn first.
///
/// One exception, inherited from the reference: the last layer's `tada2` only changes patch
/// tokens after its attention, and only class tokens leave the backbone, so it can never get a
/// gradient. The test checks that too.
#[test]
fn gradients_reach_every_parameter() {
    tch::manual_seed(3);
    // No drop path: a dropped residual would legitimately leave a layer without gradient.
    let cfg = config(TINY_TADAFORMER, &["VIDEO.BACKBONE.DROP_PATH=0.0"]);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = VideoModel::new(&vs.root(), &cfg).expect("builds");
    tch::no_grad(|| {
        for (name, t) in vs.variables() {
            let zero_init = ["tada_proj", "bn_b.weight", "tadaconv.bias"];
            if zero_init.iter().any(|z| name.contains(z)) {
                let _ = t.shallow_clone().normal_(0.0, 0.05);
            }
        }
    });
    let mut opt = nn::Sgd::default().build(&vs, 0.1).expect("optimizer");
    opt.zero_grad();
    let xs = Tensor::randn([2, 3, 6, 32, 32], (Kind::Float, Device::Cpu));
    let out = m.forward_t(&xs, true);
    let logits = out.predictions.single().expect("one prediction");
    let target = Tensor::from_slice(&[1i64, 3]);
    logits.cross_entropy_for_logits(&target).backward();
    let mut checked = 0;
    let mut dead = 0;
    for (name, var) in vs.variables() {
        if !var.requires_grad() {
            continue;
        }
        let grad = var.grad();
        if name.starts_with("backbone.layers.1.tada2.") {
            assert!(!grad.defined() || max_abs(&grad) == 0.0, "{name}");
            dead += 1;
            continue;
        }
        assert!(grad.defined(), "{name}: no gradient");
        let finite = grad.isfinite().all().int64_value(&[]) == 1;
        assert!(finite, "{name}: gradient not finite");
        assert!(max_abs(&grad) > 0.0, "{name}: gradient is zero");
        checked += 1;
    }
    assert_eq!(checked + dead, vs.trainable_variables().len());
    assert_eq!(dead, 22);
    assert!(checked > 60, "{checked} parameters");
}

fn error_for(overrides: &[&str]) -> ModelError {
    let cfg = config(TINY_TADAFORMER, overrides);
    let vs = nn::VarStore::new(Device::Cpu);
    match TAdaFormer::new(&vs.root(), &cfg.video.backbone, &cfg.bn) {
        Ok(_) => panic!("{overrides:?} should not build"),
        Err(e) => e,
    }
}

#[test]
fn bad_configs_name_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (&["VIDEO.BACKBONE.NUM_HEADS=3"], KEY_HEADS),
        (&["VIDEO.BACKBONE.REDUCTION=4"], KEY_RF_R),
        (&["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R=2"], KEY_RF_R),
        (&["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K=[3, 2]"], KEY_RF_K),
        (&["VIDEO.BACKBONE.PATCH_SIZE=64"], KEY_PATCH),
        (&["VIDEO.BACKBONE.DEPTH=[2, 2]"], KEY_DEPTH),
        (&["VIDEO.BACKBONE.BRANCH.NAME=TAda2DBlock"], KEY_BRANCH),
        (&["VIDEO.BACKBONE.INPUT_RES=null"], KEY_INPUT_RES),
        (&["VIDEO.BACKBONE.ATTN_DROPOUT=1.0"], KEY_ATTN_DROPOUT),
    ];
    for (overrides, key) in cases {
        let e = error_for(overrides);
        assert_eq!(e.key(), Some(*key), "{overrides:?}: {e}");
    }
    let e = error_for(&["VIDEO.BACKBONE.REQUIRE_PROJ=true"]);
    assert!(matches!(e, ModelError::Unsupported(_)), "{e}");
}

#[test]
#[should_panic(expected = "positional embedding")]
fn wrong_input_size_panics_with_the_reason() {
    let (_vs, m) = build(&config(TINY_TADAFORMER, &[]));
    let xs = Tensor::zeros([1, 3, 6, 48, 48], (Kind::Float, Device::Cpu));
    let _ = tch::no_grad(|| m.forward_t(&xs, false));
}
