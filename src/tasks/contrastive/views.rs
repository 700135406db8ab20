//! The two views of a contrastive step: cubes (learned by ParamCrop or drawn at random), the
//! trilinear crop, and the per-view augmentation that follows it on the device
//! (docs/paramcrop.md#contrastive-pretraining-with-paramcrop).

use rand::Rng;
use tada_augment::paramcrop::cube::crop_with_theta;
use tada_augment::paramcrop::{centre_distance, iou, Cube, ParamCropError};
use tada_augment::transforms::color::{color_jitter, ColorJitterConfig};
use tada_augment::transforms::spatial::normalize;
use tch::{Device, Kind, Tensor};

use crate::config::schema::GrlSchedule;

/// What happens to a view after it is cut.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewConfig {
    /// `[T, H, W]` of every view (DATA.NUM_INPUT_FRAMES, DATA.TRAIN_CROP_SIZE²).
    pub out: [i64; 3],
    /// Random horizontal flip per view (PRETRAIN.CONTRASTIVE.VIEW_FLIP).
    pub flip: bool,
    /// AUGMENTATION colour jitter per view, or none.
    pub color: Option<ColorJitterConfig>,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl ViewConfig {
    /// The views of `cfg`: DATA's clip size and normalisation, AUGMENTATION's colour jitter,
    /// PRETRAIN.CONTRASTIVE.VIEW_FLIP.
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        let d = &cfg.data;
        let (t, s) = (d.num_input_frames as i64, d.train_crop_size as i64);
        Self {
            out: [t, s, s],
            flip: cfg.pretrain.contrastive.view_flip,
            color: crate::data::sources::video_clips::color_config(&cfg.augmentation),
            mean: crate::data::sources::video_clips::triple(&d.mean),
            std: crate::data::sources::video_clips::triple(&d.std),
        }
    }
}

/// Gradient-reversal strength at training progress `p` in [0, 1].
pub fn grl_lambda(schedule: GrlSchedule, lambda_max: f64, gamma: f64, p: f64) -> f64 {
    match schedule {
        GrlSchedule::Constant => lambda_max,
        GrlSchedule::Dann => lambda_max * (2.0 / (1.0 + (-gamma * p).exp()) - 1.0),
    }
}

/// Cuts cube `theta` out of every source clip and augments the result.
///
/// # Shapes
/// `source`: `(B, 3, T_in, H_in, W_in)` in [0, 1]; `theta`: `(B, 3, 4)` -> `(B, 3, T, H, W)`
/// normalised.
pub fn cut_view(
    source: &Tensor,
    theta: &Tensor,
    cfg: &ViewConfig,
    rng: &mut impl Rng,
) -> Result<Tensor, ParamCropError> {
    let v = crop_with_theta(source, theta, cfg.out)?;
    let b = v.size()[0];
    let v = if cfg.flip {
        let flips: Vec<bool> = (0..b).map(|_| rng.random::<f64>() < 0.5).collect();
        // (B) -> (B, 1, 1, 1, 1) to select whole clips.
        let mask = Tensor::from_slice(&flips)
            .to_device(v.device())
            .view([b, 1, 1, 1, 1]);
        v.flip([4]).where_self(&mask, &v)
    } else {
        v
    };
    let v = match &cfg.color {
        Some(c) => {
            let clips: Vec<Tensor> = (0..b).map(|i| color_jitter(&v.get(i), c, rng)).collect();
            Tensor::stack(&clips, 0)
        }
        None => v,
    };
    // normalize takes (3, T, H, W); (B, 3, T, H, W) -> (3, B·T, H, W) and back.
    let s = v.size();
    let flat = v.transpose(0, 1).reshape([3, -1, s[3], s[4]]);
    let flat = normalize(&flat, cfg.mean, cfg.std);
    // (3, B·T, H, W) -> (B, 3, T, H, W)
    Ok(flat.reshape([3, s[0], s[2], s[3], s[4]]).transpose(0, 1))
}

/// Means over the batch of how the two views relate (docs/paramcrop.md#view-overlap-metrics), as
/// metrics.
pub fn overlap_metrics(a: &Cube, b: &Cube) -> Vec<(String, f64)> {
    tch::no_grad(|| {
        let o = iou(a, b);
        let mean = |t: &Tensor| t.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        let side = |c: &Cube, axis: i64| mean(&c.scale.select(1, axis));
        vec![
            ("iou".into(), mean(&o.iou)),
            ("iou_spatial".into(), mean(&o.spatial)),
            ("iou_temporal".into(), mean(&o.temporal)),
            ("centre_distance".into(), mean(&centre_distance(a, b))),
            (
                "scale_spatial".into(),
                (side(a, 0) + side(a, 1) + side(b, 0) + side(b, 1)) / 4.0,
            ),
            ("scale_temporal".into(), (side(a, 2) + side(b, 2)) / 2.0),
        ]
    })
}

/// A seed for the step's view RNG drawn from libtorch's generator, which the trainer seeds per
/// step: the views of a resumed run are the ones the uninterrupted run drew.
pub fn step_rng_seed() -> u64 {
    let t = Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu));
    t.int64_value(&[0]) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn identity_theta(b: i64) -> Tensor {
        // (3, 4) [I | 0] repeated: the whole source.
        let eye = Tensor::eye(3, (Kind::Float, Device::Cpu));
        let t = Tensor::cat(&[eye, Tensor::zeros([3, 1], (Kind::Float, Device::Cpu))], 1);
        t.unsqueeze(0).repeat([b, 1, 1])
    }

    #[test]
    fn dann_ramp_starts_at_zero_and_approaches_the_maximum() {
        assert_eq!(grl_lambda(GrlSchedule::Dann, 1.0, 10.0, 0.0), 0.0);
        let end = grl_lambda(GrlSchedule::Dann, 2.0, 10.0, 1.0);
        assert!((end - 2.0).abs() < 1e-3, "{end}");
        let mid = grl_lambda(GrlSchedule::Dann, 1.0, 10.0, 0.1);
        assert!(mid > 0.4 && mid < 0.5, "{mid}");
        assert_eq!(grl_lambda(GrlSchedule::Constant, 0.7, 10.0, 0.0), 0.7);
    }

    #[test]
    fn identity_cube_view_is_the_normalised_source_and_flip_mirrors_whole_clips() {
        let source = Tensor::rand([4, 3, 4, 8, 8], (Kind::Float, Device::Cpu));
        let mut cfg = ViewConfig {
            out: [4, 8, 8],
            flip: false,
            color: None,
            mean: [0.5, 0.4, 0.3],
            std: [0.2, 0.25, 0.3],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let v = cut_view(&source, &identity_theta(4), &cfg, &mut rng).unwrap();
        assert_eq!(v.size(), [4, 3, 4, 8, 8]);
        let want: Vec<Tensor> = (0..4)
            .map(|i| normalize(&source.get(i), cfg.mean, cfg.std))
            .collect();
        let want = Tensor::stack(&want, 0);
        assert!((&v - &want).abs().max().double_value(&[]) < 1e-5);

        cfg.flip = true;
        let f = cut_view(&source, &identity_theta(4), &cfg, &mut rng).unwrap();
        let mut flipped = 0;
        for i in 0..4 {
            let same = (f.get(i) - want.get(i)).abs().max().double_value(&[]) < 1e-5;
            let mirrored = (f.get(i) - want.get(i).flip([3]))
                .abs()
                .max()
                .double_value(&[])
                < 1e-5;
            assert!(same || mirrored, "clip {i} is the source or its mirror");
            flipped += usize::from(mirrored && !same);
        }
        println!("{flipped} of 4 clips mirrored");
    }
}
