//! The speed set of MoSI: which (x, y) crop-window speeds are generated from each image, in which
//! order, and their labels (docs/mosi.md#speed-set-and-labels; reproduced exactly from the
//! reference).

use super::MosiError;

/// PRETRAIN.DATA_MODE: the axes the crop window moves along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axes {
    X,
    Y,
    Xy,
}

impl Axes {
    pub fn name(self) -> &'static str {
        match self {
            Axes::X => "x",
            Axes::Y => "y",
            Axes::Xy => "xy",
        }
    }
    fn has_x(self) -> bool {
        matches!(self, Axes::X | Axes::Xy)
    }
    fn has_y(self) -> bool {
        matches!(self, Axes::Y | Axes::Xy)
    }
    fn count(self) -> usize {
        self.name().len()
    }
}

/// PRETRAIN.LABEL_MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelMode {
    /// One class per speed: the label is the speed's position in the set.
    Joint,
    /// One class per axis speed (`move_x`, `move_y`).
    Separate,
}

/// The switches that decide the speed set and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeedConfig {
    /// VIDEO.HEAD.NUM_CLASSES: speeds per axis.
    pub num_classes: usize,
    pub decouple: bool,
    pub axes: Axes,
    pub zero_out: bool,
    pub label_mode: LabelMode,
}

impl Default for SpeedConfig {
    /// The reference's MoSI recipe: 5 speeds per axis, decoupled x and y, joint labels.
    fn default() -> Self {
        Self {
            num_classes: 5,
            decouple: true,
            axes: Axes::Xy,
            zero_out: false,
            label_mode: LabelMode::Joint,
        }
    }
}

/// Labels index-aligned with [`SpeedSet::speeds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    Joint { move_joint: Vec<i64> },
    Separate { move_x: Vec<i64>, move_y: Vec<i64> },
}

/// The speeds generated per image, in generation order, with their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeedSet {
    /// Per-axis speeds, e.g. `[-2, -1, 0, 1, 2]` for 5 classes.
    pub speed_range: Vec<i64>,
    /// Every candidate pair, x-major.
    pub speed_all: Vec<[i64; 2]>,
    /// `[speed_x, speed_y]` of each generated clip.
    pub speeds: Vec<[i64; 2]>,
    pub labels: Labels,
}

impl SpeedSet {
    /// Builds the speed set exactly as the reference's generator does.
    pub fn new(cfg: &SpeedConfig) -> Result<Self, MosiError> {
        let n = cfg.num_classes;
        if n < 2 {
            return Err(MosiError::TooFewClasses(n));
        }
        let half = (n / 2) as i64;
        let speed_range: Vec<i64> = (0..n as i64).map(|i| i - half).collect();
        let mut speed_all = Vec::with_capacity(n * n);
        for &x in &speed_range {
            for &y in &speed_range {
                if !(cfg.decouple && x != 0 && y != 0) {
                    speed_all.push([x, y]);
                }
            }
        }
        let speeds: Vec<[i64; 2]> = if cfg.decouple {
            let xs = speed_all.iter().filter(|s| cfg.axes.has_x() && s[0] != 0);
            let ys = speed_all.iter().filter(|s| cfg.axes.has_y() && s[1] != 0);
            // Still clips come last, and only without ZERO_OUT.
            let still = (!cfg.zero_out).then_some(&[0, 0]);
            xs.chain(ys).chain(still).copied().collect()
        } else {
            if cfg.axes != Axes::Xy {
                return Err(MosiError::CoupledSingleAxis(cfg.axes.name()));
            }
            // ZERO_OUT does not remove [0, 0] from a coupled set (reference behaviour).
            speed_all.clone()
        };
        let labels = match cfg.label_mode {
            LabelMode::Joint => Labels::Joint {
                move_joint: (0..speeds.len() as i64).collect(),
            },
            LabelMode::Separate => {
                let min = speed_range[0];
                let label = |v: i64| v - min - i64::from(v > 0 && cfg.zero_out);
                Labels::Separate {
                    move_x: speeds.iter().map(|s| label(s[0])).collect(),
                    move_y: speeds.iter().map(|s| label(s[1])).collect(),
                }
            }
        };
        Ok(Self {
            speed_range,
            speed_all,
            speeds,
            labels,
        })
    }

    /// Number of clips generated per image.
    pub fn len(&self) -> usize {
        self.speeds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.speeds.is_empty()
    }

    /// Speed as a fraction of the largest speed: `speed / floor(n/2)`, in [-1, 1].
    pub fn factor(&self, speed: i64) -> f64 {
        let half = self.speed_range.last().copied().unwrap_or(1).max(1);
        speed as f64 / half as f64
    }
}

/// The reference's MoSI heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MosiHead {
    Joint,
    OnlyX,
    OnlyY,
}

/// Output width of a MoSI head for a configuration (the heads never reject a configuration).
pub fn head_num_classes(cfg: &SpeedConfig, head: MosiHead) -> usize {
    let n = cfg.num_classes;
    let still = usize::from(!cfg.zero_out);
    match head {
        MosiHead::Joint if cfg.decouple => cfg.axes.count() * n.saturating_sub(1) + still,
        MosiHead::Joint => n.pow(cfg.axes.count() as u32),
        MosiHead::OnlyX | MosiHead::OnlyY => n.saturating_sub(1) + still,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/mosi_labels.json"
        );
        let text = std::fs::read_to_string(path).expect("tests/fixtures/mosi_labels.json");
        serde_json::from_str(&text).unwrap()
    }

    fn pairs(v: &Value) -> Vec<[i64; 2]> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| [p[0].as_i64().unwrap(), p[1].as_i64().unwrap()])
            .collect()
    }

    fn ints(v: &Value) -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    }

    /// Every one of the 48 reference combinations: the same speeds in the same order, the same
    /// labels and head sizes, and a rejection exactly where the reference raises.
    #[test]
    fn reproduces_mosi_labels_fixture() {
        let f = fixture();
        let combos = f["combinations"].as_array().unwrap();
        assert_eq!(combos.len(), 48);
        let mut rejected = 0;
        for c in combos {
            let cfg = SpeedConfig {
                num_classes: c["NUM_CLASSES"].as_u64().unwrap() as usize,
                decouple: c["DECOUPLE"].as_bool().unwrap(),
                axes: match c["DATA_MODE"].as_str().unwrap() {
                    "x" => Axes::X,
                    "y" => Axes::Y,
                    _ => Axes::Xy,
                },
                zero_out: c["ZERO_OUT"].as_bool().unwrap(),
                label_mode: match c["LABEL_MODE"].as_str().unwrap() {
                    "joint" => LabelMode::Joint,
                    _ => LabelMode::Separate,
                },
            };
            let heads = &c["head_num_classes"];
            assert_eq!(
                head_num_classes(&cfg, MosiHead::Joint) as u64,
                heads["MoSIHeadJoint"].as_u64().unwrap(),
                "{c}"
            );
            assert_eq!(
                head_num_classes(&cfg, MosiHead::OnlyX) as u64,
                heads["MoSIHeadOnlyX"].as_u64().unwrap(),
                "{c}"
            );
            assert_eq!(
                head_num_classes(&cfg, MosiHead::OnlyY) as u64,
                heads["MoSIHeadOnlyY"].as_u64().unwrap(),
                "{c}"
            );
            let got = SpeedSet::new(&cfg);
            if !c["ok"].as_bool().unwrap() {
                let e = got.expect_err("the reference rejects this combination");
                assert!(matches!(e, MosiError::CoupledSingleAxis(_)), "{c}");
                rejected += 1;
                continue;
            }
            let s = got.unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(s.speed_range, ints(&c["speed_range"]), "{c}");
            assert_eq!(s.speed_all, pairs(&c["speed_all"]), "{c}");
            assert_eq!(s.speeds, pairs(&c["speed_set"]), "{c}");
            assert_eq!(s.len() as u64, c["num_samples_per_image"].as_u64().unwrap());
            let expected = match cfg.label_mode {
                LabelMode::Joint => Labels::Joint {
                    move_joint: ints(&c["labels"]["move_joint"]),
                },
                LabelMode::Separate => Labels::Separate {
                    move_x: ints(&c["labels"]["move_x"]),
                    move_y: ints(&c["labels"]["move_y"]),
                },
            };
            assert_eq!(s.labels, expected, "{c}");
        }
        assert_eq!(rejected, 16);
    }

    #[test]
    fn speed_factors_and_bad_class_counts() {
        let s = SpeedSet::new(&SpeedConfig::default()).unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s.factor(-2), -1.0);
        assert_eq!(s.factor(1), 0.5);
        let e = SpeedSet::new(&SpeedConfig {
            num_classes: 1,
            ..SpeedConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("NUM_CLASSES"));
        let e = SpeedSet::new(&SpeedConfig {
            decouple: false,
            axes: Axes::Y,
            ..SpeedConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("DATA_MODE y"), "{e}");
    }
}
