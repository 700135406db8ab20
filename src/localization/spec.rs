//! The config values BMN reads (DATA.TEMPORAL_SCALE, VIDEO.DIM1D, VIDEO.HEAD.NUM_SAMPLE, …),
//! checked once, by key.

use crate::config::schema::{Config, HeadConfig};
use crate::models::ModelError;

const NEEDED_BY: &str = "BMN (SimpleLocalizationConv + BaseBMN)";

/// SimpleLocalizationConv's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackboneSpec {
    /// DATA.NUM_INPUT_CHANNELS: feature dimensions per position.
    pub in_channels: i64,
    /// VIDEO.DIM1D.
    pub dim1d: i64,
    /// VIDEO.BACKBONE_LAYER: convolutions, at least 1.
    pub layers: i64,
    /// VIDEO.BACKBONE_GROUPS_NUM.
    pub groups: i64,
}

/// The boundary-matching map's sizes and sampling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapSpec {
    /// DATA.TEMPORAL_SCALE: feature positions of a window (start axis of the map).
    pub tscale: i64,
    /// DATA.DURATION_SCALE, or TEMPORAL_SCALE when it is below 1 (duration axis).
    pub dscale: i64,
    /// VIDEO.HEAD.NUM_SAMPLE: sample points per proposal.
    pub num_sample: i64,
    /// VIDEO.HEAD.NUM_SAMPLE_PERBIN: sub-samples averaged into each point.
    pub num_sample_perbin: i64,
    /// VIDEO.HEAD.BOUNDARY_RATIO: share of the proposal's length sampled beyond each end.
    pub boundary_ratio: f64,
}

/// BaseBMN's widths and its map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadSpec {
    pub map: MapSpec,
    /// VIDEO.DIM1D, VIDEO.DIM2D, VIDEO.DIM3D.
    pub dim1d: i64,
    pub dim2d: i64,
    pub dim3d: i64,
}

impl BackboneSpec {
    pub fn from_config(cfg: &Config) -> Result<Self, ModelError> {
        let dim1d = ModelError::positive("VIDEO.DIM1D", cfg.video.dim1d, NEEDED_BY)?;
        let groups = ModelError::positive(
            "VIDEO.BACKBONE_GROUPS_NUM",
            cfg.video.backbone_groups_num,
            NEEDED_BY,
        )?;
        let in_channels = ModelError::positive(
            "DATA.NUM_INPUT_CHANNELS",
            Some(cfg.data.num_input_channels),
            NEEDED_BY,
        )?;
        for (key, v) in [
            ("DATA.NUM_INPUT_CHANNELS", in_channels),
            ("VIDEO.DIM1D", dim1d),
        ] {
            if v % groups != 0 {
                return Err(ModelError::invalid(
                    key,
                    format!("is {v}, not a multiple of VIDEO.BACKBONE_GROUPS_NUM {groups}"),
                ));
            }
        }
        Ok(Self {
            in_channels,
            dim1d,
            layers: ModelError::positive(
                "VIDEO.BACKBONE_LAYER",
                cfg.video.backbone_layer,
                NEEDED_BY,
            )?,
            groups,
        })
    }
}

impl MapSpec {
    pub fn from_config(cfg: &Config) -> Result<Self, ModelError> {
        let head: &HeadConfig = &cfg.video.head;
        let tscale =
            ModelError::positive("DATA.TEMPORAL_SCALE", cfg.data.temporal_scale, NEEDED_BY)?;
        let dscale = if cfg.data.duration_scale > 0 {
            cfg.data.duration_scale
        } else {
            tscale
        };
        let boundary_ratio = head
            .boundary_ratio
            .ok_or_else(|| ModelError::missing("VIDEO.HEAD.BOUNDARY_RATIO", NEEDED_BY))?;
        if !(boundary_ratio.is_finite() && boundary_ratio >= 0.0) {
            return Err(ModelError::invalid(
                "VIDEO.HEAD.BOUNDARY_RATIO",
                format!("must be a finite value >= 0, got {boundary_ratio}"),
            ));
        }
        Ok(Self {
            tscale,
            dscale,
            num_sample: ModelError::positive("VIDEO.HEAD.NUM_SAMPLE", head.num_sample, NEEDED_BY)?,
            num_sample_perbin: ModelError::positive(
                "VIDEO.HEAD.NUM_SAMPLE_PERBIN",
                head.num_sample_perbin,
                NEEDED_BY,
            )?,
            boundary_ratio,
        })
    }
}

impl HeadSpec {
    pub fn from_config(cfg: &Config) -> Result<Self, ModelError> {
        let head = &cfg.video.head;
        // The regression branch x_2d_r and the verb / noun maps feed post-processing paths the
        // reference itself leaves unused (its parser sets reg_map to None); not built.
        if head.use_bmn_regression {
            return Err(ModelError::Unsupported(
                "BaseBMN's regression branch (VIDEO.HEAD.USE_BMN_REGRESSION: true)".into(),
            ));
        }
        if head.num_classes_per_head.is_some() {
            return Err(ModelError::Unsupported(
                "BaseBMN's verb / noun maps (VIDEO.HEAD.NUM_CLASSES as a list)".into(),
            ));
        }
        Ok(Self {
            map: MapSpec::from_config(cfg)?,
            dim1d: ModelError::positive("VIDEO.DIM1D", cfg.video.dim1d, NEEDED_BY)?,
            dim2d: ModelError::positive("VIDEO.DIM2D", cfg.video.dim2d, NEEDED_BY)?,
            dim3d: ModelError::positive("VIDEO.DIM3D", cfg.video.dim3d, NEEDED_BY)?,
        })
    }
}
