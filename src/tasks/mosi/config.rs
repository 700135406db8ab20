//! Wiring tada's config onto the MoSI generator of the augment crate.

use tada_augment::mosi::{self as gen, GeneratorConfig, SpeedConfig, Standardize};

use crate::config::schema::{DataMode, FlipMode, LabelMode, StandardSize};
use crate::config::Config;

/// A MoSI setting tada cannot turn into a generator.
#[derive(Debug, thiserror::Error)]
pub enum MosiConfigError {
    #[error(transparent)]
    Mosi(#[from] gen::MosiError),
    #[error(transparent)]
    Key(#[from] crate::config::KeyError),
}

fn three(v: &[f64], key: &'static str) -> Result<[f64; 3], MosiConfigError> {
    <[f64; 3]>::try_from(v).map_err(|_| {
        crate::config::KeyError::invalid(
            key,
            format!("MoSI makes RGB clips and needs 3 values, got {}", v.len()),
        )
        .into()
    })
}

fn pair(v: &[f64]) -> [f64; 2] {
    // Validation guarantees two values; fall back to a no-op range rather than panic.
    [
        v.first().copied().unwrap_or(1.0),
        v.get(1).copied().unwrap_or(1.0),
    ]
}

/// The speed set switches of a config.
pub fn speed_config(cfg: &Config) -> Result<SpeedConfig, MosiConfigError> {
    let p = &cfg.pretrain;
    Ok(SpeedConfig {
        num_classes: cfg.video.head.num_classes.unwrap_or(5),
        decouple: p.decouple,
        axes: match p.data_mode {
            DataMode::X => gen::Axes::X,
            DataMode::Y => gen::Axes::Y,
            DataMode::Xy => gen::Axes::Xy,
        },
        zero_out: p.zero_out,
        label_mode: match p.label_mode {
            LabelMode::Joint => gen::LabelMode::Joint,
            LabelMode::Separate => gen::LabelMode::Separate,
        },
    })
}

/// The generator settings of a config (docs/mosi.md#keys-and-defaults).
pub fn generator_config(cfg: &Config) -> Result<GeneratorConfig, MosiConfigError> {
    let p = &cfg.pretrain;
    let a = &cfg.augmentation;
    let standardize = p.frame_size_standardize_enable.then(|| {
        let (resize, crop) = match &p.standard_size {
            StandardSize::Fixed(n) => ([*n, *n], *n),
            StandardSize::Range(v) => ([v[0], v[1]], v[2]),
        };
        Standardize {
            resize,
            crop,
            aspect_ratio: pair(&p.aspect_ratio),
        }
    });
    Ok(GeneratorConfig {
        speeds: speed_config(cfg)?,
        num_frames: p.num_frames,
        crop_size: cfg.data.train_crop_size,
        standardize,
        distance_jitter: pair(&p.distance_jitter),
        static_mask: p.static_mask.then(|| pair(&p.mask_size_ratio)),
        mean: three(&cfg.data.mean, "DATA.MEAN")?,
        std: three(&cfg.data.std, "DATA.STD")?,
        color: crate::data::sources::video_clips::color_config(a),
        flip: match p.flip_mode {
            FlipMode::Image => gen::FlipMode::Image,
            FlipMode::Reference => gen::FlipMode::Reference,
            FlipMode::None => gen::FlipMode::Off,
        },
    })
}

/// K, the clips of one MoSINet input item (one per speed class), or None for other models:
/// what shapes a MoSINet input for `tada info --model` and `tada bench model`.
pub fn clips_per_item(cfg: &Config) -> Result<Option<i64>, MosiConfigError> {
    if cfg.model.name != crate::models::video_model::MOSI_NET {
        return Ok(None);
    }
    Ok(Some(gen::SpeedSet::new(&speed_config(cfg)?)?.len() as i64))
}
