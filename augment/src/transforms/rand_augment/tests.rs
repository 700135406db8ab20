//! Spec parsing, the draw's determinism and distribution, and the cases the golden tensors
//! cannot pin (tests/rand_augment.rs compares with the reference).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::*;

const MEAN: [f64; 3] = [0.45, 0.45, 0.45];

#[test]
fn parses_the_tadaconv_spec() {
    let ra = RandAugment::parse("rand-m9-n4-mstd0.5-inc1", 224, MEAN).unwrap();
    assert_eq!(ra.ops, RAND_INCREASING_OPS.to_vec());
    assert_eq!(ra.num_layers, 4);
    assert_eq!(ra.magnitude, 9.0);
    assert_eq!(ra.noise, MagnitudeNoise::Gauss(0.5));
    assert_eq!(ra.magnitude_max, 10.0);
    assert_eq!(ra.weights, None);
    // round(255 * 0.45) = round(114.75) = 115.
    assert_eq!(ra.fill, [115; 3]);
    assert_eq!(ra.resample, Resample::Bicubic);
}

#[test]
fn parses_every_section_as_the_reference() {
    let ra = RandAugment::parse("rand", 224, [0.0, 0.5, 1.0]).unwrap();
    assert_eq!(
        (ra.ops.clone(), ra.num_layers, ra.magnitude),
        (RAND_OPS.to_vec(), 2, 10.0)
    );
    // 127.5 rounds half to even.
    assert_eq!(ra.fill, [0, 128, 255]);
    let ra = RandAugment::parse("rand-m7-n3-mstd101-inc1", 224, MEAN).unwrap();
    assert_eq!(ra.noise, MagnitudeNoise::Uniform);
    // mstd and mmax keep their first value, m and n their last; mmax0 means 10.
    let ra = RandAugment::parse("rand-mstd0.2-mstd3-m5-m6-mmax0-mmax20", 224, MEAN).unwrap();
    assert_eq!(ra.noise, MagnitudeNoise::Gauss(0.2));
    assert_eq!(ra.magnitude, 6.0);
    assert_eq!(ra.magnitude_max, 10.0);
    let ra = RandAugment::parse("rand-mmax15-mmax20-mstd0", 224, MEAN).unwrap();
    assert_eq!(ra.magnitude_max, 15.0);
    assert_eq!(ra.noise, MagnitudeNoise::Fixed);
    // The reference tests the string "0" for truth: inc0 selects the increasing list too.
    let ra = RandAugment::parse("rand-inc0", 224, MEAN).unwrap();
    assert_eq!(ra.ops, RAND_INCREASING_OPS.to_vec());
    // A section without a digit is skipped.
    let ra = RandAugment::parse("rand-inc-m3-foo", 224, MEAN).unwrap();
    assert_eq!((ra.ops, ra.magnitude), (RAND_OPS.to_vec(), 3.0));
    let ra = RandAugment::parse("rand-n13-w0", 224, MEAN).unwrap();
    assert_eq!(ra.weights.as_deref(), Some(&CHOICE_WEIGHTS_0[..]));
}

#[test]
fn refuses_bad_specs_in_one_line() {
    for (spec, want) in [
        ("augmix-m3", "does not start with \"rand\""),
        ("rand-x9", "unknown RandAugment config section \"x9\""),
        ("rand-m9-7", "unknown RandAugment config section \"7\""),
        ("rand-m9.5", "section \"m9.5\""),
        ("rand-mstd0.5x", "section \"mstd0.5x\""),
        ("rand-w1", "weight set 1"),
        ("rand-n14-w0", "chooses 14 ops without replacement from 13"),
    ] {
        let err = RandAugment::parse(spec, 224, MEAN).unwrap_err().to_string();
        assert!(err.contains(want), "{spec}: {err}");
        assert!(err.contains(spec) && !err.contains('\n'), "{spec}: {err}");
    }
}

#[test]
fn draw_is_deterministic_per_seed() {
    let ra = RandAugment::parse("rand-m9-n4-mstd0.5-inc1", 224, MEAN).unwrap();
    let a = ra.draw(&mut ChaCha8Rng::seed_from_u64(7));
    let b = ra.draw(&mut ChaCha8Rng::seed_from_u64(7));
    let c = ra.draw(&mut ChaCha8Rng::seed_from_u64(8));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.layers.len(), 4);
}

#[test]
fn draw_has_the_reference_distribution() {
    let ra = RandAugment::parse("rand-m9-n4-mstd0.5-inc1", 224, MEAN).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let clips = 20_000;
    let mut count = [0usize; 15];
    let (mut fired, mut negated, mut signed, mut clipped) = (0usize, 0usize, 0usize, 0usize);
    let (mut sum, mut sum2, mut unclipped) = (0.0, 0.0, 0usize);
    let mut repeats = 0usize;
    for _ in 0..clips {
        let d = ra.draw(&mut rng);
        let ops: Vec<OpKind> = d.layers.iter().map(|l| l.op).collect();
        // With replacement: some clips repeat an op (1 - 15·14·13·12/15^4 = 0.353).
        if (1..4).any(|i| ops[..i].contains(&ops[i])) {
            repeats += 1;
        }
        for l in &d.layers {
            count[RAND_INCREASING_OPS.iter().position(|&o| o == l.op).unwrap()] += 1;
            assert!(l.resample == Resample::Bicubic);
            if !l.fired {
                assert!(!l.negate);
                continue;
            }
            fired += 1;
            assert!((0.0..=10.0).contains(&l.magnitude), "{l:?}");
            if l.magnitude == 10.0 {
                clipped += 1;
            } else if l.magnitude > 0.0 {
                sum += l.magnitude;
                sum2 += l.magnitude * l.magnitude;
                unclipped += 1;
            }
            if l.op.signed() {
                signed += 1;
                negated += usize::from(l.negate);
            } else {
                assert!(!l.negate);
            }
        }
    }
    let layers = (clips * 4) as f64;
    for c in count {
        // Uniform over 15 ops: 5333 expected, sd 71.
        assert!((c as f64 - layers / 15.0).abs() < 400.0, "{count:?}");
    }
    assert!(
        (repeats as f64 / clips as f64 - 0.353).abs() < 0.02,
        "{repeats}"
    );
    assert!((fired as f64 / layers - 0.5).abs() < 0.01, "{fired}");
    assert!(
        (negated as f64 / signed as f64 - 0.5).abs() < 0.02,
        "{negated}/{signed}"
    );
    // gauss(9, 0.5) clipped at 10: P(> 10) = 0.0228; the rest (almost) N(9, 0.5) cut at 10.
    assert!(
        (clipped as f64 / fired as f64 - 0.0228).abs() < 0.006,
        "{clipped}"
    );
    let mean = sum / unclipped as f64;
    let sd = (sum2 / unclipped as f64 - mean * mean).sqrt();
    // The normal cut above 10 (2 sd): mean 9 - 0.5·φ(2)/Φ(2) = 8.9724, sd 0.4771.
    assert!((mean - 8.9724).abs() < 0.01, "{mean}");
    assert!((sd - 0.4771).abs() < 0.01, "{sd}");
}

#[test]
fn uniform_magnitude_and_weighted_choice() {
    let ra = RandAugment::parse("rand-m7-n3-mstd101", 224, MEAN).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let m: Vec<f64> = (0..20_000)
        .flat_map(|_| ra.draw(&mut rng).layers)
        .filter(|l| l.fired)
        .map(|l| l.magnitude)
        .collect();
    assert!(m.iter().all(|&v| (0.0..7.0).contains(&v)));
    let mean = m.iter().sum::<f64>() / m.len() as f64;
    assert!((mean - 3.5).abs() < 0.05, "{mean}");

    let ra = RandAugment::parse("rand-m9-n3-w0", 224, MEAN).unwrap();
    let mut first = [0usize; 15];
    for _ in 0..20_000 {
        let d = ra.draw(&mut rng);
        let idx: Vec<usize> = d
            .layers
            .iter()
            .map(|l| RAND_OPS.iter().position(|&o| o == l.op).unwrap())
            .collect();
        assert!(idx[0] != idx[1] && idx[0] != idx[2] && idx[1] != idx[2]);
        assert!(idx.iter().all(|&i| CHOICE_WEIGHTS_0[i] > 0.0));
        first[idx[0]] += 1;
    }
    // The first pick follows the weights: Rotate 0.3, ShearX 0.2.
    assert!(
        (first[3] as f64 / 20_000.0 - 0.3).abs() < 0.015,
        "{first:?}"
    );
    assert!(
        (first[11] as f64 / 20_000.0 - 0.2).abs() < 0.015,
        "{first:?}"
    );
}

#[test]
fn magnitude_above_ten_with_mmax() {
    let ra = RandAugment::parse("rand-m14-n2-mstd1-mmax15", 224, MEAN).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let m: Vec<f64> = (0..5_000)
        .flat_map(|_| ra.draw(&mut rng).layers)
        .filter(|l| l.fired)
        .map(|l| l.magnitude)
        .collect();
    assert!(m.iter().all(|&v| (0.0..=15.0).contains(&v)));
    assert!(m.iter().any(|&v| v > 10.0) && m.contains(&15.0));
}

fn layer(op: OpKind, magnitude: f64) -> LayerDraw {
    LayerDraw {
        op,
        fired: true,
        magnitude,
        negate: false,
        resample: Resample::Bicubic,
    }
}

/// Pillow 13 refuses posterize to 0 bits (the reference raises); earlier Pillow gave black.
#[test]
fn posterize_to_no_bits_is_black() {
    let ra = RandAugment::parse("rand", 8, MEAN).unwrap();
    let x = Tensor::rand([3, 2, 5, 6], (Kind::Float, Device::Cpu));
    for (op, m) in [
        (OpKind::PosterizeIncreasing, 10.0),
        (OpKind::PosterizeIncreasing, 14.0),
        (OpKind::Posterize, 2.4),
    ] {
        let l = layer(op, m);
        assert!(matches!(l.level_arg(), LevelArg::Int(b) if b <= 0));
        let draw = RandAugmentDraw { layers: vec![l] };
        let y = ra.apply(&x, &draw).unwrap();
        assert_eq!(y.abs().max().double_value(&[]), 0.0);
    }
}

/// Unfired ops, empty clips and the float round trip: `apply` without a fired op is the
/// truncation to levels and nothing else.
#[test]
fn unfired_ops_only_truncate() {
    let ra = RandAugment::parse("rand", 8, MEAN).unwrap();
    let x = Tensor::rand([3, 2, 5, 6], (Kind::Float, Device::Cpu));
    let mut l = layer(OpKind::Rotate, 9.0);
    l.fired = false;
    let draw = RandAugmentDraw { layers: vec![l] };
    let y = ra.apply(&x, &draw).unwrap();
    let want = (&x * 255.0).trunc() / 255.0;
    assert_eq!((&y - &want).abs().max().double_value(&[]), 0.0);
    let empty = Tensor::zeros([3, 0, 4, 4], (Kind::Float, Device::Cpu));
    let draw = RandAugment::parse("rand-n4", 4, MEAN)
        .unwrap()
        .draw(&mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!(ra.apply(&empty, &draw).unwrap().size(), vec![3, 0, 4, 4]);
    let bad = Tensor::zeros([4, 2, 4, 4], (Kind::Float, Device::Cpu));
    assert!(matches!(
        ra.apply(&bad, &draw),
        Err(RandAugmentError::BadClip(_))
    ));
}

#[test]
fn op_names_round_trip() {
    for op in OpKind::ALL {
        assert_eq!(OpKind::from_name(op.name()), Some(op));
    }
    assert_eq!(OpKind::from_name("Cutout"), None);
}
