//! The config values BMN reads (DATA.TEMPORAL_SCALE, VIDEO.DIM1D, VIDEO.HEAD.NUM_SAMPLE, …),
//! checked once, by key.

use crate::config::schema::{Config, HeadConfig};
use crate::models::ModelError;

const NEEDED_BY: &str = "BMN (SimpleLocalizationConv + BaseBMN)";

/// Groups of the temporal evaluation module's first convolutions (fixed in the reference).
pub const TEM_GROUPS: i64 = 4;

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
        let dim1d = ModelError::positive("VIDEO.DIM1D", cfg.video.dim1d, NEEDED_BY)?;
        if dim1d % TEM_GROUPS != 0 {
            return Err(ModelError::invalid(
                "VIDEO.DIM1D",
                format!(
                    "is {dim1d}, not a multiple of {TEM_GROUPS} (BaseBMN's grouped convolutions)"
                ),
            ));
        }
        Ok(Self {
            map: MapSpec::from_config(cfg)?,
            dim1d,
            dim2d: ModelError::positive("VIDEO.DIM2D", cfg.video.dim2d, NEEDED_BY)?,
            dim3d: ModelError::positive("VIDEO.DIM3D", cfg.video.dim3d, NEEDED_BY)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::models::VideoModel;

    const CFG: &str = "
DATA: {TEMPORAL_SCALE: 8, NUM_INPUT_CHANNELS: 8}
VIDEO:
  DIM1D: 8
  DIM2D: 4
  DIM3D: 4
  BACKBONE_LAYER: 1
  BACKBONE_GROUPS_NUM: 2
  BACKBONE: {META_ARCH: SimpleLocalizationConv}
  HEAD: {NAME: BaseBMN, NUM_SAMPLE: 2, NUM_SAMPLE_PERBIN: 1, BOUNDARY_RATIO: 0.5}
";

    fn build_error(overrides: &[&str]) -> Option<String> {
        build_error_of(CFG, overrides)
    }

    fn build_error_of(text: &str, overrides: &[&str]) -> Option<String> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let cfg = crate::config::load_str(text, "bmn.yaml", &o).unwrap();
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        VideoModel::new(&vs.root(), &cfg.config)
            .err()
            .map(|e| e.to_string())
    }

    /// Each key BMN reads is named when it is missing or unusable; the base config builds.
    #[test]
    fn bmn_keys_are_named_when_missing_or_invalid() {
        assert_eq!(build_error(&[]), None);
        for (line, key) in [
            ("  DIM1D: 8\n", "VIDEO.DIM1D"),
            ("DATA: {TEMPORAL_SCALE: 8, ", "DATA.TEMPORAL_SCALE"),
        ] {
            let text = CFG.replace(
                line,
                if line.starts_with("DATA") {
                    "DATA: {"
                } else {
                    ""
                },
            );
            let e = build_error_of(&text, &[]).unwrap_or_else(|| panic!("{key} unset built"));
            assert!(e.contains(key) && e.contains("BMN"), "{e}");
        }
        for (set, key) in [
            (&["VIDEO.DIM1D=6"][..], "VIDEO.DIM1D"),
            (
                &["VIDEO.BACKBONE_GROUPS_NUM=3"],
                "VIDEO.BACKBONE_GROUPS_NUM",
            ),
            (&["VIDEO.HEAD.NUM_SAMPLE=0"], "VIDEO.HEAD.NUM_SAMPLE"),
            (
                &["VIDEO.HEAD.BOUNDARY_RATIO=-1"],
                "VIDEO.HEAD.BOUNDARY_RATIO",
            ),
            (
                &["VIDEO.HEAD.USE_BMN_REGRESSION=true"],
                "USE_BMN_REGRESSION",
            ),
            (
                &["VIDEO.HEAD.NAME=BaseHead", "VIDEO.HEAD.NUM_CLASSES=3"],
                "VIDEO.HEAD.NAME",
            ),
        ] {
            let e = build_error(set).unwrap_or_else(|| panic!("{set:?} built"));
            assert!(e.contains(key) && !e.contains('\n'), "{set:?}: {e}");
        }
    }

    /// `tada info --model` of a BMN config: one window of features in, the three named maps
    /// out; the count includes the frozen mask (T·N·D·T = 8·2·8·8) as the reference's does.
    #[test]
    fn bmn_summary_counts_the_frozen_mask_and_names_the_maps() {
        let cfg = crate::config::load_str(CFG, "bmn.yaml", &[]).unwrap();
        let s = crate::models::summary::summarize(&cfg.config, None).unwrap();
        assert_eq!(s.input_shape, [1, 8, 8]);
        let names: Vec<(&str, &[i64])> = s
            .outputs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        assert_eq!(
            names,
            [
                ("confidence_map", &[1, 2, 8, 8][..]),
                ("start", &[1, 8]),
                ("end", &[1, 8])
            ]
        );
        // Backbone: Conv1d(8 -> 8, k 3, groups 2) = 8·4·3 + 8.
        assert_eq!(s.backbone_parameters, 104);
        let mask = 8 * 2 * 8 * 8;
        // x_1d_s / x_1d_e: 8·2·3 + 8 + 8 + 1 each; x_1d_p: 8·8·3 + 8; x_3d_p: 4·8·2 + 4;
        // x_2d_p: 4·4 + 4, 2 x (4·4·9 + 4), 2·4 + 2.
        let head = 2 * (56 + 9) + 200 + 68 + 20 + 2 * 148 + 10;
        assert_eq!(s.parameters, 104 + mask + head);
    }

    /// `tada bench model` times a BMN step on feature windows (all three maps in the loss).
    #[test]
    fn bmn_step_is_timed_on_feature_windows() {
        let cfg = crate::config::load_str(CFG, "bmn.yaml", &[]).unwrap();
        let t = crate::bench::model::step_time(
            &cfg.config,
            2,
            None,
            std::time::Duration::from_millis(1),
        )
        .unwrap();
        assert_eq!(t.input_shape, [2, 8, 8]);
        assert!(t.clips_per_second() > 0.0 && t.clips_per_second().is_finite());
    }
}
