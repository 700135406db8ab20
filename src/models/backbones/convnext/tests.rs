use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::*;
use crate::config::Config;
use crate::models::test_support::{config, truthy};
use crate::models::VideoModel;

/// A tiny TAdaConvNeXtV2 (whole model, BaseHead) for quick tests and the every-backbone sweep:
/// widths 8/16/16/32 with routing widths 4/8/8/16 (one to four heads of 4), five blocks, drop
/// path on, and the smallest clip the layers take: 6 frames (3 after the stem, as the blocks'
/// temporal pooling needs) of 32×32 (a 2×2 patch left for the last downsampling).
pub(crate) const TINY_TADACONVNEXTV2: &str = "
MODEL: {NAME: TAdaConvNeXtV2-Tiny}
VIDEO:
  BACKBONE:
    META_ARCH: ConvNeXt
    DEPTH: [1, 1, 2, 1]
    NUM_FILTERS: [8, 16, 16, 32]
    NUM_INPUT_CHANNELS: 3
    NUM_OUT_FEATURES: 32
    DROP_PATH: 0.1
    LARGE_SCALE_INIT_VALUE: 1e-6
    STEM: {T_KERNEL_SIZE: 3, T_STRIDE: 2}
    BRANCH: {NAME: TAdaConvNeXtV2Block, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 2, HEAD_DIM: 4}
  HEAD: {NAME: BaseHead, ACTIVATION: softmax, DROPOUT_RATE: 0.5, NUM_CLASSES: 5}
DATA: {NUM_INPUT_FRAMES: 6, TRAIN_CROP_SIZE: 32}
";

/// The released backbone files `configs/pool/backbone/tadaconvnextv2_{tiny,small,base}.yaml`
/// with a 400-class head.
fn released(depth: &str, filters: &str, out: usize, head_dim: usize) -> Config {
    let yaml = format!(
        "
VIDEO:
  BACKBONE:
    META_ARCH: ConvNeXt
    DEPTH: {depth}
    NUM_FILTERS: {filters}
    NUM_OUT_FEATURES: {out}
    DROP_PATH: 0.2
    LARGE_SCALE_INIT_VALUE: 1e-6
    STEM: {{T_KERNEL_SIZE: 3, T_STRIDE: 2}}
    BRANCH: {{NAME: TAdaConvNeXtV2Block, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 2, HEAD_DIM: {head_dim}}}
  HEAD: {{NAME: BaseHead, NUM_CLASSES: 400, DROPOUT_RATE: 0.5}}
"
    );
    config(&yaml, &[])
}

fn tiny(overrides: &[&str]) -> Config {
    config(TINY_TADACONVNEXTV2, overrides)
}

fn build(cfg: &Config) -> (nn::VarStore, Result<ConvNeXt, ModelError>) {
    let vs = nn::VarStore::new(Device::Cpu);
    let m = ConvNeXt::new(&(vs.root() / "backbone"), &cfg.video.backbone);
    (vs, m)
}

fn shape(vs: &nn::VarStore, name: &str) -> Vec<i64> {
    match vs.variables().get(name) {
        Some(t) => t.size(),
        None => panic!("no variable {name}"),
    }
}

fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

#[test]
fn keys_and_shapes_follow_the_state_dict() {
    let (vs, m) = build(&tiny(&[]));
    m.expect("tiny ConvNeXt builds");
    let cases: &[(&str, &[i64])] = &[
        ("backbone.downsample_layers.0.0.weight", &[8, 3, 3, 4, 4]),
        ("backbone.downsample_layers.0.0.bias", &[8]),
        ("backbone.downsample_layers.0.1.weight", &[8]),
        ("backbone.downsample_layers.1.0.bias", &[8]),
        ("backbone.downsample_layers.3.1.weight", &[32, 16, 1, 2, 2]),
        ("backbone.stages.2.1.gamma", &[16]),
        ("backbone.stages.2.1.dwconv.weight", &[1, 1, 16, 1, 7, 7]),
        ("backbone.stages.2.1.dwconv.bias", &[1, 1, 16]),
        ("backbone.stages.2.1.dwconv_rf.a.weight", &[8, 16, 3, 1, 1]),
        ("backbone.stages.2.1.dwconv_rf.norm_transformer.bias", &[8]),
        (
            "backbone.stages.2.1.dwconv_rf.qkv_proj.weight",
            &[24, 8, 1, 1, 1],
        ),
        ("backbone.stages.2.1.dwconv_rf.attn_out.bias", &[8]),
        ("backbone.stages.2.1.dwconv_rf.b.weight", &[16, 8, 3, 1, 1]),
        (
            "backbone.stages.2.1.dwconv_rf.b_bias.weight",
            &[16, 8, 3, 1, 1],
        ),
        ("backbone.stages.2.1.norm_avgpool.weight", &[16]),
        ("backbone.stages.2.1.pwconv1.weight", &[64, 16]),
        ("backbone.stages.2.1.pwconv2.weight", &[16, 64]),
        ("backbone.norm.weight", &[32]),
    ];
    for (name, want) in cases {
        assert_eq!(shape(&vs, name), *want, "{name}");
    }
    // 4 convs + 4 norms (2 tensors each), 23 tensors per block, the final norm; no buffers.
    let blocks = 5;
    assert_eq!(vs.variables().len(), 16 + 23 * blocks + 2);
    assert!(vs.variables().values().all(|t| t.requires_grad()));
}

#[test]
fn initial_values_follow_the_reference() {
    let (vs, m) = build(&tiny(&[]));
    m.expect("builds");
    let v = vs.variables();
    let all = |name: &str, value: f64| {
        let t = &v[name];
        assert!(truthy(&t.eq(value).all()), "{name} must start at {value}");
    };
    all("backbone.stages.0.0.gamma", 1e-6);
    all("backbone.stages.0.0.norm_avgpool.weight", 0.0);
    all("backbone.stages.0.0.norm_avgpool.bias", 0.0);
    all("backbone.stages.0.0.norm.weight", 1.0);
    all("backbone.stages.0.0.dwconv_rf.b.weight", 0.0);
    all("backbone.stages.0.0.dwconv_rf.b_bias.weight", 0.0);
    all("backbone.stages.0.0.pwconv1.bias", 0.0);
    all("backbone.downsample_layers.2.1.bias", 0.0);
    all("backbone.norm.bias", 0.0);
    // trunc-normal(0.02) weights.
    let std = v["backbone.stages.0.0.pwconv1.weight"]
        .std(true)
        .double_value(&[]);
    assert!((std - 0.02).abs() < 4e-3, "pwconv1 std {std}");
    let std = v["backbone.downsample_layers.0.0.weight"]
        .std(true)
        .double_value(&[]);
    assert!((std - 0.02).abs() < 4e-3, "stem std {std}");

    // Without a layer scale the block has no gamma at all.
    let (vs, m) = build(&tiny(&["VIDEO.BACKBONE.LARGE_SCALE_INIT_VALUE=0"]));
    m.expect("builds");
    assert!(!vs.variables().contains_key("backbone.stages.0.0.gamma"));
}

#[test]
fn drop_path_rates_are_a_float32_linspace() {
    let cfg = tiny(&[
        "VIDEO.BACKBONE.DEPTH=[2, 2, 3, 2]",
        "VIDEO.BACKBONE.DROP_PATH=0.2",
    ]);
    let spec = ConvNeXtSpec::from_config(&cfg.video.backbone).expect("valid");
    let rates = spec.drop_path_rates();
    assert_eq!(rates.len(), 9);
    assert_eq!(rates[0], 0.0);
    // What the reference prints for block stages.0.1: DropPath(0.02500000037252903).
    assert_eq!(rates[1], 0.025f32 as f64);
    assert_eq!(rates[8], 0.2f32 as f64);
}

#[test]
fn drop_path_drops_whole_samples_in_training_only() {
    tch::manual_seed(11);
    let x = randn(&[4000, 3, 2]);
    assert!(drop_path(&x, 0.3, false).equal(&x));
    assert!(drop_path(&x, 0.0, true).equal(&x));
    let y = drop_path(&x, 0.3, true);
    // Every sample is either dropped (all 0) or kept and scaled by 1 / 0.7.
    let kept = y.ne(0.0).any_dim(-1, false).any_dim(-1, false);
    let scaled = &x / 0.7;
    for i in [0i64, 1, 2, 3, 17, 3999] {
        let yi = y.get(i);
        if truthy(&kept.get(i)) {
            assert!(yi.allclose(&scaled.get(i), 1e-6, 1e-6, false), "sample {i}");
        } else {
            assert!(truthy(&yi.eq(0.0).all()), "sample {i}");
        }
    }
    let frac = kept
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!((frac - 0.7).abs() < 0.03, "kept fraction {frac}");
}

#[test]
fn forward_records_every_tap_with_its_shape() {
    let (_vs, m) = build(&tiny(&[]));
    let m = m.expect("builds");
    let mut taps = Taps::collecting();
    let out = m.forward_taps(&randn(&[2, 3, 6, 32, 32]), false, &mut taps);
    assert_eq!(out.size(), [2, 32]);
    assert!(truthy(&out.isfinite().all()));
    let get = |name: &str| match taps.get(name) {
        Some(t) => t.size(),
        None => panic!("no tap {name}"),
    };
    assert_eq!(get("backbone.downsample_layers.0"), [2, 8, 3, 8, 8]);
    assert_eq!(get("backbone.stages.0"), [2, 8, 3, 8, 8]);
    assert_eq!(get("backbone.stages.0.0.dwconv_rf.0"), [2, 8, 3, 1, 1]);
    assert_eq!(get("backbone.stages.0.0.dwconv_rf.1"), [2, 8, 3, 1, 1]);
    assert_eq!(get("backbone.stages.2.1.dwconv"), [2, 16, 3, 2, 2]);
    assert_eq!(get("backbone.downsample_layers.3"), [2, 32, 3, 1, 1]);
    assert_eq!(get("backbone.stages.3"), [2, 32, 3, 1, 1]);
    assert_eq!(get("backbone.norm"), [2, 32]);
    // Without taps nothing changes.
    let again = m.forward_t(&randn(&[1, 3, 6, 32, 32]), false);
    assert_eq!(again.size(), [1, 32]);
}

/// At initialisation every calibration is exactly 1 and the temporal branch is off, so a block
/// equals a plain ConvNeXt block: x + γ·pwconv2(QuickGELU(pwconv1(LN(dwconv(x))))).
#[test]
fn a_fresh_block_is_an_image_convnext_block() {
    tch::manual_seed(5);
    let cfg = tiny(&["VIDEO.BACKBONE.LARGE_SCALE_INIT_VALUE=0.5"]);
    let spec = ConvNeXtSpec::from_config(&cfg.video.backbone).expect("valid");
    let vs = nn::VarStore::new(Device::Cpu);
    let block =
        TAdaConvNeXtV2Block::new(&(vs.root() / "b"), &spec.block_spec(1, 0.0)).expect("builds");
    let x = randn(&[2, 16, 3, 6, 5]);
    let ours = block.forward_t(&x, false);
    let v = vs.variables();
    // (1, 1, C, 1, 7, 7) -> (C, 1, 1, 7, 7): a depthwise Conv3d with a 1×7×7 kernel.
    let w = v["b.dwconv.weight"].reshape([16, 1, 1, 7, 7]);
    let bias = v["b.dwconv.bias"].reshape([16]);
    let y = x.conv3d(&w, Some(&bias), [1, 1, 1], [0, 3, 3], [1, 1, 1], 16);
    // (N, C, T, H, W) -> (N, T, H, W, C)
    let y = y.permute([0, 2, 3, 4, 1]);
    let y = y.layer_norm(
        [16],
        Some(&v["b.norm.weight"]),
        Some(&v["b.norm.bias"]),
        1e-6,
        false,
    );
    let y = y.linear(&v["b.pwconv1.weight"], Some(&v["b.pwconv1.bias"]));
    let y = crate::models::ops::quick_gelu(&y);
    let y = y.linear(&v["b.pwconv2.weight"], Some(&v["b.pwconv2.bias"])) * 0.5;
    // (N, T, H, W, C) -> (N, C, T, H, W)
    let expect = &x + y.permute([0, 4, 1, 2, 3]);
    let diff = (ours - expect).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "max |diff| {diff}");
}

/// Gives every parameter a generic value (the zero-initialised routing heads and temporal norm
/// would otherwise block the gradient of what sits behind them on the first step).
fn perturb(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, t) in vs.variables() {
            let noise = Tensor::randn_like(&t) * 0.1;
            let _ = t.shallow_clone().g_add_(&noise);
        }
    });
}

#[test]
fn training_mode_reaches_every_parameter() {
    tch::manual_seed(7);
    let cfg = tiny(&[]);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = VideoModel::new(&vs.root(), &cfg).unwrap_or_else(|e| panic!("model builds: {e}"));
    perturb(&vs);
    let xs = randn(&[3, 3, 6, 32, 32]);
    m.check_input(&xs).expect("valid input");
    let out = m.forward_t(&xs, true);
    let logits = out.predictions.single().expect("one prediction");
    assert_eq!(logits.size(), [3, 5]);
    assert_eq!(out.features.size(), [3, 32]);
    let loss = (logits * randn(&[3, 5])).sum(Kind::Float);
    let mut opt = nn::Sgd::default().build(&vs, 0.1).expect("optimizer");
    opt.zero_grad();
    loss.backward();
    let mut trainable = 0;
    for (name, t) in vs.variables() {
        assert!(t.requires_grad(), "{name} is not trainable");
        trainable += 1;
        let g = t.grad();
        assert!(g.defined(), "{name} has no gradient");
        assert!(truthy(&g.isfinite().all()), "{name}: non-finite gradient");
        assert!(
            g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name}: gradient is all zero"
        );
    }
    assert_eq!(trainable, 16 + 23 * 5 + 2 + 2);
    opt.step();
}

/// Training differs from evaluation only through drop path (and the head's dropout): with both
/// off, train and eval forwards agree exactly (there is no BatchNorm).
#[test]
fn without_drop_path_training_equals_evaluation() {
    tch::manual_seed(3);
    let cfg = tiny(&["VIDEO.BACKBONE.DROP_PATH=0"]);
    let (vs, m) = build(&cfg);
    let m = m.expect("builds");
    perturb(&vs);
    let x = randn(&[2, 3, 6, 32, 32]);
    let train = m.forward_t(&x, true);
    let eval = m.forward_t(&x, false);
    assert!(train.equal(&eval));
    // With a large drop-path rate training differs from evaluation.
    let cfg = tiny(&["VIDEO.BACKBONE.DROP_PATH=0.9"]);
    let (vs, m) = build(&cfg);
    let m = m.expect("builds");
    perturb(&vs);
    let train = m.forward_t(&x, true);
    let eval = m.forward_t(&x, false);
    assert!(!train.allclose(&eval, 1e-4, 1e-4, false));
}

fn error_for(overrides: &[&str]) -> ModelError {
    match build(&tiny(overrides)).1 {
        Ok(_) => panic!("{overrides:?} should not build"),
        Err(e) => e,
    }
}

#[test]
fn bad_configs_name_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (&["VIDEO.BACKBONE.DEPTH=18"], KEY_DEPTH),
        (&["VIDEO.BACKBONE.DEPTH=[1, 1, 1]"], KEY_DEPTH),
        (&["VIDEO.BACKBONE.NUM_FILTERS=[8, 16, 32]"], KEY_FILTERS),
        (&["VIDEO.BACKBONE.NUM_FILTERS=[8, 0, 16, 32]"], KEY_FILTERS),
        (&["VIDEO.BACKBONE.NUM_INPUT_CHANNELS=0"], KEY_IN_CHANNELS),
        (&["VIDEO.BACKBONE.DROP_PATH=1.0"], KEY_DROP_PATH),
        (&["VIDEO.BACKBONE.STEM.T_STRIDE=0"], KEY_T_STRIDE),
        (&["VIDEO.BACKBONE.BRANCH.NAME=R2D3DBranch"], KEY_BRANCH),
        (&["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R=0"], KEY_RF_R),
        (&["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K=[3, 2]"], KEY_RF_K),
        (&["VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K=[3]"], KEY_RF_K),
        // Routing widths 4/8/8/16 are not all multiples of 8.
        (&["VIDEO.BACKBONE.BRANCH.HEAD_DIM=8"], KEY_HEAD_DIM),
        (&["VIDEO.BACKBONE.BRANCH.HEAD_DIM=0"], KEY_HEAD_DIM),
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
  BACKBONE: {META_ARCH: ConvNeXt, DEPTH: [1, 1, 1, 1], NUM_FILTERS: [8, 16, 16, 32],
             BRANCH: {NAME: TAdaConvNeXtV2Block, ROUTE_FUNC_R: 2, ROUTE_FUNC_K: [3, 3]}}
  HEAD: {NUM_CLASSES: 5}
";
    let cfg = config(yaml, &[]);
    let e = build(&cfg).1.expect_err("no STEM.T_KERNEL_SIZE");
    assert!(
        matches!(&e, ModelError::Key(k) if k.key == KEY_T_KERNEL),
        "{e}"
    );
    // HEAD_DIM falls back to the block's 48, which routing widths 4..16 cannot split.
    let cfg = config(
        yaml,
        &[
            "VIDEO.BACKBONE.STEM.T_KERNEL_SIZE=3",
            "VIDEO.BACKBONE.STEM.T_STRIDE=2",
        ],
    );
    let e = build(&cfg).1.expect_err("HEAD_DIM 48");
    assert_eq!(e.key(), Some(KEY_HEAD_DIM), "{e}");
    assert!(e.to_string().contains("48"), "{e}");
}

/// (backbone, total) trainable parameters of the whole model.
fn counts(cfg: &Config) -> (i64, i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    tch::no_grad(|| VideoModel::new(&vs.root(), cfg))
        .unwrap_or_else(|e| panic!("model builds: {e}"));
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

/// docs/models.md#parameter-counts. Builds the three released sizes on the CPU one after the other
/// (the Base holds about 0.6 GB while it is counted).
#[test]
fn parameter_counts_match_backbones_md() {
    let tiny = released("[3, 3, 9, 3]", "[96, 192, 384, 768]", 768, 48);
    assert_eq!(counts(&tiny), (45_663_888, 45_971_488));
    let small = released("[3, 3, 27, 3]", "[96, 192, 384, 768]", 768, 48);
    assert_eq!(counts(&small), (81_941_520, 82_249_120));
    let base = released("[3, 3, 27, 3]", "[128, 256, 512, 1024]", 1024, 64);
    assert_eq!(counts(&base), (145_277_632, 145_687_632));
}
