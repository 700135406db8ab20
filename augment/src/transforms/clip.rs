//! The per-clip pipeline for video training and testing (docs/transforms.md#the-clip-pipeline):
//! uint8 `(T, H, W, 3)` frames in, a normalised float `(3, T, S, S)` clip out.

use rand::Rng;
use tch::Tensor;

use super::color::{color_jitter, ColorJitterConfig};
use super::rand_augment::{RandAugment, RandAugmentError};
use super::random_erasing::RandomErasing;
use super::spatial::{
    hflip, normalize, random_resized_crop, random_short_side_crop, test_crop, to_float_cthw,
};

/// Settings of the clip pipeline (DATA and AUGMENTATION keys).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// DATA.TRAIN_JITTER_SCALES: a short-side range when its low end is > 1, else an area range
    /// for RandomResizedCrop.
    pub train_jitter_scales: [f64; 2],
    pub train_crop_size: i64,
    pub test_scale: i64,
    pub test_crop_size: i64,
    /// AUGMENTATION.RATIO for RandomResizedCrop.
    pub ratio: [f64; 2],
    pub color: Option<ColorJitterConfig>,
    pub flip: bool,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// AUGMENTATION.AUTOAUGMENT (RandAugment) when enabled: training clips, after the crop.
    pub rand_augment: Option<RandAugment>,
    /// AUGMENTATION.RANDOM_ERASING when enabled: training clips, after normalising.
    pub erasing: Option<RandomErasing>,
}

/// How a clip is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipView {
    Train,
    /// Spatial view `index` of `count` (1 or 3).
    Test {
        index: usize,
        count: usize,
    },
}

/// A clip out of the pipeline.
#[derive(Debug)]
pub struct TransformedClip {
    /// `(3, T, S, S)`, normalised.
    pub clip: Tensor,
    /// Whether the clip was mirrored left to right (SSv2's left/right classes swap then).
    pub flipped: bool,
}

/// Applies the pipeline to one clip: train = flip, crop, RandAugment, colour jitter, normalise,
/// random erasing (the reference's order); test = crop, normalise.
pub fn transform_clip(
    frames: &Tensor,
    cfg: &ClipConfig,
    view: ClipView,
    rng: &mut impl Rng,
) -> Result<TransformedClip, RandAugmentError> {
    let x = to_float_cthw(frames);
    let mut flipped = false;
    let x = match view {
        ClipView::Train => {
            flipped = cfg.flip && rng.random::<f64>() < 0.5;
            let x = if flipped { hflip(&x) } else { x };
            let [a, b] = cfg.train_jitter_scales;
            let x = if a > 1.0 {
                random_short_side_crop(&x, a, b, cfg.train_crop_size, rng)
            } else {
                random_resized_crop(&x, [a, b], cfg.ratio, cfg.train_crop_size, rng)
            };
            let x = match &cfg.rand_augment {
                Some(ra) => ra.augment(&x, rng)?,
                None => x,
            };
            match &cfg.color {
                Some(c) => color_jitter(&x, c, rng),
                None => x,
            }
        }
        ClipView::Test { index, count } => {
            test_crop(&x, cfg.test_scale, cfg.test_crop_size, index, count)
        }
    };
    let x = normalize(&x, cfg.mean, cfg.std);
    let clip = match (&cfg.erasing, view) {
        // (3, T, S, S): the same boxes on every frame.
        (Some(e), ClipView::Train) => e.erase(x, rng),
        _ => x,
    };
    Ok(TransformedClip { clip, flipped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::{Device, Kind};

    fn cfg() -> ClipConfig {
        ClipConfig {
            train_jitter_scales: [40.0, 56.0],
            train_crop_size: 32,
            test_scale: 40,
            test_crop_size: 32,
            ratio: [0.75, 1.333],
            color: None,
            flip: true,
            mean: [0.45; 3],
            std: [0.225; 3],
            rand_augment: None,
            erasing: None,
        }
    }

    #[test]
    fn train_and_test_clips_have_the_configured_shape_and_are_seeded() {
        let frames = Tensor::randint(255, [4, 60, 80, 3], (Kind::Uint8, Device::Cpu));
        let a = transform_clip(
            &frames,
            &cfg(),
            ClipView::Train,
            &mut ChaCha8Rng::seed_from_u64(5),
        )
        .unwrap()
        .clip;
        let b = transform_clip(
            &frames,
            &cfg(),
            ClipView::Train,
            &mut ChaCha8Rng::seed_from_u64(5),
        )
        .unwrap()
        .clip;
        assert_eq!(a.size(), vec![3, 4, 32, 32]);
        assert!(a.equal(&b), "same seed, same clip");
        let mut rrc = cfg();
        rrc.train_jitter_scales = [0.3, 0.6];
        assert_eq!(
            transform_clip(
                &frames,
                &rrc,
                ClipView::Train,
                &mut ChaCha8Rng::seed_from_u64(0)
            )
            .unwrap()
            .clip
            .size(),
            vec![3, 4, 32, 32]
        );
        let t = transform_clip(
            &frames,
            &cfg(),
            ClipView::Test { index: 2, count: 3 },
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap()
        .clip;
        assert_eq!(t.size(), vec![3, 4, 32, 32]);
        // Normalised: a mid-grey input maps near (0.5 - 0.45) / 0.225.
        let grey = Tensor::full([2, 40, 40, 3], 128, (Kind::Uint8, Device::Cpu));
        let g = transform_clip(
            &grey,
            &cfg(),
            ClipView::Test { index: 0, count: 1 },
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap()
        .clip;
        assert!(
            (g.mean(Kind::Float).double_value(&[]) - (128.0 / 255.0 - 0.45) / 0.225).abs() < 1e-4
        );
    }
}
