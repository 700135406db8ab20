//! The batched MoSI generator against the clip-by-clip tensor pipeline it replaced
//! ([`mosi_legacy::Legacy`]): the same clips to the bit, the same trajectories and the same RNG
//! use, over a sweep of every generator switch and at the full recipe's size.

mod mosi_legacy;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tada_augment::mosi::{
    Axes, FlipMode, GeneratorConfig, LabelMode, MosiGenerator, SpeedConfig, Split, Standardize,
};
use tada_augment::transforms::color::ColorJitterConfig;
use tch::{Device, Kind, Tensor};

use mosi_legacy::Legacy;

fn color(color_p: f64, consistent: bool, gray_first: bool) -> ColorJitterConfig {
    ColorJitterConfig {
        brightness: 0.5,
        contrast: 0.5,
        saturation: 0.5,
        hue: 0.25,
        color_p,
        grayscale: 0.3,
        consistent,
        shuffle: true,
        gray_first,
    }
}

/// Configuration number `i` of a sweep over every switch the generator has.
fn config(i: usize) -> GeneratorConfig {
    let standardize = match i % 3 {
        0 => None,
        1 => Some(Standardize {
            resize: [64, 64],
            crop: 64,
            aspect_ratio: [1.0, 1.0],
        }),
        _ => Some(Standardize {
            resize: [60, 72],
            crop: 56,
            aspect_ratio: [0.75, 1.33],
        }),
    };
    let color = match (i / 3) % 4 {
        0 => None,
        1 => Some(color(0.0, true, true)),
        2 => Some(color(1.0, false, true)),
        _ => Some(color(0.5, true, false)),
    };
    let flip = [FlipMode::Image, FlipMode::Reference, FlipMode::Off][(i / 12) % 3];
    let static_mask = [Some([0.3, 0.5]), None, Some([0.2, 1.0])][(i / 36) % 3];
    GeneratorConfig {
        speeds: SpeedConfig {
            num_classes: if i % 2 == 0 { 5 } else { 3 },
            decouple: i % 5 != 0,
            axes: Axes::Xy,
            zero_out: false,
            label_mode: LabelMode::Joint,
        },
        num_frames: if i % 2 == 0 { 8 } else { 5 },
        crop_size: 24 + 4 * (i % 3),
        standardize,
        distance_jitter: if i % 4 == 0 { [1.0, 1.0] } else { [0.5, 1.0] },
        static_mask,
        mean: [0.45, 0.4, 0.35],
        std: [0.225, 0.25, 0.2],
        color,
        flip,
    }
}

/// The batched generator against the clip-by-clip tensor pipeline: same clips to the bit,
/// same trajectories, and the RNG left in the same state, over 108 configurations x 3 splits
/// and contiguous as well as strided input images.
#[test]
fn fast_path_matches_legacy_bit_for_bit() {
    let splits = [Split::Train, Split::Val, Split::Test];
    for i in 0..108 {
        let cfg = config(i);
        let gen = MosiGenerator::new(cfg.clone()).unwrap();
        let legacy = Legacy {
            gen: &gen,
            cfg: &cfg,
        };
        tch::manual_seed(i as i64);
        let (h, w) = ([48, 70, 61][i % 3], [64, 52, 77][(i / 3) % 3]);
        let image = if i % 2 == 0 {
            Tensor::randint(256, [h, w, 3], (Kind::Uint8, Device::Cpu))
        } else {
            // (3, H, W) storage seen as (H, W, 3): a strided image.
            Tensor::randint(256, [3, h, w], (Kind::Uint8, Device::Cpu)).permute([1, 2, 0])
        };
        for (j, &split) in splits.iter().enumerate() {
            let seed = (i * 3 + j) as u64;
            let mut rng_new = ChaCha8Rng::seed_from_u64(seed);
            let mut rng_old = ChaCha8Rng::seed_from_u64(seed);
            let new = gen.generate(&image, split, &mut rng_new);
            let old = legacy.generate(&image, split, &mut rng_old);
            let (new, old) = match (new, old) {
                (Ok(n), Ok(o)) => (n, o),
                (Err(a), Err(b)) => {
                    assert_eq!(a, b, "config {i} {split:?}");
                    continue;
                }
                (n, o) => panic!("config {i} {split:?}: {:?} vs {:?}", n.err(), o.err()),
            };
            assert_eq!(new.clips.size(), old.clips.size(), "config {i} {split:?}");
            assert!(
                new.trajectories.equal(&old.trajectories),
                "config {i} {split:?}: trajectories"
            );
            let same = new.clips.eq_tensor(&old.clips).all().int64_value(&[]) == 1;
            assert!(
                same,
                "config {i} {split:?}: max |diff| {}",
                (&new.clips - &old.clips).abs().max().double_value(&[])
            );
            assert_eq!(
                rng_new.random::<u64>(),
                rng_old.random::<u64>(),
                "config {i} {split:?}: RNG consumed differently"
            );
        }
    }
}

/// The full MoSI recipe as `tada bench data` runs it (240x320 image, short side to 320, 9
/// clips of 16x112x112, static mask), with the reference's grayscale-only jitter and with
/// full per-frame jitter, in both flip modes.
#[test]
fn recipe_sized_samples_match_legacy_bit_for_bit() {
    tch::manual_seed(7);
    let image = Tensor::randint(256, [240, 320, 3], (Kind::Uint8, Device::Cpu));
    for (i, (color_p, flip)) in [
        (0.0, FlipMode::Image),
        (1.0, FlipMode::Image),
        (0.0, FlipMode::Reference),
        (1.0, FlipMode::Reference),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = GeneratorConfig {
            speeds: SpeedConfig::default(),
            num_frames: 16,
            crop_size: 112,
            standardize: Some(Standardize {
                resize: [320, 320],
                crop: 320,
                aspect_ratio: [1.0, 1.0],
            }),
            distance_jitter: [1.0, 1.0],
            static_mask: Some([0.3, 0.5]),
            mean: [0.45; 3],
            std: [0.225; 3],
            color: Some(color(color_p, false, true)),
            flip,
        };
        let gen = MosiGenerator::new(cfg.clone()).unwrap();
        let legacy = Legacy {
            gen: &gen,
            cfg: &cfg,
        };
        let seed = 100 + i as u64;
        let new = gen
            .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap();
        let old = legacy
            .generate(&image, Split::Train, &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap();
        assert_eq!(new.clips.size(), [9, 3, 16, 112, 112]);
        assert!(new.trajectories.equal(&old.trajectories), "case {i}");
        let same = new.clips.eq_tensor(&old.clips).all().int64_value(&[]) == 1;
        assert!(same, "case {i}: clips differ");
    }
}
