//! Updates against PyTorch (values from tests/python/optim_reference.py), exact resume through
//! exported state, gradient reset and clipping.

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::test_support::{config, optimizer_of};
use super::update_reference as r;
use super::{clip_grad_norm, Hyper, OptimError, Optimizer, ParamGroup};
use crate::checkpoint::{Checkpoint, RunState};
use crate::config::schema::OptimMethod;

// The set-up of tests/python/optim_reference.py.
const W0: [f32; 5] = [0.5, -1.2, 2.0, 0.0, 3.5];
const B0: [f32; 3] = [0.1, -0.3, 0.25];
const GW: [[f32; 5]; 3] = [
    [0.3, -0.7, 1.1, 0.2, -0.4],
    [-0.5, 0.25, 0.9, -0.1, 0.6],
    [0.05, -0.3, -1.2, 0.4, 0.8],
];
const GB: [[f32; 3]; 3] = [[0.2, -0.1, 0.05], [0.4, 0.3, -0.2], [-0.15, 0.1, 0.35]];
const LR_SGD: [f64; 3] = [0.1, 0.05, 0.02];
const LR_ADAM: [f64; 3] = [0.01, 0.005, 0.002];
const LR_LARS: [f64; 3] = [0.5, 0.25, 0.1];

fn hyper(momentum: f64, dampening: f64, nesterov: bool) -> Hyper {
    Hyper {
        momentum,
        dampening,
        nesterov,
        betas: (0.9, 0.999),
        eps: 1e-8,
        lars_eta: 0.001,
    }
}

fn leaf(values: &[f32]) -> Tensor {
    Tensor::from_slice(values).set_requires_grad(true)
}

/// `w` (decay `wd`, lr_mult 1) and `b` (no decay, lr_mult 2), as in the script.
fn setup(method: OptimMethod, h: Hyper, wd: f64, w: &Tensor, b: &Tensor) -> Optimizer {
    let groups = vec![
        ParamGroup {
            name: "w".into(),
            weight_decay: wd,
            lr_mult: 1.0,
            params: vec![("w".into(), w.shallow_clone())],
            method: None,
        },
        ParamGroup {
            name: "b".into(),
            weight_decay: 0.0,
            lr_mult: 2.0,
            params: vec![("b".into(), b.shallow_clone())],
            method: None,
        },
    ];
    let all = [
        ("w".to_string(), w.shallow_clone()),
        ("b".to_string(), b.shallow_clone()),
    ];
    Optimizer::from_groups(method, h, groups, &all, 0.0).unwrap()
}

/// Step `k` (0-based) of the script: gradients GW[k], GB[k], learning rate `lrs[k]`.
fn step(opt: &mut Optimizer, w: &Tensor, b: &Tensor, k: usize, lrs: &[f64; 3]) {
    opt.zero_grad().unwrap();
    let dev = w.device();
    let loss = (w * Tensor::from_slice(&GW[k]).to_device(dev)).sum(Kind::Float)
        + (b * Tensor::from_slice(&GB[k]).to_device(dev)).sum(Kind::Float);
    loss.backward();
    opt.set_lr(lrs[k]);
    opt.step();
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.detach().to_device(Device::Cpu)).unwrap()
}

/// Largest |got − want| / max(1, |want|).
fn max_rel_diff(got: &[f32], want: &[f32]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(&g, &w)| f64::from((g - w).abs()) / f64::from(w.abs()).max(1.0))
        .fold(0.0, f64::max)
}

struct Case {
    name: &'static str,
    method: OptimMethod,
    hyper: Hyper,
    wd: f64,
    lrs: &'static [f64; 3],
    w: &'static [[f32; 5]; 3],
    b: &'static [[f32; 3]; 3],
}

fn cases() -> Vec<Case> {
    use OptimMethod::*;
    vec![
        Case {
            name: "sgd nesterov",
            method: Sgd,
            hyper: hyper(0.9, 0.0, true),
            wd: 1e-2,
            lrs: &LR_SGD,
            w: &r::SGD_NESTEROV_W,
            b: &r::SGD_NESTEROV_B,
        },
        Case {
            name: "sgd dampened",
            method: Sgd,
            hyper: hyper(0.9, 0.1, false),
            wd: 1e-2,
            lrs: &LR_SGD,
            w: &r::SGD_DAMPENED_W,
            b: &r::SGD_DAMPENED_B,
        },
        Case {
            name: "sgd no momentum",
            method: Sgd,
            hyper: hyper(0.0, 0.0, false),
            wd: 1e-2,
            lrs: &LR_SGD,
            w: &r::SGD_NO_MOMENTUM_W,
            b: &r::SGD_NO_MOMENTUM_B,
        },
        Case {
            name: "adam",
            method: Adam,
            hyper: hyper(0.9, 0.0, true),
            wd: 1e-2,
            lrs: &LR_ADAM,
            w: &r::ADAM_W,
            b: &r::ADAM_B,
        },
        Case {
            name: "adamw",
            method: Adamw,
            hyper: hyper(0.9, 0.0, true),
            wd: 5e-2,
            lrs: &LR_ADAM,
            w: &r::ADAMW_W,
            b: &r::ADAMW_B,
        },
        Case {
            name: "lars",
            method: Lars,
            hyper: hyper(0.9, 0.0, true),
            wd: 1e-2,
            lrs: &LR_LARS,
            w: &r::LARS_W,
            b: &r::LARS_B,
        },
    ]
}

#[test]
fn three_steps_match_pytorch() {
    // A few float32 ulps: PyTorch fuses `a + alpha·b` into one multiply-add (see sgd.rs).
    const TOL: f64 = 2e-6;
    for c in cases() {
        let (w, b) = (leaf(&W0), leaf(&B0));
        let mut opt = setup(c.method, c.hyper, c.wd, &w, &b);
        let mut worst = 0.0f64;
        for k in 0..3 {
            step(&mut opt, &w, &b, k, c.lrs);
            let dw = max_rel_diff(&values(&w), &c.w[k]);
            let db = max_rel_diff(&values(&b), &c.b[k]);
            assert!(
                dw <= TOL && db <= TOL,
                "{} step {}: diff w {dw:e}, b {db:e}",
                c.name,
                k + 1
            );
            worst = worst.max(dw).max(db);
        }
        eprintln!(
            "{}: max relative diff to PyTorch over 3 steps {worst:e}",
            c.name
        );
    }
}

#[test]
fn cuda_steps_match_pytorch_when_a_gpu_is_present() {
    if !tch::Cuda::is_available() {
        eprintln!("no CUDA device: skipped");
        return;
    }
    let dev = Device::Cuda(0);
    for c in cases() {
        let w = Tensor::from_slice(&W0)
            .to_device(dev)
            .set_requires_grad(true);
        let b = Tensor::from_slice(&B0)
            .to_device(dev)
            .set_requires_grad(true);
        let mut opt = setup(c.method, c.hyper, c.wd, &w, &b);
        for k in 0..3 {
            step(&mut opt, &w, &b, k, c.lrs);
        }
        let d = max_rel_diff(&values(&w), &c.w[2]).max(max_rel_diff(&values(&b), &c.b[2]));
        assert!(d <= 2e-6, "{} on CUDA: diff {d:e}", c.name);
        let n = opt.clip_grad_norm(1e-3).unwrap();
        assert!(n > 0.0 && values(&w.grad()).iter().all(|g| g.is_finite()));
    }
}

#[test]
fn exported_state_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for c in cases() {
        // Uninterrupted: three steps.
        let (w, b) = (leaf(&W0), leaf(&B0));
        let mut opt = setup(c.method, c.hyper, c.wd, &w, &b);
        for k in 0..3 {
            step(&mut opt, &w, &b, k, c.lrs);
        }
        // Interrupted after two steps: weights and state through a checkpoint file.
        let (w2, b2) = (leaf(&W0), leaf(&B0));
        let mut opt2 = setup(c.method, c.hyper, c.wd, &w2, &b2);
        for k in 0..2 {
            step(&mut opt2, &w2, &b2, k, c.lrs);
        }
        let ckpt = Checkpoint {
            ema: Vec::new(),
            model: vec![
                ("w".into(), w2.detach().copy()),
                ("b".into(), b2.detach().copy()),
            ],
            optimizer: opt2.state_tensors(),
            optimizer_meta: opt2.state_meta(),
            run: RunState {
                epoch: 0,
                step: 2,
                seed: 0,
                extra: serde_json::Value::Null,
            },
            config_yaml: String::new(),
        };
        let path = dir.path().join("ck.safetensors");
        ckpt.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        let get = |n: &str| back.model.iter().find(|(k, _)| k == n).unwrap().1.copy();
        let (w3, b3) = (
            get("w").set_requires_grad(true),
            get("b").set_requires_grad(true),
        );
        let mut opt3 = setup(c.method, c.hyper, c.wd, &w3, &b3);
        opt3.load_state(&back.optimizer, &back.optimizer_meta)
            .unwrap();
        step(&mut opt3, &w3, &b3, 2, c.lrs);
        assert_eq!(values(&w3), values(&w), "{}: resumed w", c.name);
        assert_eq!(values(&b3), values(&b), "{}: resumed b", c.name);
        // Without the state the third step differs (except where there is no state).
        let (w4, b4) = (
            get("w").set_requires_grad(true),
            get("b").set_requires_grad(true),
        );
        let mut opt4 = setup(c.method, c.hyper, c.wd, &w4, &b4);
        step(&mut opt4, &w4, &b4, 2, c.lrs);
        if c.name != "sgd no momentum" {
            assert_ne!(values(&w4), values(&w), "{}: state matters", c.name);
        }
    }
}

#[test]
fn state_names_and_load_errors() {
    let (w, b) = (leaf(&W0), leaf(&B0));
    let mut opt = setup(OptimMethod::Adam, hyper(0.9, 0.0, true), 0.0, &w, &b);
    assert!(
        opt.state_tensors().is_empty(),
        "no state before the first step"
    );
    step(&mut opt, &w, &b, 0, &LR_ADAM);
    let names: Vec<String> = opt.state_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "step.w",
            "exp_avg.w",
            "exp_avg_sq.w",
            "step.b",
            "exp_avg.b",
            "exp_avg_sq.b"
        ]
    );
    let (state, meta) = (opt.state_tensors(), opt.state_meta());
    // Another method.
    let mut sgd = setup(OptimMethod::Sgd, hyper(0.9, 0.0, true), 0.0, &w, &b);
    let e = sgd.load_state(&state, &meta).unwrap_err();
    assert_eq!(e.key(), Some("OPTIMIZER.OPTIM_METHOD"), "{e}");
    // A parameter the optimiser does not have.
    let mut extra = state
        .iter()
        .map(|(n, t)| (n.clone(), t.copy()))
        .collect::<Vec<_>>();
    extra.push((
        "exp_avg.gone".into(),
        Tensor::zeros([5], (Kind::Float, Device::Cpu)),
    ));
    let e = opt.load_state(&extra, &meta).unwrap_err();
    assert!(
        matches!(&e, OptimError::State { name, .. } if name == "gone"),
        "{e}"
    );
    // A wrong shape.
    let mut bad = state
        .iter()
        .map(|(n, t)| (n.clone(), t.copy()))
        .collect::<Vec<_>>();
    bad[1].1 = Tensor::zeros([4], (Kind::Float, Device::Cpu));
    let e = opt.load_state(&bad, &meta).unwrap_err();
    assert!(e.to_string().contains("exp_avg.w"), "{e}");
    // A missing slot.
    let e = opt.load_state(&state[1..], &meta).unwrap_err();
    assert!(e.to_string().contains("step.w"), "{e}");
}

#[test]
fn zero_grad_unsets_gradients_and_ungraded_parameters_stay() {
    let (w, b) = (leaf(&W0), leaf(&B0));
    let mut opt = setup(OptimMethod::Sgd, hyper(0.9, 0.0, true), 1e-2, &w, &b);
    step(&mut opt, &w, &b, 0, &LR_SGD);
    opt.zero_grad().unwrap();
    assert!(!w.grad().defined() && !b.grad().defined());
    // Only `w` gets a gradient: `b` keeps its value despite its momentum buffer (PyTorch skips
    // parameters whose grad is None).
    let before = values(&b);
    (&w * Tensor::from_slice(&GW[1]))
        .sum(Kind::Float)
        .backward();
    opt.step();
    assert_eq!(values(&b), before);
}

#[test]
fn only_linear_steps_the_head_and_clears_all_gradients() {
    let c = config("TRAIN: {ONLY_LINEAR: true}\nOPTIMIZER: {OPTIM_METHOD: sgd, BASE_LR: 0.1}");
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let bw = (&root / "backbone").var("w", &[3], tch::nn::Init::Const(1.0));
    let hw = (&root / "head").var("w", &[3], tch::nn::Init::Const(1.0));
    let mut opt = optimizer_of(&vs, &c).unwrap();
    assert_eq!(opt.param_names(), ["head.w"]);
    assert_eq!(opt.lr(), 0.1);
    (&bw * &hw).sum(Kind::Float).backward();
    opt.step();
    assert_eq!(values(&bw), [1.0; 3]);
    assert!(values(&hw).iter().all(|&v| v < 1.0));
    opt.zero_grad().unwrap();
    assert!(!bw.grad().defined() && !hw.grad().defined());
}

/// The key a config load refuses, or None when it loads.
fn refused_key(yaml: &str) -> Option<String> {
    let set = ["VIDEO.HEAD.NUM_CLASSES=2".to_string()];
    match crate::config::load_str(yaml, "t.yaml", &set) {
        Err(crate::config::ConfigError::Invalid { key, .. }) => Some(key),
        Err(e) => panic!("{e}"),
        Ok(_) => None,
    }
}

#[test]
fn optimiser_keys_are_checked_with_the_config() {
    assert_eq!(
        refused_key("OPTIMIZER: {OPTIM_METHOD: sgd, NESTEROV: true, DAMPENING: 0.1}").as_deref(),
        Some("OPTIMIZER.NESTEROV")
    );
    assert_eq!(
        refused_key("BN: {WEIGHT_DECAY: -1.0}").as_deref(),
        Some("BN.WEIGHT_DECAY")
    );
    // Adam ignores the momentum keys, as torch.optim.Adam does.
    let adam = "OPTIMIZER: {OPTIM_METHOD: adam, NESTEROV: true, MOMENTUM: 0.0}";
    assert_eq!(refused_key(adam), None);
    let vs = VarStore::new(Device::Cpu);
    let _ = (vs.root() / "head").var("w", &[3], tch::nn::Init::Const(1.0));
    assert!(optimizer_of(&vs, &config(adam)).is_ok());
}

#[test]
fn clipping_scales_to_the_threshold_and_reports_the_norm() {
    let a = leaf(&[0.0, 0.0]);
    let b = leaf(&[0.0]);
    let set = |ga: [f32; 2], gb: f32| {
        for t in [&a, &b] {
            let mut t = t.shallow_clone();
            t.zero_grad();
        }
        ((&a * Tensor::from_slice(&ga)).sum(Kind::Float) + (&b * f64::from(gb)).sum(Kind::Float))
            .backward();
    };
    // Gradients (3, 4) and (12): global norm 13.
    set([3.0, 4.0], 12.0);
    let n = clip_grad_norm(&[&a, &b], 6.5).unwrap();
    assert!((n - 13.0).abs() < 1e-5, "{n}");
    let coef = 6.5 / (13.0 + 1e-6);
    let ga = values(&a.grad());
    assert!((f64::from(ga[0]) - 3.0 * coef).abs() < 1e-6, "{ga:?}");
    assert!((f64::from(values(&b.grad())[0]) - 12.0 * coef).abs() < 1e-6);
    // Under the threshold: unchanged.
    set([3.0, 4.0], 12.0);
    assert!((clip_grad_norm(&[&a, &b], 100.0).unwrap() - 13.0).abs() < 1e-5);
    assert_eq!(values(&a.grad()), [3.0, 4.0]);
    // Non-finite: reported, gradients untouched.
    set([f32::INFINITY, 1.0], 1.0);
    let e = clip_grad_norm(&[&a, &b], 1.0).unwrap_err();
    assert!(
        matches!(e, OptimError::NonFiniteGradNorm(v) if v.is_infinite()),
        "{e}"
    );
    assert_eq!(values(&b.grad()), [1.0]);
    set([f32::NAN, 1.0], 1.0);
    assert!(matches!(
        clip_grad_norm(&[&a, &b], 1.0),
        Err(OptimError::NonFiniteGradNorm(v)) if v.is_nan()
    ));
    // No gradients at all.
    assert_eq!(clip_grad_norm(&[&leaf(&[1.0])], 1.0).unwrap(), 0.0);
}

#[test]
fn clip_threshold_reads_the_config() {
    use super::clip_threshold;
    let o = |v: f64| crate::config::schema::OptimizerConfig {
        clip_grad_norm: v,
        ..Default::default()
    };
    assert_eq!(clip_threshold(&o(0.0)), None);
    assert_eq!(clip_threshold(&o(1.5)), Some(1.5));
    for bad in ["-1.0", "-0.5"] {
        assert_eq!(
            refused_key(&format!("OPTIMIZER: {{CLIP_GRAD_NORM: {bad}}}")).as_deref(),
            Some("OPTIMIZER.CLIP_GRAD_NORM")
        );
    }
}
