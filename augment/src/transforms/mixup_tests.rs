//! Mixup/CutMix and the soft-target loss against the reference's recorded draws
//! (tests/fixtures/mix_erase/mixup.*, made by scripts/fixtures/mix_erase.py), and the limits of
//! our own draws.

use std::collections::VecDeque;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tch::{Device, Kind, Tensor};

use super::*;
use crate::transforms::random_erasing::tests::{fixture_json, fixture_tensors, get, max_abs_diff};

fn config(case: &Value) -> MixConfig {
    let cfg = &case["cfg"];
    let (m, c) = (&cfg["MIXUP"], &cfg["CUTMIX"]);
    let mode = match m["MODE"].as_str().unwrap() {
        "batch" => MixupMode::Batch,
        "pair" => MixupMode::Pair,
        "elem" => MixupMode::Elem,
        other => panic!("mode {other}"),
    };
    MixConfig {
        mixup: MixupConfig {
            enable: m["ENABLE"].as_bool().unwrap(),
            alpha: m["ALPHA"].as_f64().unwrap(),
            prob: m["PROB"].as_f64().unwrap(),
            mode,
            switch_prob: m["SWITCH_PROB"].as_f64().unwrap(),
        },
        cutmix: CutmixConfig {
            enable: c["ENABLE"].as_bool().unwrap(),
            alpha: c["ALPHA"].as_f64().unwrap(),
            minmax: c["MINMAX"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_f64().unwrap()).collect()),
        },
        label_smoothing: cfg["LABEL_SMOOTHING"].as_f64().unwrap(),
        num_classes: case["num_classes"].as_i64().unwrap(),
    }
}

/// The reference's numpy calls one value at a time (a `rand(n)` or `beta(a, a, n)` call gives
/// `n` consecutive draws).
struct Replay(VecDeque<(String, Vec<f64>, f64)>);

impl Replay {
    fn new(log: &Value) -> Self {
        let mut q = VecDeque::new();
        for call in log.as_array().unwrap() {
            let kind = call[0].as_str().unwrap().to_string();
            let args: Vec<f64> = call[1]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            let args = match kind.as_str() {
                "rand" => vec![],
                "beta" => args[..2].to_vec(),
                _ => args,
            };
            match &call[2] {
                Value::Array(vs) => {
                    for v in vs {
                        q.push_back((kind.clone(), args.clone(), v.as_f64().unwrap()));
                    }
                }
                v => q.push_back((kind, args, v.as_f64().unwrap())),
            }
        }
        Self(q)
    }

    fn next(&mut self, kind: &str, args: &[f64]) -> f64 {
        let (k, a, v) = self
            .0
            .pop_front()
            .unwrap_or_else(|| panic!("no {kind} left"));
        assert_eq!((k.as_str(), a.as_slice()), (kind, args));
        v
    }
}

impl MixSource for Replay {
    fn unit(&mut self) -> f64 {
        self.next("rand", &[])
    }

    fn beta(&mut self, dist: &SymmetricBeta) -> f64 {
        self.next("beta", &[dist.alpha, dist.alpha])
    }

    fn randint(&mut self, lo: i64, hi: i64) -> i64 {
        self.next("randint", &[lo as f64, hi as f64]) as i64
    }
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        v => vec![v.clone()],
    }
}

/// The draw as the json records it: drawn λ and CutMix flags (`_params_per_*`), the boxes
/// (`cutmix_bbox_and_lam`, in call order) and the final λ (`_mix_*`).
fn recorded_draw(mode: MixupMode, round: &Value) -> MixDraw {
    let drawn = as_list(&round["lam_drawn"]);
    let flags = as_list(&round["use_cutmix"]);
    let lams = as_list(&round["lam"]);
    let mut boxes = round["boxes"].as_array().unwrap().iter();
    let items = drawn
        .iter()
        .zip(&flags)
        .enumerate()
        .map(|(i, (d, f))| {
            let drawn_lam = d.as_f64().unwrap();
            let cutmix = f.as_bool().unwrap();
            let cut = (cutmix && drawn_lam != 1.0).then(|| {
                let b = boxes.next().unwrap();
                let g = |k: &str| b[k].as_i64().unwrap();
                CutBox {
                    y0: g("yl"),
                    y1: g("yh"),
                    x0: g("xl"),
                    x1: g("xh"),
                }
            });
            MixItem {
                drawn_lam,
                cutmix,
                cut,
                lam: lams[i].as_f64().unwrap(),
            }
        })
        .collect();
    assert!(boxes.next().is_none());
    MixDraw { mode, items }
}

#[derive(Default)]
struct MaxDiff {
    blend: f64,
    cut: f64,
    target: f64,
    loss: f64,
}

#[test]
fn reference_draws_replay_and_apply() {
    let doc = fixture_json("mixup.json");
    let ts = fixture_tensors("mixup.safetensors");
    let mut worst = MaxDiff::default();
    let mut rounds = 0;
    for (name, case) in doc["cases"].as_object().unwrap() {
        let cfg = config(case);
        let mode = cfg.mixup.mode;
        let mixup = Mixup::new(cfg).unwrap();
        let reference_axes = mixup.clone().with_reference_elem_axes(true);
        let x = get(&ts, &format!("{name}.input"));
        let labels = get(&ts, &format!("{name}.labels"));
        let logits = get(&ts, &format!("{name}.logits"));
        let s = x.size();
        for (r, round) in case["rounds"].as_array().unwrap().iter().enumerate() {
            let key = format!("{name}.r{r}");
            let mut replay = Replay::new(&round["log"]);
            let draw = mixup
                .draw_from(s[0] as usize, s[3], s[4], &mut replay)
                .unwrap();
            assert!(replay.0.is_empty(), "{key}: draws left over");
            assert_eq!(draw, recorded_draw(mode, round), "{key}");

            let (out, target) = reference_axes.apply(x, labels, &draw).unwrap();
            let d = max_abs_diff(&out, get(&ts, &format!("{key}.output")));
            let all_cut = draw
                .items
                .iter()
                .all(|i| i.cut.is_some() || i.drawn_lam == 1.0);
            if all_cut {
                worst.cut = worst.cut.max(d);
                assert_eq!(d, 0.0, "{key}");
            } else {
                worst.blend = worst.blend.max(d);
                assert!(d <= 1e-6, "{key}: {d}");
            }
            let dt = max_abs_diff(&target, get(&ts, &format!("{key}.target")));
            worst.target = worst.target.max(dt);
            assert!(dt <= 1e-6, "{key}: target {dt}");
            let loss = soft_target_cross_entropy(logits, &target);
            let dl = max_abs_diff(&loss, get(&ts, &format!("{key}.loss")));
            worst.loss = worst.loss.max(dl);
            assert!(dl <= 1e-6, "{key}: loss {dl}");

            if mode != MixupMode::Batch {
                // The default pastes the box on H and W: the script's own slicing of the same
                // draw.
                let (hw, target_hw) = mixup.apply(x, labels, &draw).unwrap();
                let d = max_abs_diff(&hw, get(&ts, &format!("{key}.output_hw")));
                assert!(d <= 1e-6, "{key}: H/W box {d}");
                assert_eq!(max_abs_diff(&target_hw, &target), 0.0);
            }
            rounds += 1;
        }
    }
    eprintln!(
        "mixup vs reference, max |diff|: cutmix-only outputs {:e}, outputs with blends {:e}, \
         targets {:e}, loss {:e}",
        worst.cut, worst.blend, worst.target, worst.loss
    );
    assert_eq!(rounds, 17);
}

fn cfg(mode: MixupMode, mixup_alpha: f64, cutmix: Option<f64>, prob: f64) -> MixConfig {
    MixConfig {
        mixup: MixupConfig {
            enable: mixup_alpha > 0.0,
            alpha: mixup_alpha,
            prob,
            mode,
            switch_prob: 0.5,
        },
        cutmix: CutmixConfig {
            enable: cutmix.is_some(),
            alpha: cutmix.unwrap_or(0.0),
            minmax: None,
        },
        label_smoothing: 0.1,
        num_classes: 5,
    }
}

fn batch() -> (Tensor, Tensor) {
    let x = Tensor::randn([6, 3, 2, 12, 16], (Kind::Float, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 0]);
    (x, labels)
}

#[test]
fn seeded_draws_are_deterministic() {
    for mode in [MixupMode::Batch, MixupMode::Pair, MixupMode::Elem] {
        let m = Mixup::new(cfg(mode, 0.8, Some(1.0), 0.7)).unwrap();
        let draws = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..10)
                .map(|_| m.draw(6, 12, 16, &mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }
}

#[test]
fn prob_zero_never_mixes() {
    let (x, labels) = batch();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for mode in [MixupMode::Batch, MixupMode::Pair, MixupMode::Elem] {
        let m = Mixup::new(cfg(mode, 0.8, Some(1.0), 0.0)).unwrap();
        for _ in 0..20 {
            let d = m.draw(6, 12, 16, &mut rng).unwrap();
            assert!(d.items.iter().all(|i| i.lam == 1.0 && i.cut.is_none()));
            let (out, target) = m.apply(&x, &labels, &d).unwrap();
            assert_eq!(max_abs_diff(&out, &x), 0.0);
            let plain = smoothed_one_hot(&labels, 5, 0.1);
            assert_eq!(max_abs_diff(&target, &plain), 0.0);
        }
    }
}

#[test]
fn cutmix_boxes_fit_and_correct_lambda() {
    let (x, labels) = batch();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut minmax = cfg(MixupMode::Elem, 0.0, Some(0.0), 1.0);
    minmax.cutmix.minmax = Some(vec![0.2, 0.8]);
    for c in [
        cfg(MixupMode::Batch, 0.0, Some(1.0), 1.0),
        cfg(MixupMode::Elem, 0.0, Some(0.5), 1.0),
        minmax,
    ] {
        let m = Mixup::new(c).unwrap();
        for _ in 0..50 {
            let d = m.draw(6, 12, 16, &mut rng).unwrap();
            for item in &d.items {
                assert!(item.cutmix);
                let b = item.cut.unwrap();
                assert!(0 <= b.y0 && b.y0 <= b.y1 && b.y1 <= 12);
                assert!(0 <= b.x0 && b.x0 <= b.x1 && b.x1 <= 16);
                let lam = 1.0 - b.area() as f64 / (12.0 * 16.0);
                assert!((item.lam - lam).abs() < 1e-7);
            }
            // Inside the box each clip holds its mirror's pixels; the targets sum to 1.
            let (out, target) = m.apply(&x, &labels, &d).unwrap();
            let b = d.items[0].cut.unwrap();
            let region = |t: &Tensor| t.i((0, .., .., b.y0..b.y1, b.x0..b.x1));
            assert_eq!(max_abs_diff(&region(&out), &region(&x.i(5..6))), 0.0);
            let sums = target.sum_dim_intlist(-1, false, Kind::Float);
            assert!(max_abs_diff(&sums, &Tensor::ones([6], (Kind::Float, Device::Cpu))) < 1e-6);
        }
    }
}

#[test]
fn pair_mode_mirrors_the_pair() {
    let (x, labels) = batch();
    let m = Mixup::new(cfg(MixupMode::Pair, 0.8, None, 1.0)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let d = m.draw(6, 12, 16, &mut rng).unwrap();
    assert_eq!(d.items.len(), 3);
    let (out, target) = m.apply(&x, &labels, &d).unwrap();
    let y = smoothed_one_hot(&labels, 5, 0.1);
    for (i, item) in d.items.iter().enumerate() {
        let (i, j) = (i as i64, 5 - i as i64);
        let l = item.lam;
        // Both clips of the pair take the pair's λ for themselves.
        for (a, b) in [(i, j), (j, i)] {
            let expected = x.i(a) * l + x.i(b) * (1.0 - l);
            assert!(max_abs_diff(&out.i(a), &expected) < 1e-6);
            let expected = y.i(a) * l + y.i(b) * (1.0 - l);
            assert!(max_abs_diff(&target.i(a), &expected) < 1e-6);
        }
    }
    assert!(matches!(
        m.draw(5, 12, 16, &mut rng),
        Err(MixupError::OddBatch(5))
    ));
}

#[test]
fn soft_target_loss_is_cross_entropy_for_one_hot_targets() {
    let logits = Tensor::randn([4, 5], (Kind::Float, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 3, 1, 4]);
    let ours = soft_target_cross_entropy(&logits, &smoothed_one_hot(&labels, 5, 0.0));
    let ce = logits.cross_entropy_for_logits(&labels);
    assert!(max_abs_diff(&ours, &ce) < 1e-6);
}

#[test]
fn bad_settings_name_their_key() {
    let err = |c: MixConfig| Mixup::new(c).unwrap_err().to_string();
    let mut none = cfg(MixupMode::Batch, 0.0, None, 1.0);
    assert!(err(none.clone()).contains("ENABLE"));
    none.mixup.enable = true;
    assert!(err(none.clone()).contains("ALPHA"));
    // CutMix alone with only MINMAX is enough (α is forced to 1).
    let mut mm = cfg(MixupMode::Batch, 0.0, Some(0.0), 1.0);
    mm.cutmix.minmax = Some(vec![0.2, 0.8]);
    assert_eq!(Mixup::new(mm.clone()).unwrap().alphas(), (0.0, 1.0));
    // MIXUP.ALPHA counts whenever mixing is on, even with MIXUP.ENABLE false (the reference).
    mm.mixup.alpha = 0.4;
    assert_eq!(Mixup::new(mm.clone()).unwrap().alphas(), (0.4, 1.0));
    mm.cutmix.minmax = Some(vec![0.8, 0.2]);
    assert!(err(mm).contains("CUTMIX.MINMAX"));
    let mut p = cfg(MixupMode::Batch, 0.8, None, 1.5);
    assert!(err(p.clone()).contains("MIXUP.PROB"));
    p.mixup.prob = 1.0;
    p.mixup.switch_prob = -0.1;
    assert!(err(p.clone()).contains("SWITCH_PROB"));
    p.mixup.switch_prob = 0.5;
    p.cutmix = CutmixConfig {
        enable: true,
        alpha: -1.0,
        minmax: None,
    };
    assert!(err(p).contains("CUTMIX.ALPHA"));
}

/// Every `U` 0, every Beta draw `lam`, every randint `lo + 7` (the box centre).
struct Fixed(f64);

impl MixSource for Fixed {
    fn unit(&mut self) -> f64 {
        0.0
    }

    fn beta(&mut self, _: &SymmetricBeta) -> f64 {
        self.0
    }

    fn randint(&mut self, lo: i64, _hi: i64) -> i64 {
        lo + 7
    }
}

#[test]
fn box_side_uses_the_reference_precision() {
    // 14·√(1 − λ) for this f32 λ: 12.0000… in float32 (numpy's float32 λ of elem/pair modes),
    // 11.9999… in float64 (batch mode's Python float); the reference truncates either.
    let lam = f64::from(0.265_306_14_f32);
    let side = |mode| {
        let m = Mixup::new(cfg(mode, 0.0, Some(1.0), 1.0)).unwrap();
        let d = m.draw_from(2, 14, 14, &mut Fixed(lam)).unwrap();
        let b = d.items[0].cut.unwrap();
        (b.y1 - b.y0, b.x1 - b.x0)
    };
    assert_eq!(side(MixupMode::Elem), (12, 12));
    assert_eq!(side(MixupMode::Batch), (10, 10));
}
