//! The generator against the reference's deterministic (test-split) samples.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::*;
use crate::mosi::{Axes, LabelMode, SpeedConfig};

fn fixture(name: &str) -> Vec<(String, Tensor)> {
    let path = format!(
        "{}/../../shared/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    Tensor::read_safetensors(&path).expect("../shared/fixtures beside the checkout")
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
