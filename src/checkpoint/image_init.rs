//! Initialisation from image models (docs/training.md#initialisation-from-image-models): the
//! state dicts the reference's TRAIN.INIT starts from (torchvision ResNet, the official ConvNeXt,
//! OpenAI CLIP's ViT) renamed and inflated to the video backbone's keys, and
//! TRAIN.CHECKPOINT_PRE_PROCESS applied to pretrained weights, each as the reference's
//! `tadaconv/utils/checkpoint.py` does it (tests/fixtures/image_init, made by
//! scripts/fixtures/image_init.py, pins both).

use tch::{Kind, Tensor};

use crate::config::schema::{
    BranchName, CheckpointPreProcess, MetaArch, PatchEmbedProcess, PosEmbedProcess,
};
use crate::config::Config;

/// Which image model a state dict comes from, told by its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageModel {
    /// torchvision's ResNet (`conv1.weight`, `layer1.0.conv1.weight`, `fc.*`).
    ResNet,
    /// The official ConvNeXt (`downsample_layers.0.0.weight`, `stages.*`).
    ConvNeXt,
    /// OpenAI CLIP (`visual.conv1.weight`, `visual.transformer.resblocks.*`).
    ClipVit,
}

impl ImageModel {
    /// The image model whose layout `names` has; `None` for anything else (a video checkpoint).
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> Option<Self> {
        let has = |n: &str| names.clone().into_iter().any(|k| k == n);
        if has("visual.conv1.weight") {
            Some(Self::ClipVit)
        } else if has("downsample_layers.0.0.weight") {
            Some(Self::ConvNeXt)
        } else if has("conv1.weight") && has("layer1.0.conv1.weight") {
            Some(Self::ResNet)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ResNet => "a torchvision ResNet",
            Self::ConvNeXt => "a ConvNeXt",
            Self::ClipVit => "a CLIP ViT",
        }
    }

    /// The backbone META_ARCH the reference converts this image model for.
    fn meta_arch(self) -> MetaArch {
        match self {
            Self::ResNet => MetaArch::ResNet3D,
            Self::ConvNeXt => MetaArch::ConvNeXt,
            Self::ClipVit => MetaArch::VisionTransformer,
        }
    }
}

/// Why image weights cannot initialise the model.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("holds {} weights, which initialise a {:?} backbone, but VIDEO.BACKBONE.META_ARCH is {meta:?}", .model.name(), .model.meta_arch())]
    WrongArch { model: ImageModel, meta: MetaArch },
    #[error("tensor {name}: {message}")]
    Tensor { name: String, message: String },
    #[error("TRAIN.CHECKPOINT_PRE_PROCESS.{key} needs the tensor {name}, which the weights lack")]
    Missing { key: &'static str, name: String },
}

/// What the conversions read of the config.
#[derive(Debug, Clone, PartialEq)]
pub struct InitSettings {
    pub meta_arch: Option<MetaArch>,
    /// A TAdaConv branch: its spatial kernels carry two leading calibration dimensions.
    pub tada_branch: bool,
    /// VIDEO.BACKBONE.STEM.T_KERNEL_SIZE (ConvNeXt's stem).
    pub stem_t_kernel: usize,
    /// Frames per token: VIDEO.BACKBONE.TUBELET_SIZE (ViViT's tubelet stem), else TUBLET_SIZE
    /// (TAdaFormer's patch embedding), when set.
    pub tubelet: Option<usize>,
    pub patch_size: Option<usize>,
    pub num_input_frames: usize,
    pub train_crop_size: usize,
    pub fine_tune: bool,
    pub pre: CheckpointPreProcess,
}

impl InitSettings {
    pub fn from_config(cfg: &Config) -> Self {
        let b = &cfg.video.backbone;
        Self {
            meta_arch: Some(b.meta_arch),
            tada_branch: matches!(
                b.branch.name,
                Some(BranchName::TAda2DBlock | BranchName::TAdaConvNeXtV2Block)
            ),
            stem_t_kernel: b.stem.t_kernel_size.unwrap_or(3),
            tubelet: b.tubelet_size.or(b.tublet_size),
            patch_size: b.patch_size,
            num_input_frames: cfg.data.num_input_frames,
            train_crop_size: cfg.data.train_crop_size,
            fine_tune: cfg.train.fine_tune,
            pre: cfg.train.checkpoint_pre_process.clone(),
        }
    }
}

type Named = Vec<(String, Tensor)>;

/// The image state dict `tensors` of `model` as the video backbone's weights, as the reference's
/// `convert_{resnet,convnext,vit_clip}_weights`: classifier heads dropped, keys renamed, 2-D
/// kernels given a temporal axis (and TAdaConv's calibration axes).
pub fn convert(model: ImageModel, s: &InitSettings, tensors: Named) -> Result<Named, InitError> {
    if s.meta_arch != Some(model.meta_arch()) {
        return Err(InitError::WrongArch {
            model,
            meta: s.meta_arch.unwrap_or(MetaArch::ResNet3D),
        });
    }
    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let converted = match model {
            ImageModel::ResNet => resnet(&name, &t, s.tada_branch),
            ImageModel::ConvNeXt => convnext(&name, &t, s),
            ImageModel::ClipVit => Some(clip(&name, t, s)),
        };
        out.extend(converted);
    }
    Ok(out)
}

/// `layer{L}.{B}.conv{K}` -> `backbone.conv{L+1}.res_{B+1}.conv_branch.{a,b,c}` and so on.
fn resnet(name: &str, t: &Tensor, tada: bool) -> Option<(String, Tensor)> {
    if name.contains("fc") {
        return None;
    }
    let parts: Vec<&str> = name.split('.').collect();
    let temporal = || t.unsqueeze(2);
    match parts.as_slice() {
        ["conv1", w] => Some((format!("backbone.conv1.a.{w}"), temporal())),
        ["bn1", w] => Some((format!("backbone.conv1.a_bn.{w}"), t.shallow_clone())),
        [layer, block, module, w] => {
            let (l, b) = layer_block(layer, block)?;
            let k = module.chars().last()?.to_digit(10)?;
            let id = char::from(b'a' + (k as u8) - 1);
            let prefix = format!("backbone.conv{l}.res_{b}.conv_branch");
            if module.contains("conv") {
                // TAdaConv's spatial kernels are (1, 1, C_out, C_in, k, k); 1x1 ones stay 3-D.
                let spatial = t.size().len() == 4 && t.size()[2..] != [1, 1];
                let v = match tada && spatial {
                    true => t.unsqueeze(0).unsqueeze(0),
                    false => temporal(),
                };
                Some((format!("{prefix}.{id}.{w}"), v))
            } else if module.contains("bn") {
                Some((format!("{prefix}.{id}_bn.{w}"), t.shallow_clone()))
            } else {
                None
            }
        }
        [layer, block, _downsample, "0", w] => {
            let (l, b) = layer_block(layer, block)?;
            Some((
                format!("backbone.conv{l}.res_{b}.short_cut.{w}"),
                temporal(),
            ))
        }
        [layer, block, _downsample, "1", w] => {
            let (l, b) = layer_block(layer, block)?;
            let key = format!("backbone.conv{l}.res_{b}.short_cut_bn.{w}");
            Some((key, t.shallow_clone()))
        }
        _ => None,
    }
}

/// `layer3`, `1` -> (4, 2): torchvision counts stages from 1 after the stem, blocks from 0.
fn layer_block(layer: &str, block: &str) -> Option<(u32, u32)> {
    let l = layer.strip_prefix("layer")?.parse::<u32>().ok()?;
    Some((l + 1, block.parse::<u32>().ok()? + 1))
}

fn convnext(name: &str, t: &Tensor, s: &InitSettings) -> Option<(String, Tensor)> {
    if name.contains("head") {
        return None;
    }
    let dims = t.size().len();
    let v = if name.contains("downsample_layers.0.0.weight") {
        if s.stem_t_kernel == 3 {
            // (C, 3, k, k) -> (C, 3, 3, k, k): the image kernel at the middle frame.
            let pad = t.zeros_like();
            Tensor::stack(&[&pad, t, &pad], 2)
        } else {
            // The reference's other branch names an undefined variable and stops; the kernel
            // on every frame is what it spells out.
            t.unsqueeze(2).repeat([1, 1, s.stem_t_kernel as i64, 1, 1])
        }
    } else if dims > 2 {
        match s.tada_branch && name.contains("dwconv.weight") {
            true => t.unsqueeze(0).unsqueeze(0),
            false => t.unsqueeze(2),
        }
    } else if s.tada_branch && name.contains("dwconv.bias") {
        t.unsqueeze(0).unsqueeze(0)
    } else {
        t.shallow_clone()
    };
    Some((format!("backbone.{name}"), v))
}

/// `visual.*` -> `backbone.*` (`transformer.resblocks` -> `layers`), the text tower kept under
/// `text_backbone.*` (no built model has one, so it loads nowhere), every tensor in float32.
fn clip(name: &str, t: Tensor, s: &InitSettings) -> (String, Tensor) {
    let mut key = name.to_string();
    let mut v = t;
    if name.contains("visual") {
        key = key
            .replace("visual", "backbone")
            .replace("transformer.resblocks", "layers");
        if key == "backbone.conv1.weight" && s.tubelet == Some(3) {
            // (C, 3, p, p) -> (C, 3, 3, p, p): the image patch kernel at the middle frame.
            let mid = v.unsqueeze(2);
            let pad = mid.zeros_like();
            v = Tensor::cat(&[&pad, &mid, &pad], 2);
        }
    } else if !matches!(name, "text_projection" | "logit_scale") {
        key = format!("text_backbone.{key}").replace("transformer.resblocks", "layers");
    }
    (key, v.to_kind(Kind::Float))
}

/// The file the reference downloads for TRAIN.INIT and the backbone (its `model_urls`).
pub fn init_url(cfg: &Config) -> Option<String> {
    use crate::config::schema::Depth;
    let b = &cfg.video.backbone;
    let init = cfg.train.init.trim();
    let size = |sep: char| {
        cfg.model
            .name
            .rsplit(sep)
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let url = match (b.meta_arch, init) {
        (MetaArch::ResNet3D, "in1k") => match b.depth {
            Some(Depth::Layers(18)) => "https://download.pytorch.org/models/resnet18-5c106cde.pth",
            Some(Depth::Layers(34)) => "https://download.pytorch.org/models/resnet34-333f7ec4.pth",
            Some(Depth::Layers(50)) => "https://download.pytorch.org/models/resnet50-19c8e357.pth",
            Some(Depth::Layers(101)) => {
                "https://download.pytorch.org/models/resnet101-5d3b4d8f.pth"
            }
            Some(Depth::Layers(152)) => {
                "https://download.pytorch.org/models/resnet152-b121ed2d.pth"
            }
            _ => return None,
        },
        (MetaArch::ConvNeXt, "in1k" | "in22k") => match (size('-').as_str(), init) {
            ("tiny", "in1k") => "https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth",
            ("small", "in1k") => "https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224_ema.pth",
            ("small", "in22k") => "https://dl.fbaipublicfiles.com/convnext/convnext_small_22k_224.pth",
            ("base", "in1k") => "https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224_ema.pth",
            ("base", "in22k") => "https://dl.fbaipublicfiles.com/convnext/convnext_base_22k_224.pth",
            _ => return None,
        },
        (MetaArch::VisionTransformer, "clip") => match size('_').as_str() {
            "b16" => "https://openaipublic.azureedge.net/clip/models/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
            "l14" => "https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
            _ => return None,
        },
        _ => return None,
    };
    // OpenAI publishes CLIP as TorchScript, which the importer does not read.
    Some(match url.ends_with(".pt") {
        true => format!("{url} (a TorchScript file: save its state_dict() to a .pth first)"),
        false => url.to_string(),
    })
}

/// TRAIN.CHECKPOINT_PRE_PROCESS on pretrained weights (when ENABLE), as the reference's
/// `checkpoint_preprocess`.
pub fn preprocess(s: &InitSettings, mut tensors: Named) -> Result<Named, InitError> {
    let p = &s.pre;
    if s.fine_tune && p.pop_head {
        tensors.retain(|(n, _)| !n.contains("head"));
    }
    match p.pos_embed {
        Some(PosEmbedProcess::Repeat) => repeat_pos_embed(s, &mut tensors)?,
        Some(PosEmbedProcess::SuperResolution) => super_resolve(s, &mut tensors)?,
        None => {}
    }
    if let Some(how) = p.patch_embd {
        let t = take(&mut tensors, "PATCH_EMBD", STEM)?;
        let tube = s.tubelet.unwrap_or(1) as i64;
        let v = match how {
            PatchEmbedProcess::CentralFrame => {
                // (C, 3, 1, p, p) -> (C, 3, tube, p, p), zeros but the middle frame.
                let w = t.zeros_like().repeat([1, 1, tube, 1, 1]);
                w.select(2, tube / 2).copy_(&t.squeeze());
                w
            }
            PatchEmbedProcess::Average => t.repeat([1, 1, tube, 1, 1]) / tube as f64,
        };
        put(&mut tensors, STEM, v);
    }
    Ok(tensors)
}

const POS: &str = "backbone.pos_embd";
const TEMP: &str = "backbone.temp_embd";
const STEM: &str = "backbone.stem.conv1.weight";

fn take(tensors: &mut Named, key: &'static str, name: &str) -> Result<Tensor, InitError> {
    tensors
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.shallow_clone())
        .ok_or_else(|| InitError::Missing {
            key,
            name: name.into(),
        })
}

fn put(tensors: &mut Named, name: &str, v: Tensor) {
    match tensors.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = v,
        None => tensors.push((name.into(), v)),
    }
}

fn shape3(name: &str, t: &Tensor) -> Result<(i64, i64), InitError> {
    match t.size().as_slice() {
        [1, n, c] if *n >= 1 => Ok((*n, *c)),
        other => Err(InitError::Tensor {
            name: name.into(),
            message: format!("is {other:?}, not (1, tokens, channels)"),
        }),
    }
}

/// The class token's embedding, then the spatial tokens' repeated for every temporal token.
fn repeat_pos_embed(s: &InitSettings, tensors: &mut Named) -> Result<(), InitError> {
    let pos = take(tensors, "POS_EMBED", POS)?;
    let (n, c) = shape3(POS, &pos)?;
    let f = (s.num_input_frames / s.tubelet.unwrap_or(1)).max(1) as i64;
    let cls = pos.narrow(1, 0, 1);
    // (n - 1, c) -> (f * (n - 1), c) -> (1, f * (n - 1), c): the spatial block once per
    // temporal token, frame after frame, as the reference's repeat lays it out.
    let tokens = pos
        .get(0)
        .narrow(0, 1, n - 1)
        .repeat([f, 1])
        .reshape([1, f * (n - 1), c]);
    put(tensors, POS, Tensor::cat(&[&cls, &tokens], 1));
    Ok(())
}

/// The spatial embedding interpolated (bilinear) to the model's patch grid, and the temporal
/// one (linear) to its temporal tokens, when their sizes differ.
fn super_resolve(s: &InitSettings, tensors: &mut Named) -> Result<(), InitError> {
    let pos = take(tensors, "POS_EMBED", POS)?;
    let (n, c) = shape3(POS, &pos)?;
    let side = (s.train_crop_size / s.patch_size.unwrap_or(16).max(1)) as i64;
    let side_ckpt = ((n - 1) as f64).sqrt() as i64;
    if side != side_ckpt {
        let grid = pos
            .get(0)
            .narrow(0, 1, n - 1)
            // (side² , c) -> (1, c, side, side) for interpolation.
            .reshape([1, side_ckpt, side_ckpt, c])
            .permute([0, 3, 1, 2]);
        let up = grid
            .upsample_bilinear2d([side, side], false, None, None)
            // (1, c, S, S) -> (1, S², c).
            .permute([0, 2, 3, 1])
            .reshape([1, side * side, c]);
        put(tensors, POS, Tensor::cat(&[&pos.narrow(1, 0, 1), &up], 1));
    }
    if let Some((_, temp)) = tensors.iter().find(|(n, _)| n == TEMP) {
        let temp = temp.shallow_clone();
        let (tn, _) = shape3(TEMP, &temp)?;
        let frames = (s.num_input_frames / s.tubelet.unwrap_or(1).max(1)) as i64;
        if frames != tn - 1 {
            // (1, tn - 1, c) -> (1, c, tn - 1) -> linear -> (1, frames, c).
            let t = temp
                .narrow(1, 1, tn - 1)
                .permute([0, 2, 1])
                .upsample_linear1d([frames], false, None)
                .permute([0, 2, 1]);
            put(tensors, TEMP, Tensor::cat(&[&temp.narrow(1, 0, 1), &t], 1));
        }
    }
    Ok(())
}
