//! `tada info --model`: parameter counts and the output shape of a configured model.

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::{ModelError, VideoModel};
use crate::config::schema::{BranchName, Depth, MetaArch, SlowFastMode};
use crate::config::{Config, LoadedConfig, Source};

/// Backbone parameter counts computed from the reference's spec (docs/models.md#parameter-counts),
/// for the released configurations.
const REFERENCE_BACKBONES: &[(BranchName, usize, &str, i64)] = &[
    (BranchName::TAda2DBlock, 50, "TAda2D-R50", 26_665_872),
    (BranchName::R2D3DBranch, 18, "R2D3D-18", 14_057_536),
    (BranchName::R2Plus1DBranch, 10, "R(2+1)D-10", 14_365_477),
    (BranchName::CSNBranch, 152, "ir-CSN-152", 28_883_968),
];

/// The same for the released ConvNeXt backbones, told apart by DEPTH (blocks per stage) and
/// NUM_FILTERS.
const REFERENCE_CONVNEXTS: &[([usize; 4], [usize; 4], &str, i64)] = &[
    (
        [3, 3, 9, 3],
        [96, 192, 384, 768],
        "TAdaConvNeXtV2-T",
        45_663_888,
    ),
    (
        [3, 3, 27, 3],
        [96, 192, 384, 768],
        "TAdaConvNeXtV2-S",
        81_941_520,
    ),
    (
        [3, 3, 27, 3],
        [128, 256, 512, 1024],
        "TAdaConvNeXtV2-B",
        145_277_632,
    ),
];

/// TAdaFormer backbone parameter counts (docs/models.md#parameter-counts), by (NUM_FEATURES, DEPTH,
/// PATCH_SIZE, TEMP_ENHANCE and DOUBLE_TADA both on).
const REFERENCE_TADAFORMERS: &[(usize, usize, usize, bool, &str, i64)] = &[
    (768, 12, 16, false, "TAdaFormer-B/16 (K400)", 103_888_128),
    (768, 12, 16, true, "TAdaFormer-B/16 (SSV2)", 134_952_960),
    (1024, 24, 14, false, "TAdaFormer-L/14 (K400)", 364_417_024),
    (1024, 24, 14, true, "TAdaFormer-L/14 (SSV2)", 474_781_696),
];

/// ViViT / TimeSformer backbone parameter counts of the reference's build_model
/// (docs/models.md#parameter-counts), by (META_ARCH, BRANCH.NAME, NUM_FEATURES, DEPTH, DEPTH_TEMP
/// (0 without), DATA.TRAIN_CROP_SIZE, DATA.NUM_INPUT_FRAMES): the positional embeddings grow
/// with the crop and the clip length. The pool files (`configs/pool/backbone/`) at the
/// reference's base.yaml sizes (112², 16 frames), and the sizes the projects train at.
type TransformerEntry = (
    MetaArch,
    BranchName,
    usize,
    usize,
    usize,
    usize,
    usize,
    &'static str,
    i64,
);
const REFERENCE_TRANSFORMERS: &[TransformerEntry] = &[
    (
        MetaArch::Transformer,
        BranchName::TimesformerLayer,
        768,
        12,
        0,
        112,
        16,
        "TimeSformer (pool timesformer.yaml)",
        114_617_088,
    ),
    (
        MetaArch::Transformer,
        BranchName::TimesformerLayer,
        768,
        12,
        0,
        224,
        8,
        "TimeSformer 8x224²",
        115_219_200,
    ),
    (
        MetaArch::Transformer,
        BranchName::BaseTransformerLayer,
        768,
        12,
        0,
        112,
        16,
        "ViViT (pool vivit.yaml)",
        86_539_008,
    ),
    (
        MetaArch::Transformer,
        BranchName::BaseTransformerLayer,
        768,
        12,
        0,
        224,
        32,
        "ViViT 32x224²",
        88_646_400,
    ),
    (
        MetaArch::FactorizedTransformer,
        BranchName::BaseTransformerLayer,
        768,
        12,
        4,
        112,
        16,
        "ViViT-FE (pool vivit_fac_enc.yaml)",
        114_636_288,
    ),
    (
        MetaArch::FactorizedTransformer,
        BranchName::BaseTransformerLayer,
        768,
        12,
        4,
        224,
        32,
        "ViViT-FE 32x224² (K400, EPIC)",
        114_755_328,
    ),
    (
        MetaArch::FactorizedTransformer,
        BranchName::BaseTransformerLayer,
        768,
        12,
        4,
        320,
        32,
        "ViViT-FE 32x320² (EPIC fine-tuned)",
        114_912_000,
    ),
];

/// What `tada info --model` prints.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub parameters: i64,
    pub backbone_parameters: i64,
    pub input_shape: Vec<i64>,
    /// Shape of the (first) prediction.
    pub output_shape: Vec<i64>,
    /// Every prediction: its name ("" for a single unnamed one) and shape.
    pub outputs: Vec<(String, Vec<i64>)>,
    /// Name and backbone parameter count of the matching released model, if any.
    pub reference: Option<(&'static str, i64)>,
}

impl ModelSummary {
    /// The predictions as `tada info` prints them: the shape of a single one (`[1, 400]`), or
    /// each by name (`verb_class [1, 97], noun_class [1, 300]`).
    pub fn output_description(&self) -> String {
        match self.outputs.as_slice() {
            [(_, shape)] => format!("{shape:?}"),
            named => named
                .iter()
                .map(|(n, s)| format!("{n} {s:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The config `tada info --model` probes: the loaded one, except that a TAdaFormer file that
/// sets no DATA.TRAIN_CROP_SIZE (the reference's pool backbone files, which leave the data to the
/// project file) is probed at its VIDEO.BACKBONE.INPUT_RES instead of the built-in crop, which
/// would not fit its positional embedding. Returns the note to print when it did so.
pub fn probe_config(loaded: &LoadedConfig) -> (Config, Option<String>) {
    let mut cfg = loaded.config.clone();
    let b = &cfg.video.backbone;
    let crop_unset = loaded.sources.of("DATA.TRAIN_CROP_SIZE") == Source::Default;
    if let (MetaArch::VisionTransformer, Some(res), true) = (b.meta_arch, b.input_res, crop_unset) {
        if res != cfg.data.train_crop_size {
            cfg.data.train_crop_size = res;
            return (
                cfg,
                Some(format!(
                    "the file sets no DATA.TRAIN_CROP_SIZE: probing at VIDEO.BACKBONE.INPUT_RES = {res}"
                )),
            );
        }
    }
    (cfg, None)
}

/// The input a config trains on: `(1, C, T, S, S)`, or `(1, K, C, T, S, S)` for MoSINet.
pub fn configured_input_shape(cfg: &Config, mosi_clips: Option<i64>) -> Vec<i64> {
    let c = cfg.data.num_input_channels as i64;
    if cfg.video.backbone.meta_arch == MetaArch::SimpleLocalizationConv {
        // BMN: one window of TEMPORAL_SCALE feature vectors.
        return vec![1, c, cfg.data.temporal_scale.unwrap_or(1) as i64];
    }
    let s = cfg.data.train_crop_size as i64;
    match mosi_clips {
        Some(k) => vec![1, k, c, cfg.pretrain.num_frames as i64, s, s],
        None => vec![1, c, cfg.data.num_input_frames as i64, s, s],
    }
}

/// Trainable values of the variables whose names start with `prefix` (`""`: all), plus BMN's
/// frozen `head.sample_mask`: the reference's `parameters()` count, since running statistics
/// are variables too, but not trainable ones, while the mask is an nn.Parameter that is never
/// trained.
pub fn parameter_count(vs: &VarStore, prefix: &str) -> i64 {
    let frozen_parameter = |n: &str| {
        n.rsplit_once('.')
            .is_some_and(|(_, leaf)| leaf == crate::localization::bmn::SAMPLE_MASK)
    };
    vs.variables()
        .iter()
        .filter(|(n, t)| (t.requires_grad() || frozen_parameter(n)) && n.starts_with(prefix))
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

/// Builds the network on the CPU (also of a config whose task or data tada does not run, e.g.
/// EPIC-Kitchens), counts parameters and runs one eval forward on
/// zeros.
pub fn summarize(cfg: &Config, mosi_clips: Option<i64>) -> Result<ModelSummary, ModelError> {
    let vs = VarStore::new(Device::Cpu);
    let model = VideoModel::new(&vs.root(), cfg)?;
    let count = |prefix: &str| parameter_count(&vs, prefix);
    let input_shape = configured_input_shape(cfg, mosi_clips);
    let xs = Tensor::zeros(input_shape.as_slice(), (Kind::Float, Device::Cpu));
    model.check_input(&xs)?;
    let out = tch::no_grad(|| model.forward_t(&xs, false));
    let outputs: Vec<(String, Vec<i64>)> = match &out.predictions {
        super::heads::Predictions::Tensor(t) => vec![(String::new(), t.size())],
        super::heads::Predictions::Named(v) => {
            v.iter().map(|(n, t)| (n.clone(), t.size())).collect()
        }
    };
    let output_shape = outputs.first().map(|(_, s)| s.clone()).unwrap_or_default();
    let bb = &cfg.video.backbone;
    let reference = match &bb.depth {
        Some(Depth::Layers(d)) => REFERENCE_BACKBONES
            .iter()
            .find(|(b, depth, _, _)| Some(*b) == bb.branch.name && depth == d)
            .map(|(_, _, name, n)| (*name, *n)),
        Some(Depth::PerStage(d)) if bb.branch.name == Some(BranchName::TAdaConvNeXtV2Block) => {
            REFERENCE_CONVNEXTS
                .iter()
                .find(|(depth, dims, _, _)| {
                    depth.as_slice() == d.as_slice()
                        && Some(dims.as_slice()) == bb.num_filters.as_deref()
                })
                .map(|(_, _, name, n)| (*name, *n))
        }
        _ => None,
    };
    let reference = reference.or_else(|| {
        let depth = match bb.depth {
            Some(Depth::Layers(d)) => Some(d),
            _ => None,
        };
        let both = bb.temp_enhance && bb.double_tada;
        REFERENCE_TADAFORMERS
            .iter()
            .find(|(w, d, p, t, _, _)| {
                bb.branch.name == Some(BranchName::TAdaFormerBlock)
                    && (Some(*w), Some(*d), Some(*p), *t)
                        == (bb.num_features, depth, bb.patch_size, both)
            })
            .map(|(.., name, n)| (*name, *n))
    });
    let reference = reference
        .or_else(|| reference_transformer(cfg))
        .or_else(|| reference_pool_cnn(cfg));
    Ok(ModelSummary {
        parameters: count(""),
        backbone_parameters: count("backbone."),
        input_shape,
        output_shape,
        outputs,
        reference,
    })
}

/// S3D-G and SlowFast backbone parameter counts of the reference's build_model for its pool
/// files (docs/models.md#parameter-counts).
const REFERENCE_S3DG: (&str, i64) = ("S3D-G (pool s3dg.yaml)", 9_098_000);
/// SlowFast-R50 at the pool files' widths, by fusion kernel (SLOWFAST.KERNEL_SIZE).
const REFERENCE_SLOWFASTS: &[(usize, &str, i64)] = &[
    (5, "SlowFast 4x16 R50 (pool slowfast_4x16.yaml)", 33_558_216),
    (7, "SlowFast 8x8 R50 (pool slowfast_8x8.yaml)", 33_644_488),
];

/// The pool S3D-G or SlowFast backbone `cfg` describes, if any.
fn reference_pool_cnn(cfg: &Config) -> Option<(&'static str, i64)> {
    let bb = &cfg.video.backbone;
    match bb.meta_arch {
        MetaArch::Inception3D => {
            (bb.width_divisor == 1 && bb.branch.gating && cfg.data.num_input_channels == 3)
                .then_some(REFERENCE_S3DG)
        }
        MetaArch::Slowfast => {
            let sf = &bb.slowfast;
            let released = bb.depth == Some(Depth::Layers(50))
                && bb.num_filters.as_deref() == Some(&[64, 256, 512, 1024, 2048])
                && bb.expansion_ratio == Some(4)
                && sf.mode == SlowFastMode::Slowfast
                && (sf.beta, sf.conv_channel_ratio) == (Some(8), Some(2))
                && sf.fusion_conv_bias == Some(false)
                && sf.fusion_bn == Some(true);
            REFERENCE_SLOWFASTS
                .iter()
                .find(|(k, ..)| released && sf.kernel_size == Some(*k))
                .map(|(_, name, n)| (*name, *n))
        }
        _ => None,
    }
}

/// The released ViViT / TimeSformer backbone `cfg` describes, if any.
fn reference_transformer(cfg: &Config) -> Option<(&'static str, i64)> {
    let bb = &cfg.video.backbone;
    let depth = match bb.depth {
        Some(Depth::Layers(d)) => d,
        _ => return None,
    };
    let depth_temp = match bb.meta_arch {
        MetaArch::FactorizedTransformer => bb.depth_temp?,
        _ => 0,
    };
    let key = (
        bb.meta_arch,
        bb.branch.name?,
        bb.num_features?,
        depth,
        depth_temp,
        cfg.data.train_crop_size,
        cfg.data.num_input_frames,
    );
    REFERENCE_TRANSFORMERS
        .iter()
        .find(|(a, b, w, d, dt, s, t, ..)| (*a, *b, *w, *d, *dt, *s, *t) == key)
        .map(|(.., name, n)| (*name, *n))
}
