//! Configs shared by the model unit tests: the released MoSI backbones at full size, shrunk
//! through `--set`-style overrides where a test needs a small network.

use crate::config::{load_str, Config};

/// R2D3D-18 as in `configs/pool/backbone/r2d3ds.yaml` + the MoSI run (joint head, BN eps 1e-3).
pub const R2D3D: &str = "
MODEL: {NAME: MoSINet}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 18
    NUM_FILTERS: [64, 64, 128, 256, 256]
    NUM_OUT_FEATURES: 256
    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, false, true, true]
    EXPANSION_RATIO: 2
    STEM: {NAME: DownSampleStem}
    BRANCH: {NAME: R2D3DBranch}
  HEAD: {NAME: MoSIHeadJoint, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
BN: {EPS: 1e-3, MOMENTUM: 0.1}
";

/// R(2+1)D-10 as in `configs/pool/backbone/r2p1d.yaml` + the MoSI run.
pub const R2P1D: &str = "
MODEL: {NAME: MoSINet}
VIDEO:
  BACKBONE:
    META_ARCH: ResNet3D
    DEPTH: 10
    NUM_FILTERS: [64, 64, 128, 256, 512]
    NUM_OUT_FEATURES: 512
    KERNEL_SIZE: [[3, 7, 7], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
    DOWNSAMPLING: [true, false, true, true, true]
    DOWNSAMPLING_TEMPORAL: [false, false, true, true, true]
    EXPANSION_RATIO: 2
    STEM: {NAME: R2Plus1DStem}
    BRANCH: {NAME: R2Plus1DBranch}
  HEAD: {NAME: MoSIHeadJoint, NUM_CLASSES: 5, DROPOUT_RATE: 0.5}
BN: {EPS: 1e-3, MOMENTUM: 0.1}
";

/// Overrides that shrink either model to NUM_FILTERS [4, 4, 8, 8, 8].
pub const TINY: &[&str] = &[
    "VIDEO.BACKBONE.NUM_FILTERS=[4, 4, 8, 8, 8]",
    "VIDEO.BACKBONE.NUM_OUT_FEATURES=8",
];

/// Loads `yaml` with `overrides` (`KEY=VALUE`), panicking on a config error: the texts here
/// are fixed, so an error is a bug in the test.
pub fn config(yaml: &str, overrides: &[&str]) -> Config {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match load_str(yaml, "test.yaml", &overrides) {
        Ok(c) => c.config,
        Err(e) => panic!("test config does not load: {e}"),
    }
}

/// [`config`] with [`TINY`] applied before `overrides`.
pub fn tiny(yaml: &str, overrides: &[&str]) -> Config {
    let all: Vec<&str> = TINY.iter().chain(overrides).copied().collect();
    config(yaml, &all)
}

/// The value of a one-element boolean tensor (e.g. the result of `.all()`).
pub fn truthy(t: &tch::Tensor) -> bool {
    t.int64_value(&[]) != 0
}
