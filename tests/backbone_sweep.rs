//! Every backbone, tiny: build the whole `VideoModel` on the CPU, run one training-mode forward,
//! check the output shape and values, backpropagate one scalar loss and check that a gradient
//! reaches every trainable parameter.
//!
//! To add a backbone, add one [`Case`] to [`CASES`]: a complete config with small widths and an
//! input that the architecture takes. Keep each entry well under a second.

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use tada::config::{load_str, Config};
use tada::models::VideoModel;

/// One tiny model of the sweep.
struct Case {
    /// Label in messages.
    name: &'static str,
    /// A complete model config (reference keys). The head has one output (`BaseHead`, or
    /// `TransformerHead` on the transformers), so the input is one (B, C, T, H, W) clip and the
    /// output one (B, NUM_CLASSES) tensor.
    yaml: &'static str,
    /// (B, C, T, H, W).
    input: [i64; 5],
    /// VIDEO.HEAD.NUM_CLASSES of `yaml`.
    classes: i64,
    /// VIDEO.BACKBONE.NUM_OUT_FEATURES of `yaml`: width of the pooled features.
    features: i64,
    /// Parameters whose gradient is zero in training mode in exact arithmetic, by design, with
    /// the reason; matched as name suffixes. They only need a defined gradient here;
    /// `train_mode_zero_lists_are_true` checks the reason.
    train_mode_zero: &'static [(&'static str, &'static str)],
}

/// A bias added just before a training-mode BatchNorm is a per-channel constant that the batch
/// mean removes again, so its gradient is exactly zero.
const BIAS_BEFORE_TRAIN_BN: &str = "bias added right before a training-mode BatchNorm";

// ---------------------------------------------------------------------------------------------
// The table. One entry per backbone family; keep the widths tiny and the input 2 x 3 x 4 x 32 x 32
// unless the architecture needs something else.
// ---------------------------------------------------------------------------------------------
const CASES: &[Case] = &[
    // R2D3D (MoSI backbone), DEPTH 18, simple blocks; conv4/conv5 stride in time.
    Case {
        name: "R2D3D-18",
        yaml: "
MODEL: {NAME: R2D3D}
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
  HEAD: {NAME: BaseHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
BN: {EPS: 1e-3, MOMENTUM: 0.1}
",
        input: [2, 3, 4, 32, 32],
        classes: 5,
        features: 8,
        train_mode_zero: &[],
    },
    // R(2+1)D (MoSI backbone), DEPTH 10, factorised convs.
    Case {
        name: "R(2+1)D-10",
        yaml: "
MODEL: {NAME: R2Plus1D}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 10
    NUM_FILTERS: [4, 4, 8, 8, 8]
    NUM_OUT_FEATURES: 8
    KERNEL_SIZE: [[3, 7, 7], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, true, true, true]
    EXPANSION_RATIO: 2
    STEM: {NAME: R2Plus1DStem}
    BRANCH: {NAME: R2Plus1DBranch}
  HEAD: {NAME: BaseHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
BN: {EPS: 1e-3, MOMENTUM: 0.1}
",
        input: [2, 3, 4, 32, 32],
        classes: 5,
        features: 8,
        train_mode_zero: &[],
    },
    // ir-CSN: DEPTH 50 (CSNBranch is bottleneck-only), depthwise middle convs of widths 2-16.
    Case {
        name: "ir-CSN-50",
        yaml: "
MODEL: {NAME: irCSN}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 50
    NUM_FILTERS: [8, 8, 16, 32, 64]
    NUM_OUT_FEATURES: 64
    KERNEL_SIZE: [[3, 7, 7], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, true, true, true]
    EXPANSION_RATIO: 4
    STEM: {NAME: DownSampleStem}
    BRANCH: {NAME: CSNBranch}
  HEAD: {NAME: BaseHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
BN: {EPS: 1e-5, MOMENTUM: 0.1}
",
        input: [2, 3, 4, 32, 32],
        classes: 5,
        features: 64,
        train_mode_zero: &[],
    },
    // TAda2D: DEPTH 50 (TAda2DBlock is bottleneck-only), bottleneck widths 4, 8, 16, 16.
    Case {
        name: "TAda2D-R50",
        yaml: "
MODEL: {NAME: TAda2D}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 50
    NUM_FILTERS: [8, 16, 32, 64, 64]
    NUM_OUT_FEATURES: 64
    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]]
    DOWNSAMPLING: [true, true, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, false, false, false]
    EXPANSION_RATIO: 4
    INITIALIZATION: kaiming
    STEM: {NAME: Base2DStem}
    BRANCH: {NAME: TAda2DBlock, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 2, POOL_K: [3, 1, 1]}
  HEAD: {NAME: BaseHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
BN: {EPS: 1e-5, MOMENTUM: 0.1}
",
        input: [2, 3, 4, 32, 32],
        classes: 5,
        features: 64,
        // RouteFuncMLP: a -> bn -> relu; `a.bias` is constant over (B, T) per channel.
        train_mode_zero: &[("b_rf.a.bias", BIAS_BEFORE_TRAIN_BN)],
    },
    // TAdaConvNeXtV2: four stages of widths 8-32, routing attention heads of 4 channels;
    // drop path on (train mode). The stem strides time by 2, so 6 frames leave 3. Layer scale
    // starts at 1 rather than the released 1e-6: at 1e-6 every gradient inside a block is scaled
    // by 1e-6 and the routing attention's (another ~1e-4 smaller) drops under the sweep's
    // relative floor although it is not zero.
    Case {
        name: "TAdaConvNeXtV2",
        yaml: "
MODEL: {NAME: TAdaConvNeXtV2-Tiny}
VIDEO:
  BACKBONE:
    META_ARCH: ConvNeXt
    DEPTH: [1, 1, 2, 1]
    NUM_FILTERS: [8, 16, 16, 32]
    NUM_INPUT_CHANNELS: 3
    NUM_OUT_FEATURES: 32
    DROP_PATH: 0.1
    LARGE_SCALE_INIT_VALUE: 1.0
    STEM: {T_KERNEL_SIZE: 3, T_STRIDE: 2}
    BRANCH: {NAME: TAdaConvNeXtV2Block, ROUTE_FUNC_K: [3, 3], ROUTE_FUNC_R: 2, HEAD_DIM: 4}
  HEAD: {NAME: BaseHead, ACTIVATION: softmax, DROPOUT_RATE: 0.5, NUM_CLASSES: 5}
DATA: {NUM_INPUT_FRAMES: 6, TRAIN_CROP_SIZE: 32}
",
        input: [2, 3, 6, 32, 32],
        classes: 5,
        features: 32,
        train_mode_zero: &[],
    },
    // TAdaFormer: two layers of width 128 (the routing attention's head_dim is fixed at 64),
    // TEMP_ENHANCE on. DOUBLE_TADA stays off here: its last layer's second TAda only touches
    // patch tokens after the last attention, which never reach the class-token output, so those
    // parameters get no gradient by design (in the reference too; the TAdaFormer unit tests
    // check that case).
    Case {
        name: "TAdaFormer",
        yaml: "
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
  HEAD: {NAME: BaseHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
DATA: {NUM_INPUT_FRAMES: 6, TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32}
",
        input: [2, 3, 6, 32, 32],
        classes: 5,
        features: 128,
        train_mode_zero: &[],
    },
    // TimeSformer: divided space-time attention, 2 layers of D 16 in 4 heads, 2x2 patch grids.
    Case {
        name: "TimeSformer",
        yaml: "
MODEL: {NAME: timesformer}
VIDEO:
  BACKBONE:
    META_ARCH: Transformer
    NUM_FEATURES: 16
    NUM_OUT_FEATURES: 16
    PATCH_SIZE: 8
    DEPTH: 2
    NUM_HEADS: 4
    ATTN_DROPOUT: 0.1
    FF_DROPOUT: 0.1
    DROP_PATH: 0.1
    STEM: {NAME: PatchEmbedStem}
    BRANCH: {NAME: TimesformerLayer}
  HEAD: {NAME: TransformerHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5, PRE_LOGITS: true}
DATA: {NUM_INPUT_FRAMES: 4, TRAIN_CROP_SIZE: 16, TEST_CROP_SIZE: 16}
",
        input: [2, 3, 4, 16, 16],
        classes: 5,
        features: 16,
        train_mode_zero: &[],
    },
    // ViViT: joint attention over 2-frame tubelets.
    Case {
        name: "ViViT",
        yaml: "
MODEL: {NAME: vivit}
VIDEO:
  BACKBONE:
    META_ARCH: Transformer
    NUM_FEATURES: 16
    NUM_OUT_FEATURES: 16
    PATCH_SIZE: 8
    TUBELET_SIZE: 2
    DEPTH: 2
    NUM_HEADS: 4
    FF_DROPOUT: 0.1
    DROP_PATH: 0.1
    MLP_MULT: 2
    STEM: {NAME: TubeletEmbeddingStem}
    BRANCH: {NAME: BaseTransformerLayer}
  HEAD: {NAME: TransformerHead, NUM_CLASSES: 5}
DATA: {NUM_INPUT_FRAMES: 4, TRAIN_CROP_SIZE: 16, TEST_CROP_SIZE: 16}
",
        input: [2, 3, 4, 16, 16],
        classes: 5,
        features: 16,
        train_mode_zero: &[],
    },
    // The ViViT factorised encoder: 2 spatial layers per tubelet frame, 1 temporal layer.
    Case {
        name: "ViViT-FE",
        yaml: "
MODEL: {NAME: vivit}
VIDEO:
  BACKBONE:
    META_ARCH: FactorizedTransformer
    NUM_FEATURES: 16
    NUM_OUT_FEATURES: 16
    PATCH_SIZE: 8
    TUBELET_SIZE: 2
    DEPTH: 2
    DEPTH_TEMP: 1
    NUM_HEADS: 4
    FF_DROPOUT: 0.0
    DROP_PATH: 0.1
    MLP_MULT: 4
    STEM: {NAME: TubeletEmbeddingStem}
    BRANCH: {NAME: BaseTransformerLayer}
  HEAD: {NAME: TransformerHead, NUM_CLASSES: 5}
DATA: {NUM_INPUT_FRAMES: 4, TRAIN_CROP_SIZE: 16, TEST_CROP_SIZE: 16}
",
        input: [2, 3, 4, 16, 16],
        classes: 5,
        features: 16,
        train_mode_zero: &[],
    },
    // S3D-G (Inception3D, gating) at 1/8 width; 8 frames of 32x32 leave block 5 one position.
    Case {
        name: "S3D-G",
        yaml: "
MODEL: {NAME: S3DG}
VIDEO:
  BACKBONE:
    META_ARCH: Inception3D
    NUM_OUT_FEATURES: 128
    WIDTH_DIVISOR: 8
    BRANCH: {NAME: STConv3d, GATING: true}
    STEM: {NAME: STConv3d}
  HEAD: {NAME: BaseHead, NUM_CLASSES: 5}
",
        input: [2, 3, 8, 32, 32],
        classes: 5,
        features: 128,
        train_mode_zero: &[],
    },
    // SlowFast-R50 (ALPHA 4, BETA 8) with tiny widths: fast pathway [1, 2, 2, 4, 4].
    Case {
        name: "SlowFast",
        yaml: "
MODEL: {NAME: SlowFast}
VIDEO:
  BACKBONE:
    META_ARCH: Slowfast
    DEPTH: 50
    NUM_FILTERS: [8, 16, 16, 32, 32]
    NUM_OUT_FEATURES: 32
    KERNEL_SIZE: [[[1, 7, 7], [1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]], [[5, 7, 7], [1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, false, false, false]
    TEMPORAL_CONV_BOTTLENECK: [[false, false, false, true, true], [false, true, true, true, true]]
    EXPANSION_RATIO: 2
    STEM: {NAME: DownSampleStem}
    BRANCH: {NAME: SlowfastBranch}
    SLOWFAST: {MODE: slowfast, ALPHA: 4, BETA: 8, CONV_CHANNEL_RATIO: 2, KERNEL_SIZE: 7, FUSION_CONV_BIAS: false, FUSION_BN: true, FUSION_RELU: true}
  HEAD: {NAME: SlowFastHead, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
",
        input: [2, 3, 8, 32, 32],
        classes: 5,
        // 32 slow + 32 / 8 fast channels.
        features: 36,
        train_mode_zero: &[],
    },
];
fn config(case: &Case) -> Config {
    match load_str(case.yaml, case.name, &[]) {
        Ok(c) => c.config,
        Err(e) => panic!("{}: config does not load: {e}", case.name),
    }
}

/// The case's model on the CPU, in float64 (see [`RELATIVE_FLOOR`]).
fn build(case: &Case) -> (VarStore, VideoModel) {
    let mut vs = VarStore::new(Device::Cpu);
    let model = VideoModel::new(&vs.root(), &config(case))
        .unwrap_or_else(|e| panic!("{}: model does not build: {e}", case.name));
    vs.double();
    (vs, model)
}

/// Gives every all-zero trainable tensor small random values.
///
/// The reference deliberately starts some layers at zero (the routing function's last conv
/// `b_rf.b`, `b_avgpool_bn`, and in the V2 models `b`/`b_bias`, `norm_avgpool`, `tada_proj`, the
/// `bn_b` of TAdaConv2dV2) so that a TAda block starts as its static counterpart. A zero layer
/// passes no gradient to what sits behind it, so on the very first backward those upstream
/// parameters get exactly zero; they only start to learn once the zero layer has moved. This
/// sweep checks that the graph connects every parameter to the loss, not the initial values
/// (the unit tests pin those), so it perturbs the zeros first. Biases and BN shifts that start
/// at zero are perturbed too; that changes nothing about which gradients exist.
fn perturb_zero_tensors(vs: &VarStore) -> Vec<String> {
    let mut perturbed = Vec::new();
    tch::no_grad(|| {
        for (name, t) in vs.variables() {
            if t.requires_grad() && t.abs().max().double_value(&[]) == 0.0 {
                let _ = t.shallow_clone().normal_(0.0, 0.02);
                perturbed.push(name);
            }
        }
    });
    perturbed.sort();
    perturbed
}

/// max |gradient| of every trainable parameter after the last backward; `None` when undefined
/// or not finite.
fn grad_maxima(vs: &VarStore) -> Vec<(String, Option<f64>)> {
    let mut v: Vec<(String, Option<f64>)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(name, t)| {
            let g = t.grad();
            let m = (g.defined() && g.isfinite().all().int64_value(&[]) != 0)
                .then(|| g.abs().max().double_value(&[]));
            (name, m)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A fixed random scalar of the logits: every class and sample contributes.
fn loss_of(logits: &Tensor, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    let w = Tensor::randn(logits.size(), (logits.kind(), Device::Cpu));
    (logits * w).sum(logits.kind())
}

fn is_train_mode_zero(case: &Case, name: &str) -> bool {
    case.train_mode_zero.iter().any(|(s, _)| name.ends_with(s))
}

/// A gradient counts as non-zero when its largest entry is above this fraction of the largest
/// gradient entry of the whole model. Where the exact gradient is zero, rounding still leaves
/// noise, which a plain `> 0` would accept: up to ~1e-9 of the largest gradient in float32, close
/// to genuinely small gradients (~1e-5 relative, e.g. the routing function's `g.bias`, which only
/// acts through the zero padding at the first and last frame). The sweep therefore runs in
/// float64, where that noise is ~1e-16 relative, and the floor sits far from both. Models must
/// be dtype-generic for this (create tensors with the input's kind).
const RELATIVE_FLOOR: f64 = 1e-10;

/// Forward/backward passes whose gradients the training-mode check accumulates.
const GRADIENT_PASSES: usize = 4;

/// The case's input: standard normal, in the model's float64.
fn input(case: &Case) -> Tensor {
    Tensor::randn(case.input, (Kind::Double, Device::Cpu))
}

#[test]
fn every_backbone_trains_and_every_parameter_gets_a_gradient() {
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let started = std::time::Instant::now();
        tch::manual_seed(100 + i as i64);
        let (vs, model) = build(case);
        let perturbed = perturb_zero_tensors(&vs);
        let xs = input(case);
        if let Err(e) = model.check_input(&xs) {
            failures.push(format!("{}: input rejected: {e}", case.name));
            continue;
        }
        let out = model.forward_t(&xs, true);
        let Some(logits) = out.predictions.single() else {
            failures.push(format!("{}: expected one prediction tensor", case.name));
            continue;
        };
        let b = case.input[0];
        if logits.size() != [b, case.classes] || out.features.size() != [b, case.features] {
            failures.push(format!(
                "{}: logits {:?} / features {:?}, expected [{b}, {}] / [{b}, {}]",
                case.name,
                logits.size(),
                out.features.size(),
                case.classes,
                case.features
            ));
            continue;
        }
        if logits.isfinite().all().int64_value(&[]) == 0 {
            failures.push(format!("{}: non-finite logits", case.name));
            continue;
        }
        loss_of(logits, 1).backward();
        // Drop path can drop a block's branch for the whole 2-clip batch in one pass (4% for
        // TAdaFormer's last block), and other tests draw from libtorch's generator at the same
        // time, so the draws are not reproducible: the gradients of a few more passes
        // accumulate, and every branch is seen with near certainty.
        for pass in 1..GRADIENT_PASSES {
            // loss_of reseeds the generator: reseed per pass so the passes draw different masks.
            tch::manual_seed(1000 * (i as i64 + 1) + pass as i64);
            if let Some(l) = model.forward_t(&xs, true).predictions.single() {
                loss_of(l, 1).backward();
            }
        }
        let grads = grad_maxima(&vs);
        let largest = grads.iter().filter_map(|(_, m)| *m).fold(0.0f64, f64::max);
        let mut bad = Vec::new();
        for (name, m) in &grads {
            match m {
                None => bad.push(format!("{name} (undefined or non-finite)")),
                Some(_) if is_train_mode_zero(case, name) => {}
                Some(m) if *m <= RELATIVE_FLOOR * largest => {
                    bad.push(format!("{name} (max |grad| {m:.1e})"))
                }
                Some(_) => {}
            }
        }
        if !bad.is_empty() {
            failures.push(format!(
                "{}: {} of {} parameters get no gradient: {}",
                case.name,
                bad.len(),
                grads.len(),
                bad.join(", ")
            ));
        }
        let smallest = grads
            .iter()
            .filter(|(n, _)| !is_train_mode_zero(case, n))
            .filter_map(|(_, m)| *m)
            .fold(f64::INFINITY, f64::min);
        println!(
            "{:12} {} trainable tensors, max |grad| from {smallest:.1e} to {largest:.1e}, {} \
             all-zero tensors perturbed first, {:.2} s",
            case.name,
            grads.len(),
            perturbed.len(),
            started.elapsed().as_secs_f64()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The `train_mode_zero` lists stay honest:
/// - in training mode every listed parameter has a defined gradient (it is in the graph) that
///   is at rounding level (the stated reason still holds; if the model changes so that it no
///   longer does, the entry must go);
/// - in evaluation mode, where BatchNorm uses running statistics and cancels nothing, the listed
///   parameters do get gradient. Checked over all of them together: in evaluation mode a
///   routing channel is often dead behind its ReLU for the whole batch (its pre-activation has
///   the sign of its weights, as the pooled inputs are positive), so a single tensor may
///   legitimately get none.
#[test]
fn train_mode_zero_lists_are_true() {
    for (i, case) in CASES.iter().enumerate() {
        if case.train_mode_zero.is_empty() {
            continue;
        }
        let run = |train: bool| {
            tch::manual_seed(200 + i as i64);
            let (vs, model) = build(case);
            perturb_zero_tensors(&vs);
            let out = model.forward_t(&input(case), train);
            let logits = out.predictions.single().expect("one prediction");
            loss_of(logits, 1).backward();
            let grads = grad_maxima(&vs);
            let largest = grads.iter().filter_map(|(_, m)| *m).fold(0.0, f64::max);
            let listed: Vec<(String, Option<f64>)> = grads
                .into_iter()
                .filter(|(n, _)| is_train_mode_zero(case, n))
                .collect();
            assert!(
                !listed.is_empty(),
                "{}: the list matches nothing",
                case.name
            );
            (listed, largest)
        };
        let (listed, largest) = run(true);
        for (name, m) in &listed {
            let m = m.unwrap_or_else(|| panic!("{}: {name}: no gradient", case.name));
            assert!(
                m <= RELATIVE_FLOOR * largest,
                "{}: {name} is listed as zero in training mode but gets max |grad| {m:.1e} \
                 (largest {largest:.1e})",
                case.name
            );
        }
        let (listed, largest) = run(false);
        let reached = listed
            .iter()
            .filter(|(_, m)| m.is_some_and(|m| m > RELATIVE_FLOOR * largest))
            .count();
        assert!(
            reached > 0,
            "{}: none of the {} listed tensors gets a gradient in evaluation mode",
            case.name,
            listed.len()
        );
        println!(
            "{:12} evaluation mode: {reached} of {} listed tensors get a gradient",
            case.name,
            listed.len()
        );
    }
}
