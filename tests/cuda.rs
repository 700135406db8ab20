//! CUDA paths. Each test checks what it can on the CPU and, where a CUDA device is present, runs
//! the GPU part (CI has none: there the GPU parts print "no CUDA device" and are skipped;
//! scripts/bench_gpu.sh runs them on a GPU machine): autocast computes in the dtype
//! TRAIN.PRECISION names, MoSI and contrastive + ParamCrop training run in fp32, bf16 and fp16
//! with pinned batches, a CUDA forward pass matches the CPU one, and a checkpoint written on the
//! GPU loads on the CPU.

use std::path::Path;

use tada::checkpoint::{latest_checkpoint, Checkpoint};
use tada::config::load as load_pretrain_config;
use tada::config::LoadedConfig;
use tada::cuda_shim::cuda_autocast_is_bf16;
use tada::models::Session;
use tada::models::VideoModel;
use tada::runs::pretrain;
use tada::train::precision::{autocast, Precision};
use tada::train::Summary;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::common::{mean_loss, run_options, serial, TINY_BACKBONE};

fn cuda() -> Option<Device> {
    if tch::Cuda::is_available() {
        Some(Device::Cuda(0))
    } else {
        eprintln!("no CUDA device: GPU part skipped");
        None
    }
}

/// The CPU tests' tiny backbone at twice the width, so the GPU kernels do some work.
fn backbone() -> String {
    TINY_BACKBONE
        .replace(
            "NUM_FILTERS: [4, 4, 8, 8, 8]",
            "NUM_FILTERS: [8, 8, 16, 16, 16]",
        )
        .replace("NUM_OUT_FEATURES: 8", "NUM_OUT_FEATURES: 16")
}

fn mosi_config(dir: &Path, gpus: u32, precision: &str) -> LoadedConfig {
    let backbone = backbone();
    let yaml = format!(
        "{backbone}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: 0.0}}
NUM_GPUS: {gpus}
RANDOM_SEED: 3
LOG_PERIOD: 1
DATA_LOADER: {{NUM_WORKERS: 2, PIN_MEMORY: true}}
BN: {{EPS: 1e-3, MOMENTUM: 0.1}}
DATA: {{TRAIN_CROP_SIZE: 32}}
PRETRAIN: {{NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}}
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{BATCH_SIZE: 4, NUM_SAMPLES: 12, CHECKPOINT_PERIOD: 100, PRECISION: {precision}}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: 30, WARMUP_EPOCHS: 0, LR_POLICY: cosine}}
"
    );
    let path = dir.join("mosi.yaml");
    std::fs::write(&path, yaml).unwrap();
    tada::config::recipes::MOSI.load(&path, &[]).unwrap()
}

/// Every loss finite, and the last `n` below `factor` times the first `n` on average.
fn assert_learns(s: &Summary, n: usize, factor: f64, what: &str) {
    assert!(
        s.losses.iter().all(|(_, l)| l.is_finite()),
        "{what}: {:?}",
        s.losses
    );
    let (first, last) = (
        mean_loss(&s.losses[..n]),
        mean_loss(&s.losses[s.losses.len() - n..]),
    );
    eprintln!("{what}: first {n} mean {first:.4}, last {n} mean {last:.4}");
    assert!(
        last < factor * first,
        "{what}: loss did not fall ({first:.4} -> {last:.4})"
    );
}

#[test]
fn autocast_computes_in_the_dtype_the_precision_names() {
    // The CPU keeps fp32 whatever the precision (libtorch's CPU autocast is not wired up).
    let c = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
    for p in [Precision::Fp32, Precision::Bf16, Precision::Fp16] {
        assert_eq!(
            autocast(p, Device::Cpu, || c.matmul(&c)).kind(),
            Kind::Float
        );
    }
    let Some(dev) = cuda() else { return };
    let a = Tensor::randn([8, 8], (Kind::Float, dev));
    for (p, kind) in [
        (Precision::Fp32, Kind::Float),
        (Precision::Bf16, Kind::BFloat16),
        (Precision::Fp16, Kind::Half),
        (Precision::Bf16, Kind::BFloat16),
    ] {
        let y = autocast(p, dev, || a.matmul(&a));
        assert_eq!(y.kind(), kind, "{p:?}");
        if p != Precision::Fp32 {
            assert_eq!(cuda_autocast_is_bf16(), p == Precision::Bf16);
        }
    }
    // Outside the closure autocast is off again.
    assert_eq!(a.matmul(&a).kind(), Kind::Float);
}

#[test]
fn mosi_trains_on_cuda_in_every_precision() {
    let _serial = serial();
    let Some(_) = cuda() else { return };
    for precision in ["fp32", "bf16", "fp16"] {
        let d = tempfile::tempdir().unwrap();
        let cfg = mosi_config(d.path(), 1, precision);
        let s = pretrain(&cfg, &run_options(d.path(), false, None)).unwrap();
        assert_eq!(s.steps, 90, "{precision}");
        assert_learns(&s, 9, 0.92, precision);
        // The weights stay fp32 masters and load on the CPU.
        let ckpt =
            Checkpoint::load(&latest_checkpoint(&d.path().join("checkpoints")).unwrap()).unwrap();
        let cpu = Session::new(&mosi_config(d.path(), 0, "fp32").config).unwrap();
        assert_eq!(cpu.device, Device::Cpu);
        for (name, t) in &ckpt.model {
            if t.is_floating_point() {
                assert_eq!(t.kind(), Kind::Float, "{precision}: {name}");
            }
            assert_eq!(t.device(), Device::Cpu, "{name}");
        }
        let vars = cpu.vs.variables();
        let backbone: Vec<_> = ckpt
            .model
            .iter()
            .filter(|(n, _)| n.starts_with("backbone."))
            .collect();
        assert!(!backbone.is_empty());
        for (name, t) in backbone {
            let v = vars
                .get(name)
                .unwrap_or_else(|| panic!("{name} not in a CPU model"));
            assert_eq!(v.size(), t.size(), "{name}");
        }
    }
}

#[test]
fn contrastive_paramcrop_trains_on_cuda_in_bf16() {
    let _serial = serial();
    let Some(_) = cuda() else { return };
    for framework in ["simclr", "moco"] {
        let d = tempfile::tempdir().unwrap();
        let backbone = backbone();
        let yaml = format!(
            "{backbone}  HEAD: {{NAME: ContrastiveHead}}
NUM_GPUS: 1
RANDOM_SEED: 5
LOG_PERIOD: 1
DATA_LOADER: {{NUM_WORKERS: 2, PIN_MEMORY: true}}
BN: {{EPS: 1e-3, MOMENTUM: 0.1}}
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
AUGMENTATION: {{COLOR_AUG: false}}
PRETRAIN:
  ENABLE: true
  GENERATOR: Contrastive
  CONTRASTIVE: {{FRAMEWORK: {framework}, HEAD_MID_DIM: 16, HEAD_OUT_DIM: 8, TEMPERATURE: 0.2, QUEUE_SIZE: 24, MOMENTUM: 0.9}}
  PARAMCROP: {{ENABLE: true, INPUT_FRAMES: 8, INPUT_SIZE: 40, LR: 0.01}}
TRAIN: {{BATCH_SIZE: 8, NUM_SAMPLES: 16, CHECKPOINT_PERIOD: 100, PRECISION: bf16}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.005, MAX_EPOCH: 12, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0}}
"
        );
        let path = d.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        let cfg = load_pretrain_config(&path, &[]).unwrap();
        // One step into its own folder, then the whole run: every part the step trains must
        // have moved between the two checkpoints.
        let one = d.path().join("one");
        let mut opts = run_options(&one, false, None);
        opts.train.max_steps = Some(1);
        pretrain(&cfg, &opts).unwrap();
        let all = d.path().join("all");
        let s = pretrain(&cfg, &run_options(&all, false, None)).unwrap();
        assert_eq!(s.steps, 24, "{framework}");
        // The adversary raises the loss it is trained against, so over 24 steps the loss need
        // not fall (the CPU tests check learning); here it must stay finite.
        assert!(
            s.losses.iter().all(|(_, l)| l.is_finite()),
            "{framework}: {:?}",
            s.losses
        );
        let load = |dir: &Path| {
            Checkpoint::load(&latest_checkpoint(&dir.join("checkpoints")).unwrap()).unwrap()
        };
        let (first, last) = (load(&one), load(&all));
        for prefix in ["backbone.", "head.", "paramcrop."] {
            let moved = first
                .model
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .any(|(n, a)| {
                    let b = &last.model.iter().find(|(m, _)| m == n).unwrap().1;
                    a.is_floating_point() && f64::try_from((a - b).abs().max()).unwrap() > 0.0
                });
            assert!(
                moved,
                "{framework}: no {prefix}* tensor changed after step 1"
            );
        }
    }
}

#[test]
fn a_cuda_forward_pass_matches_the_cpu_one() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let cfg = mosi_config(d.path(), 0, "fp32").config;
    let cpu = Session::new(&cfg).unwrap();
    // (B, N, C, T, H, W): MoSINet's input, one clip per item.
    let xs = Tensor::randn([2, 1, 3, 4, 32, 32], (Kind::Float, Device::Cpu));
    let reference = cpu.model.forward_t(&xs, false).features;
    assert_eq!(reference.size(), [2, 16]);
    let Some(dev) = cuda() else { return };
    let mut vs = VarStore::new(dev);
    let model = VideoModel::new(&vs.root(), &cfg).unwrap();
    vs.copy(&cpu.vs).unwrap();
    let got = model
        .forward_t(&xs.to_device(dev), false)
        .features
        .to_device(Device::Cpu);
    // cuDNN may use TF32 for convolutions: agreement to ~1e-3 relative, not bit for bit.
    let rel = f64::try_from((&got - &reference).norm() / reference.norm()).unwrap();
    eprintln!("CUDA vs CPU forward: relative L2 difference {rel:e}");
    assert!(rel < 5e-3, "relative difference {rel:e}");
}
