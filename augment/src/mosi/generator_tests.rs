//! The generator against the reference's deterministic (test-split) samples.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{IndexOp, Kind, Tensor};

use super::*;
use crate::mosi::{Axes, LabelMode, SpeedConfig};

fn fixture(name: &str) -> Vec<(String, Tensor)> {
    let path = format!(
        "{}/../tests/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn get<'a>(ts: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &ts.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .1
}

fn config(standardize: Option<Standardize>) -> GeneratorConfig {
    GeneratorConfig {
        speeds: SpeedConfig {
            num_classes: 5,
            decouple: true,
            axes: Axes::Xy,
            zero_out: false,
            label_mode: LabelMode::Joint,
        },
        num_frames: 8,
        crop_size: 48,
        standardize,
        distance_jitter: [1.0, 1.0],
        static_mask: None,
        mean: [0.45; 3],
        std: [0.225; 3],
        color: None,
        flip: FlipMode::Image,
    }
}

fn check(name: &str, standardize: Option<Standardize>, atol: f64) {
    let ts = fixture(name);
    let image = get(&ts, "__input__").get(0);
    let gen = MosiGenerator::new(config(standardize)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let out = gen.generate(&image, Split::Test, &mut rng).unwrap();
    let want_traj = get(&ts, "__out_trajectory_xy__");
    assert_eq!(out.trajectories.size(), want_traj.size());
    assert!(
        out.trajectories.equal(want_traj),
        "{name}: trajectories differ"
    );
    let want = get(&ts, "__output__");
    assert_eq!(out.clips.size(), want.size());
    let diff = (&out.clips - want).abs().max().double_value(&[]);
    println!("{name}: max |diff| = {diff:e}");
    assert!(diff <= atol, "{name}: max |diff| {diff} > {atol}");
    let labels = get(&ts, "__out_label_move_joint__");
    let ours = Tensor::from_slice(&(0..gen.speed_set().len() as i64).collect::<Vec<_>>());
    assert!(labels.to_kind(Kind::Int64).equal(&ours));
}

#[test]
fn reproduces_plain_test_sample() {
    check("mosi_sample_test_plain", None, 1e-6);
}

#[test]
fn reproduces_standardized_test_sample() {
    let st = Standardize {
        resize: [80, 80],
        crop: 80,
        aspect_ratio: [1.0, 1.0],
    };
    check("mosi_sample_test_standardize", Some(st), 1e-6);
}

#[test]
fn train_split_starts_stay_in_range_and_are_seeded() {
    let gen = MosiGenerator::new(config(None)).unwrap();
    let image = Tensor::zeros([72, 96, 3], (Kind::Uint8, tch::Device::Cpu));
    let a = gen
        .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(3))
        .unwrap();
    let b = gen
        .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(3))
        .unwrap();
    assert!(
        a.trajectories.equal(&b.trajectories),
        "same seed, same sample"
    );
    let xs = a.trajectories.select(2, 0);
    let ys = a.trajectories.select(2, 1);
    assert!(xs.min().int64_value(&[]) >= 0 && xs.max().int64_value(&[]) <= 96 - 48);
    assert!(ys.min().int64_value(&[]) >= 0 && ys.max().int64_value(&[]) <= 72 - 48);
}

#[test]
fn too_small_image_is_an_error() {
    let gen = MosiGenerator::new(config(None)).unwrap();
    let image = Tensor::zeros([40, 96, 3], (Kind::Uint8, tch::Device::Cpu));
    let e = gen
        .generate(&image, Split::Test, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap_err();
    assert!(e.to_string().contains("TRAIN_CROP_SIZE"), "{e}");
}

/// Horizontal shift of content between the first and last frame of a `(3, T, S, S)` clip:
/// the `delta` minimising the error of `last[x] = first[x + delta]` (positive: the window moved
/// right, i.e. the content moved left).
fn content_shift(clip: &Tensor) -> i64 {
    let t = clip.size()[1];
    let s = clip.size()[3];
    let (first, last) = (clip.select(1, 0), clip.select(1, t - 1));
    (-(s / 2)..=s / 2)
        .map(|d| {
            let n = s - d.abs();
            let (a, b) = if d >= 0 {
                (last.narrow(2, 0, n), first.narrow(2, d, n))
            } else {
                (last.narrow(2, -d, n), first.narrow(2, 0, n))
            };
            ((a - b).square().mean(Kind::Float).double_value(&[]), d)
        })
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, d)| d)
        .unwrap_or(0)
}

/// With the default flip mode every clip moves the way its label says, mirrored image or not;
/// the reference mode reverses the motion of some clips without changing their labels.
#[test]
fn image_flip_keeps_motion_consistent_with_label() {
    // Columns of pseudo-random grey levels: any shift is recognisable.
    let cols: Vec<u8> = (0..96u32)
        .map(|x| ((x * x * 7 + x * 13) % 251) as u8)
        .collect();
    let image = Tensor::from_slice(&cols)
        .view([1, 96, 1])
        .expand([72, 96, 3], false)
        .contiguous();
    let shifts = |flip: FlipMode| -> Vec<i64> {
        let mut cfg = config(None);
        cfg.flip = flip;
        let gen = MosiGenerator::new(cfg).unwrap();
        (0..16)
            .map(|seed| {
                let out = gen
                    .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(seed))
                    .unwrap();
                // Clip 2 has speed [1, 0]: the window moves right by half the free width.
                content_shift(&out.clips.get(2))
            })
            .collect()
    };
    assert!(shifts(FlipMode::Off).iter().all(|&d| d > 0));
    let image_mode = shifts(FlipMode::Image);
    assert!(
        image_mode.iter().all(|&d| d > 0),
        "label 'right' must mean moving right: {image_mode:?}"
    );
    // The image mode really mirrors: some first frames are not crops of the unmirrored image.
    let gen = MosiGenerator::new(config(None)).unwrap();
    let mirrored = (0..16)
        .filter(|&seed| {
            let out = gen
                .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(seed))
                .unwrap();
            let x0 = out.trajectories.get(2).get(0).get(0).int64_value(&[]);
            let y0 = out.trajectories.get(2).get(0).get(1).int64_value(&[]);
            let crop = image
                .i((y0..y0 + 48, x0..x0 + 48, ..))
                .permute([2, 0, 1])
                .to_kind(Kind::Float)
                / 255.0;
            let crop = (crop - 0.45) / 0.225;
            (out.clips.get(2).select(1, 0) - crop)
                .abs()
                .max()
                .double_value(&[])
                > 1e-4
        })
        .count();
    assert!(
        mirrored > 0 && mirrored < 16,
        "about half the clips come from the mirrored image: {mirrored}/16"
    );
    let reference = shifts(FlipMode::Reference);
    assert!(
        reference.iter().any(|&d| d < 0),
        "reference mode mirrors some clips: {reference:?}"
    );
}
