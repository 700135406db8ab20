//! Initialisation from image models against the reference: its `convert_*_weights` and
//! `checkpoint_preprocess` ran on the state dicts of tests/fixtures/image_init (made by
//! scripts/fixtures/image_init.py); tada's conversions must give the same names, shapes, dtypes
//! and values.

use serde_json::Value;
use tada::checkpoint::image_init::{convert, preprocess, ImageModel, InitSettings};
use tada::checkpoint::read_safetensors;
use tada::config::schema::{CheckpointPreProcess, MetaArch};

use crate::common::fixtures_dir;

fn settings(cfg: &Value) -> InitSettings {
    let str_of = |k: &str| cfg.get(k).and_then(Value::as_str);
    let num = |k: &str, d: u64| cfg.get(k).and_then(Value::as_u64).unwrap_or(d) as usize;
    let meta_arch = str_of("META_ARCH").map(|m| match m {
        "ResNet3D" => MetaArch::ResNet3D,
        "ConvNeXt" => MetaArch::ConvNeXt,
        "VisionTransformer" => MetaArch::VisionTransformer,
        other => panic!("META_ARCH {other}"),
    });
    let pre: CheckpointPreProcess = serde_json::from_value(serde_json::json!({
        "ENABLE": true,
        "POP_HEAD": cfg.get("POP_HEAD").cloned().unwrap_or(Value::Bool(false)),
        "POS_EMBED": cfg.get("POS_EMBED").cloned().unwrap_or(Value::Null),
        "PATCH_EMBD": cfg.get("PATCH_EMBD").cloned().unwrap_or(Value::Null),
    }))
    .unwrap();
    InitSettings {
        meta_arch,
        tada_branch: matches!(
            str_of("BRANCH"),
            Some("TAda2DBlock" | "TAdaConvNeXtV2Block")
        ),
        stem_t_kernel: num("T_KERNEL_SIZE", 3),
        tubelet: cfg
            .get("TUBELET_SIZE")
            .map(|v| v.as_u64().unwrap() as usize),
        patch_size: Some(num("PATCH_SIZE", 16)),
        num_input_frames: num("NUM_INPUT_FRAMES", 8),
        train_crop_size: num("TRAIN_CROP_SIZE", 224),
        fine_tune: cfg
            .get("FINE_TUNE")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        pre,
    }
}

#[test]
fn image_weights_convert_and_preprocess_as_the_reference() {
    let dir = fixtures_dir().join("image_init");
    let about: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let cases = about["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let s = settings(&case["cfg"]);
        let input = read_safetensors(&dir.join(format!("{name}_in.safetensors"))).unwrap();
        let want = read_safetensors(&dir.join(format!("{name}_out.safetensors"))).unwrap();
        let got = match case["source"].as_str().unwrap() {
            "vivit" => preprocess(&s, input.tensors).unwrap(),
            source => {
                let model = ImageModel::detect(input.tensors.iter().map(|(n, _)| n.as_str()));
                let expected = match source {
                    "resnet" => ImageModel::ResNet,
                    "convnext" => ImageModel::ConvNeXt,
                    _ => ImageModel::ClipVit,
                };
                assert_eq!(model, Some(expected), "{name}");
                convert(expected, &s, input.tensors).unwrap()
            }
        };
        let mut got_names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let mut want_names: Vec<&str> = case["out_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        got_names.sort();
        want_names.sort();
        assert_eq!(got_names, want_names, "{name}: names");
        for (n, t) in &got {
            let w = want.get(n).unwrap();
            assert_eq!(t.size(), w.size(), "{name}: {n} shape");
            assert_eq!(t.kind(), w.kind(), "{name}: {n} dtype");
            let diff = (t - w).abs().max().double_value(&[]);
            // Renaming and zero padding are exact; the interpolations agree to float rounding.
            assert!(diff <= 1e-6, "{name}: {n} differs by {diff}");
        }
    }
}

#[test]
fn image_weights_for_another_backbone_are_refused_in_one_line() {
    let dir = fixtures_dir().join("image_init");
    let input = read_safetensors(&dir.join("convnext_tada_in.safetensors")).unwrap();
    let mut s = settings(&serde_json::json!({"META_ARCH": "ResNet3D"}));
    s.tada_branch = false;
    let e = convert(ImageModel::ConvNeXt, &s, input.tensors)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ConvNeXt weights") && e.contains("META_ARCH is ResNet3D"),
        "{e}"
    );
    let e = preprocess(
        &settings(&serde_json::json!({"POS_EMBED": "repeat"})),
        Vec::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("POS_EMBED needs the tensor backbone.pos_embd"),
        "{e}"
    );
}

/// torchvision's name for a backbone tensor of tada's ResNet3D, and the 2-D tensor: the inverse
/// of the conversion, to make an image checkpoint that fits a tiny model.
fn torchvision_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("backbone.")?;
    let parts: Vec<&str> = rest.split('.').collect();
    let bn = |id: &str| id.ends_with("_bn");
    let number = |id: &str| (id.as_bytes()[0] - b'a' + 1).to_string();
    Some(match parts.as_slice() {
        ["conv1", "a", w] => format!("conv1.{w}"),
        ["conv1", "a_bn", w] => format!("bn1.{w}"),
        [stage, block, "conv_branch", id, w] => {
            let l: u32 = stage.strip_prefix("conv")?.parse().ok()?;
            let b: u32 = block.strip_prefix("res_")?.parse().ok()?;
            let kind = if bn(id) { "bn" } else { "conv" };
            format!("layer{}.{}.{kind}{}.{w}", l - 1, b - 1, number(id))
        }
        [stage, block, sc, w] if sc.starts_with("short_cut") => {
            let l: u32 = stage.strip_prefix("conv")?.parse().ok()?;
            let b: u32 = block.strip_prefix("res_")?.parse().ok()?;
            let i = if bn(sc) { 1 } else { 0 };
            format!("layer{}.{}.downsample.{i}.{w}", l - 1, b - 1)
        }
        _ => return None,
    })
}

/// `tada finetune --weights` takes a torchvision ResNet state dict for a ResNet3D backbone
/// (TRAIN.INIT in1k): every backbone tensor loads, converted; without weights a TRAIN.INIT run
/// refuses in one line naming the file the reference would download.
#[test]
fn a_finetune_starts_from_a_torchvision_resnet_file() {
    use crate::common::{run_options, serial, TINY_BACKBONE};
    use tada::models::Session;
    use tch::Tensor;

    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    // Every kernel 1 frame deep, as an image model's inflation gives.
    let yaml = format!(
        "{TINY_BACKBONE}    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [1, 3, 3], [1, 3, 3]]
  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4, DROPOUT_RATE: 0.0}}
NUM_GPUS: 0
DATA_LOADER: {{NUM_WORKERS: 0}}
MODEL: {{NAME: R2D3D}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, BATCH_SIZE: 8, NUM_SAMPLES: 8, FINE_TUNE: true, INIT: in1k, EVAL_PERIOD: 0}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.01, MAX_EPOCH: 1, WARMUP_EPOCHS: 0}}
"
    );
    let path = d.path().join("ft.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = tada::config::load(&path, &[]).unwrap();
    // The image checkpoint: the weights of another seed's model, in torchvision's layout.
    let other = Session::new(&cfg.config).unwrap();
    let mut image: Vec<(String, Tensor)> = Vec::new();
    let mut backbone = 0;
    for (name, t) in other.vs.variables() {
        if let Some(tv) = torchvision_name(&name) {
            let t = if t.dim() == 5 { t.squeeze_dim(2) } else { t };
            image.push((tv, t));
            backbone += 1;
        }
    }
    image.push((
        "fc.weight".into(),
        Tensor::zeros([1000, 8], tch::kind::FLOAT_CPU),
    ));
    image.push((
        "fc.bias".into(),
        Tensor::zeros([1000], tch::kind::FLOAT_CPU),
    ));
    let file = d.path().join("resnet.safetensors");
    let refs: Vec<(&str, &Tensor)> = image.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&refs, &file).unwrap();

    let e = tada::runs::finetune(&cfg, &run_options(&d.path().join("a"), false, None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("TRAIN.INIT") && e.contains("resnet18-5c106cde.pth") && e.contains("--weights"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");

    let mut opts = run_options(&d.path().join("b"), false, None);
    opts.weights = Some(file.clone());
    let (_, report) = tada::runs::finetune(&cfg, &opts).unwrap();
    let r = report.unwrap();
    assert_eq!(r.image_model, Some(ImageModel::ResNet));
    assert_eq!(r.load.loaded, backbone, "every backbone tensor loads");
    assert!(
        r.load.missing.iter().all(|n| n.starts_with("head.")),
        "{:?}",
        r.load.missing
    );
    assert!(backbone > 20);
}
