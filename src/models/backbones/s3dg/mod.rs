//! The Inception3D meta-architecture: S3D-G (Xie et al., "Rethinking spatiotemporal feature
//! learning"), as the reference builds it after CoCLR's port. A separable stem `Conv_1a`, then
//! `Conv_2b` / `Conv_2c`, then nine Inception blocks `Mixed_3b … Mixed_5c` between max-pools;
//! widths are fixed by the architecture (1024 output channels).
//!
//! The reference registers every unit twice, by name (`Conv_1a`) and inside the Sequential that
//! runs it (`block1.0`): its state_dict holds both keys for the same tensor. tada's parameters
//! have the names; [`canonical_key`] maps the `blockN.i` spellings onto them when loading.

mod units;

#[cfg(test)]
mod tests;

use tch::nn;
use tch::Tensor;

use crate::config::schema::{BranchName, StemName};
use crate::config::Config;
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

pub use units::{InceptionBlock, InceptionWidths, PointConv, STConv3d, SelfGating, SepConvSpec};

const KEY_DIVISOR: &str = "VIDEO.BACKBONE.WIDTH_DIVISOR";
const KEY_STEM: &str = "VIDEO.BACKBONE.STEM.NAME";
const KEY_BRANCH: &str = "VIDEO.BACKBONE.BRANCH.NAME";
const KEY_IN_CHANNELS: &str = "DATA.NUM_INPUT_CHANNELS";

/// Channels of `Conv_1a` / `Conv_2b` and of `Conv_2c`, at full width.
const STEM_WIDTHS: [i64; 2] = [64, 192];

/// The Inception blocks: reference name, the block (max-pool group) it sits in, its widths
/// ([`InceptionWidths`]) at full width.
const MIXED: [(&str, usize, InceptionWidths); 9] = [
    ("Mixed_3b", 3, [64, 96, 128, 16, 32, 32]),
    ("Mixed_3c", 3, [128, 128, 192, 32, 96, 64]),
    ("Mixed_4b", 4, [192, 96, 208, 16, 48, 64]),
    ("Mixed_4c", 4, [160, 112, 224, 24, 64, 64]),
    ("Mixed_4d", 4, [128, 128, 256, 24, 64, 64]),
    ("Mixed_4e", 4, [112, 144, 288, 32, 64, 64]),
    ("Mixed_4f", 4, [256, 160, 320, 32, 128, 128]),
    ("Mixed_5b", 5, [256, 160, 320, 32, 128, 128]),
    ("Mixed_5c", 5, [384, 192, 384, 48, 128, 128]),
];

/// The reference's second spelling of each unit (its `blockN` Sequentials) and the name tada
/// keeps. Index 0 of block2..block5 is a max-pool, which has no parameters.
const ALIASES: [(&str, &str); 12] = [
    ("block1.0", "Conv_1a"),
    ("block2.1", "Conv_2b"),
    ("block2.2", "Conv_2c"),
    ("block3.1", "Mixed_3b"),
    ("block3.2", "Mixed_3c"),
    ("block4.1", "Mixed_4b"),
    ("block4.2", "Mixed_4c"),
    ("block4.3", "Mixed_4d"),
    ("block4.4", "Mixed_4e"),
    ("block4.5", "Mixed_4f"),
    ("block5.1", "Mixed_5b"),
    ("block5.2", "Mixed_5c"),
];

/// The name a reference state_dict key has among tada's parameters when it is one of
/// Inception3D's `blockN.i` duplicates (`backbone.block3.1.branch0.0.conv.weight` ->
/// `backbone.Mixed_3b.branch0.0.conv.weight`); `None` for any other key.
pub fn canonical_key(name: &str) -> Option<String> {
    ALIASES.iter().find_map(|(alias, canonical)| {
        let needle = format!("{alias}.");
        let pos = name.find(&needle)?;
        let at_segment = pos == 0 || name[..pos].ends_with('.');
        at_segment.then(|| {
            format!(
                "{}{canonical}.{}",
                &name[..pos],
                &name[pos + needle.len()..]
            )
        })
    })
}

/// [`canonical_key`]'s inverse: the `blockN.i` spelling of a `Conv_1a…` / `Mixed_…` name, for
/// writing a state_dict the reference loads strictly; `None` for any other name.
pub fn alias_key(name: &str) -> Option<String> {
    ALIASES.iter().find_map(|(alias, canonical)| {
        let needle = format!("{canonical}.");
        let pos = name.find(&needle)?;
        let at_segment = pos == 0 || name[..pos].ends_with('.');
        at_segment.then(|| format!("{}{alias}.{}", &name[..pos], &name[pos + needle.len()..]))
    })
}

/// The S3D-G backbone (module `backbone`).
#[derive(Debug)]
pub struct Inception3D {
    conv_1a: STConv3d,
    conv_2b: PointConv,
    conv_2c: STConv3d,
    mixed: Vec<(usize, InceptionBlock)>,
    /// Module paths of block1..block5, for [`Taps`].
    names: Vec<String>,
    in_channels: i64,
    out_features: i64,
}

impl Inception3D {
    /// Reads DATA.NUM_INPUT_CHANNELS, STEM.NAME and BRANCH.NAME (both STConv3d), BRANCH.GATING,
    /// WIDTH_DIVISOR and the BN section (for the STConv3d units only, as the reference).
    pub fn new(path: &nn::Path, cfg: &Config) -> Result<Self, ModelError> {
        let b = &cfg.video.backbone;
        if b.stem.name != Some(StemName::STConv3d) {
            return Err(ModelError::invalid(
                KEY_STEM,
                format!(
                    "Inception3D builds its stem as STConv3d, got {:?}",
                    b.stem.name
                ),
            ));
        }
        if b.branch.name != Some(BranchName::STConv3d) {
            return Err(ModelError::invalid(
                KEY_BRANCH,
                format!(
                    "Inception3D builds its branches as STConv3d, got {:?}",
                    b.branch.name
                ),
            ));
        }
        let d = i64::try_from(b.width_divisor).unwrap_or(0);
        let all_widths = STEM_WIDTHS.iter().chain(MIXED.iter().flat_map(|m| &m.2));
        if d < 1 || all_widths.clone().any(|w| w % d != 0) {
            return Err(ModelError::invalid(
                KEY_DIVISOR,
                format!("{d} does not divide every S3D-G width; use 1, 2, 4 or 8"),
            ));
        }
        let in_channels = match cfg.data.num_input_channels {
            0 => return Err(ModelError::invalid(KEY_IN_CHANNELS, "must be at least 1")),
            c => i64::try_from(c).map_err(|_| ModelError::invalid(KEY_IN_CHANNELS, "too large"))?,
        };
        let bn = crate::models::backbones::checked_bn(&cfg.bn)?;
        let gating = b.branch.gating;
        let [c1, c2] = STEM_WIDTHS.map(|w| w / d);
        let conv_1a = STConv3d::new(
            &(path / "Conv_1a"),
            (in_channels, c1),
            SepConvSpec {
                kernel: 7,
                stride: 2,
                padding: 3,
            },
            bn,
        );
        let conv_2b = PointConv::new(&(path / "Conv_2b"), (c1, c1), bn.freeze);
        let conv_2c = STConv3d::new(
            &(path / "Conv_2c"),
            (c1, c2),
            SepConvSpec {
                kernel: 3,
                stride: 1,
                padding: 1,
            },
            bn,
        );
        let mut c_in = c2;
        let mut mixed = Vec::with_capacity(MIXED.len());
        for (name, block, widths) in MIXED {
            let w = widths.map(|x| x / d);
            mixed.push((
                block,
                InceptionBlock::new(&(path / name), c_in, w, gating, bn),
            ));
            c_in = InceptionBlock::out_channels(&w);
        }
        Ok(Self {
            conv_1a,
            conv_2b,
            conv_2c,
            mixed,
            names: (1..=5)
                .map(|k| module_path(&(path / format!("block{k}"))))
                .collect(),
            in_channels,
            out_features: c_in,
        })
    }

    /// 1024 / WIDTH_DIVISOR.
    pub fn out_features(&self) -> i64 {
        self.out_features
    }

    /// DATA.NUM_INPUT_CHANNELS.
    pub fn in_channels(&self) -> i64 {
        self.in_channels
    }

    /// # Shapes
    /// (N, C_in, T, H, W) -> (N, 1024 / WIDTH_DIVISOR, T/8, H/32, W/32) (rounded up at each
    /// stride; the stem halves T, block 4's and block 5's pools halve it again).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let pool = |x: &Tensor, k: [i64; 3], s: [i64; 3], p: [i64; 3]| {
            x.max_pool3d(k, s, p, [1, 1, 1], false)
        };
        let x = self.conv_1a.forward_t(xs, train);
        taps.record(&self.names[0], &x);
        let x = pool(&x, [1, 3, 3], [1, 2, 2], [0, 1, 1]);
        let x = self.conv_2b.forward_t(&x, train);
        let mut x = self.conv_2c.forward_t(&x, train);
        taps.record(&self.names[1], &x);
        for block in 3..=5 {
            x = match block {
                3 => pool(&x, [1, 3, 3], [1, 2, 2], [0, 1, 1]),
                4 => pool(&x, [3, 3, 3], [2, 2, 2], [1, 1, 1]),
                _ => pool(&x, [2, 2, 2], [2, 2, 2], [0, 0, 0]),
            };
            for (_, m) in self.mixed.iter().filter(|(b, _)| *b == block) {
                x = m.forward_taps(&x, train, taps);
            }
            taps.record(&self.names[block - 1], &x);
        }
        x
    }
}
