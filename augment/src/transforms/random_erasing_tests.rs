//! Random erasing against the reference's recorded draws (tests/fixtures/mix_erase/erasing.*,
//! made by scripts/fixtures/mix_erase.py), and the limits of our own draws.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tch::{Device, Kind, Tensor};

use super::*;

pub(crate) fn fixture_path(name: &str) -> String {
    format!(
        "{}/../tests/fixtures/mix_erase/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

pub(crate) fn fixture_json(name: &str) -> Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn fixture_tensors(name: &str) -> Vec<(String, Tensor)> {
    let path = fixture_path(name);
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn get<'a>(ts: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &ts.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .1
}

pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    if a.numel() == 0 {
        return 0.0;
    }
    (a - b).abs().max().double_value(&[])
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn config(cfg: &Value) -> RandomErasingConfig {
    let mode = match cfg["MODE"].as_str().unwrap() {
        "const" => RandomErasingMode::Const,
        "rand" => RandomErasingMode::Rand,
        "pixel" => RandomErasingMode::Pixel,
        m => panic!("mode {m}"),
    };
    RandomErasingConfig {
        enable: cfg["ENABLE"].as_bool().unwrap(),
        prob: cfg["PROB"].as_f64().unwrap(),
        mode,
        count: f64s(&cfg["COUNT"]).iter().map(|&c| c as u32).collect(),
        num_splits: cfg["NUM_SPLITS"].as_u64().unwrap() as u32,
        area_range: f64s(&cfg["AREA_RANGE"]),
        min_aspect: cfg["MIN_ASPECT"].as_f64().unwrap(),
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

/// The fill of a recorded box: zeros, or the tensor `_get_pixels` returned.
fn recorded_fill(mode: RandomErasingMode, key: &Value, ts: &[(String, Tensor)]) -> Fill {
    match (mode, key.as_str()) {
        (RandomErasingMode::Const, None) => Fill::Zero,
        (RandomErasingMode::Rand, Some(k)) => Fill::Channel(values(get(ts, k))),
        (RandomErasingMode::Pixel, Some(k)) => Fill::Pixel(values(get(ts, k))),
        (m, k) => panic!("fill {k:?} in mode {m:?}"),
    }
}

/// The reference's recorded `random` calls and `_get_pixels` results, in order.
struct Replay<'a> {
    log: std::slice::Iter<'a, Value>,
    tensors: &'a [(String, Tensor)],
}

impl Replay<'_> {
    fn next(&mut self, kind: &str) -> (&Value, &Value) {
        let call = self.log.next().unwrap_or_else(|| panic!("no {kind} left"));
        assert_eq!(call[0], kind, "call {call}");
        (&call[1], &call[2])
    }
}

impl ErasingSource for Replay<'_> {
    fn unit(&mut self) -> f64 {
        self.next("random").1.as_f64().unwrap()
    }

    fn int_inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        let (args, v) = self.next("randint");
        assert_eq!((args[0].as_i64(), args[1].as_i64()), (Some(lo), Some(hi)));
        v.as_i64().unwrap()
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let (args, v) = self.next("uniform");
        assert_eq!(f64s(args), [lo, hi]);
        v.as_f64().unwrap()
    }

    fn fill(&mut self, mode: RandomErasingMode, shape: [i64; 4]) -> Fill {
        let tensors = self.tensors;
        let (args, key) = self.next("pixels");
        let recorded: Vec<i64> = f64s(args).iter().map(|&d| d as i64).collect();
        assert_eq!(recorded, shape, "patch size");
        recorded_fill(mode, key, tensors)
    }
}

fn recorded_boxes(
    mode: RandomErasingMode,
    boxes: &Value,
    ts: &[(String, Tensor)],
) -> Vec<ErasedBox> {
    boxes
        .as_array()
        .unwrap()
        .iter()
        .map(|b| ErasedBox {
            top: b["top"].as_i64().unwrap(),
            left: b["left"].as_i64().unwrap(),
            height: b["height"].as_i64().unwrap(),
            width: b["width"].as_i64().unwrap(),
            fill: recorded_fill(mode, &b["fill"], ts),
        })
        .collect()
}

#[test]
fn reference_draws_replay_and_apply_exactly() {
    let doc = fixture_json("erasing.json");
    let ts = fixture_tensors("erasing.safetensors");
    let mut checked = 0;
    for (name, case) in doc["cases"].as_object().unwrap() {
        let eraser = RandomErasing::new(config(&case["cfg"])).unwrap();
        let mode = eraser.config().mode;
        let shape: Vec<i64> = f64s(&case["shape"]).iter().map(|&d| d as i64).collect();
        let input = get(&ts, &format!("{name}.input"));
        for (k, call) in case["calls"].as_array().unwrap().iter().enumerate() {
            let expected = get(&ts, &format!("{name}.output{k}"));
            let mut replay = Replay {
                log: call["log"].as_array().unwrap().iter(),
                tensors: &ts,
            };
            let out = if shape.len() == 4 {
                let draw = eraser.draw_from([shape[0], shape[1], shape[2], shape[3]], &mut replay);
                // Our draw code, fed the reference's numbers, makes the reference's boxes.
                assert_eq!(
                    draw.boxes,
                    recorded_boxes(mode, &call["boxes"], &ts),
                    "{name} {k}"
                );
                // The draw rebuilt from the json alone gives the same clip.
                let rebuilt = ErasingDraw {
                    applied: true,
                    count: draw.count,
                    boxes: recorded_boxes(mode, &call["boxes"], &ts),
                };
                assert_eq!(max_abs_diff(&eraser.apply(input, &rebuilt), expected), 0.0);
                eraser.apply(input, &draw)
            } else {
                let [b, c, t, h, w] = shape[..] else {
                    panic!("shape")
                };
                let start = eraser.batch_start(b);
                assert_eq!(start, b / 2);
                let draws: Vec<ErasingDraw> = (0..b)
                    .map(|i| {
                        if i < start {
                            ErasingDraw::default()
                        } else {
                            eraser.draw_from([c, t, h, w], &mut replay)
                        }
                    })
                    .collect();
                let boxes: Vec<ErasedBox> = draws.iter().flat_map(|d| d.boxes.clone()).collect();
                assert_eq!(boxes, recorded_boxes(mode, &call["boxes"], &ts), "{name}");
                eraser.apply_batch(input, &draws)
            };
            assert!(replay.log.next().is_none(), "{name} {k}: draws left over");
            assert_eq!(max_abs_diff(&out, expected), 0.0, "{name} {k}");
            checked += 1;
        }
    }
    assert_eq!(checked, 37);
}

fn cfg(mode: RandomErasingMode, prob: f64, count: [u32; 2]) -> RandomErasingConfig {
    RandomErasingConfig {
        enable: true,
        prob,
        mode,
        count: count.to_vec(),
        num_splits: 0,
        area_range: vec![0.02, 0.33],
        min_aspect: 0.3,
    }
}

fn clip() -> Tensor {
    Tensor::randn([3, 4, 64, 80], (Kind::Float, Device::Cpu))
}

#[test]
fn seeded_draws_are_deterministic() {
    let eraser = RandomErasing::new(cfg(RandomErasingMode::Pixel, 0.5, [1, 3])).unwrap();
    let draws = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..20)
            .map(|_| eraser.draw(3, 4, 64, 80, &mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(7), draws(7));
    assert_ne!(draws(7), draws(8));
}

#[test]
fn prob_zero_or_disabled_never_erases() {
    let x = clip();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let never = RandomErasing::new(cfg(RandomErasingMode::Rand, 0.0, [1, 3])).unwrap();
    let mut off = cfg(RandomErasingMode::Rand, 1.0, [1, 3]);
    off.enable = false;
    let off = RandomErasing::new(off).unwrap();
    for _ in 0..50 {
        for e in [&never, &off] {
            let d = e.draw(3, 4, 64, 80, &mut rng);
            assert!(!d.applied && d.boxes.is_empty());
            assert_eq!(max_abs_diff(&e.apply(&x, &d), &x), 0.0);
        }
    }
    let always = RandomErasing::new(cfg(RandomErasingMode::Const, 1.0, [1, 1])).unwrap();
    assert!((0..50).all(|_| always.draw(3, 4, 64, 80, &mut rng).applied));
}

#[test]
fn boxes_respect_count_area_and_aspect() {
    let (h, w) = (64, 80);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for mode in [
        RandomErasingMode::Const,
        RandomErasingMode::Rand,
        RandomErasingMode::Pixel,
    ] {
        let e = RandomErasing::new(cfg(mode, 1.0, [1, 3])).unwrap();
        let x = clip();
        let mut counts = [0; 4];
        for _ in 0..200 {
            let d = e.draw(3, 4, h, w, &mut rng);
            assert!((1..=3).contains(&d.count));
            counts[d.count as usize] += 1;
            assert!(d.boxes.len() <= d.count as usize);
            let share = (h * w) as f64 / d.count as f64;
            for b in &d.boxes {
                assert!(
                    b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w
                );
                assert!(b.height < h && b.width < w);
                // h = round(√(A·r)), w = round(√(A/r)): A and r within half a pixel.
                let (bh, bw) = (b.height as f64, b.width as f64);
                assert!((bh - 0.5) * (bw - 0.5) <= 0.33 * share + 1e-9);
                assert!((bh + 0.5) * (bw + 0.5) >= 0.02 * share - 1e-9);
                assert!((bh + 0.5) / (bw - 0.5).max(1e-9) >= 0.3);
                assert!((bh - 0.5) / (bw + 0.5) <= 1.0 / 0.3);
                let n = match &b.fill {
                    Fill::Zero => 0,
                    Fill::Channel(v) => v.len() as i64,
                    Fill::Pixel(v) => v.len() as i64,
                };
                let expected = match mode {
                    RandomErasingMode::Const => 0,
                    RandomErasingMode::Rand => 3,
                    RandomErasingMode::Pixel => 3 * 4 * b.height * b.width,
                };
                assert_eq!(n, expected);
            }
            // Outside the boxes the clip is unchanged; inside, the last box's fill.
            let out = e.apply(&x, &d);
            let mask = Tensor::zeros([h, w], (Kind::Bool, Device::Cpu));
            for b in &d.boxes {
                let _ = mask
                    .i((b.top..b.top + b.height, b.left..b.left + b.width))
                    .fill_(1);
            }
            let kept = mask.logical_not();
            assert_eq!(
                max_abs_diff(&out.masked_select(&kept), &x.masked_select(&kept)),
                0.0
            );
        }
        assert!(
            counts[1] > 0 && counts[2] > 0 && counts[3] > 0,
            "{counts:?}"
        );
    }
}

#[test]
fn batches_keep_the_clean_split() {
    let mut c = cfg(RandomErasingMode::Const, 1.0, [2, 2]);
    c.num_splits = 2;
    let e = RandomErasing::new(c).unwrap();
    let x = Tensor::ones([6, 3, 2, 16, 16], (Kind::Float, Device::Cpu));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let draws = e.draw_batch(6, 3, 2, 16, 16, &mut rng);
    assert!(draws[..3].iter().all(|d| !d.applied));
    assert!(draws[3..].iter().all(|d| d.applied && d.count == 2));
    let out = e.apply_batch(&x, &draws);
    assert_eq!(max_abs_diff(&out.i(..3), &x.i(..3)), 0.0);
    assert!(out.i(3..).min().double_value(&[]) == 0.0);
}

#[test]
fn bad_values_name_their_key() {
    let bad = |f: &dyn Fn(&mut RandomErasingConfig)| {
        let mut c = cfg(RandomErasingMode::Const, 0.25, [1, 1]);
        f(&mut c);
        RandomErasing::new(c).unwrap_err().to_string()
    };
    assert!(bad(&|c| c.prob = 1.5).contains("RANDOM_ERASING.PROB"));
    assert!(bad(&|c| c.count = vec![3, 1]).contains("RANDOM_ERASING.COUNT"));
    assert!(bad(&|c| c.count = vec![1]).contains("RANDOM_ERASING.COUNT"));
    assert!(bad(&|c| c.area_range = vec![0.5, 0.1]).contains("RANDOM_ERASING.AREA_RANGE"));
    assert!(bad(&|c| c.min_aspect = 0.0).contains("RANDOM_ERASING.MIN_ASPECT"));
}
