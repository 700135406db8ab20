//! The typed configuration tree.
//!
//! Keys and sections follow the reference (`configs/pool/base.yaml` of TAdaConv), so its configs
//! load unchanged. Every section is its own type so each component is built from its own
//! sub-config rather than from the whole tree. Defaults are the reference's `base.yaml` values,
//! except the PRETRAIN section, which defaults to the reference's MoSI run recipe (`mosi.yaml`),
//! the only place those keys are defined.

mod data;
mod localization;
mod model;
mod optim;
mod pretrain;
mod run;

pub use data::{
    AugmentationConfig, AutoAugmentConfig, CutmixConfig, DataConfig, DataLoaderConfig, DataRoots,
    Decoder, EnsembleMethod, LoadType, MixupConfig, MixupMode, RandomErasingConfig,
    RandomErasingMode, SamplingMode, STRING_OR_LIST_KEYS,
};
pub use localization::{LocalizationConfig, PostProcessConfig};
pub use model::{
    Activation, BackboneConfig, BnConfig, BranchConfig, BranchName, Depth, EmaConfig, HeadConfig,
    HeadName, KernelSizes, MetaArch, ModelConfig, SlowFastConfig, SlowFastMode, StemConfig,
    StemName, VideoConfig,
};
pub use optim::{LrPolicy, OptimMethod, OptimizerConfig};
pub use pretrain::{
    ContrastiveFramework, ContrastiveSection, DataMode, FlipMode, GrlSchedule, LabelMode,
    ParamCropSection, PretrainConfig, StandardSize,
};
pub use run::{
    ActionEnsemble, CheckpointPreProcess, Dataset, LossFunc, PatchEmbedProcess, PosEmbedProcess,
    Precision, SubmissionConfig, TaskType, TestConfig, TrainConfig,
};

use serde::{Deserialize, Serialize};

/// The whole merged configuration of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Config {
    pub task_type: TaskType,
    pub pretrain: PretrainConfig,
    pub localization: LocalizationConfig,
    pub train: TrainConfig,
    pub test: TestConfig,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub video: VideoConfig,
    pub optimizer: OptimizerConfig,
    pub bn: BnConfig,
    pub data_loader: DataLoaderConfig,
    pub augmentation: AugmentationConfig,
    pub submission: SubmissionConfig,
    /// Number of GPUs to use; 0 runs on the CPU. tada trains on one device per process.
    pub num_gpus: u32,
    /// Seed of every random stream of the run (data order, augmentation, initialisation).
    pub random_seed: u64,
    /// Run folder: resolved config, metrics, TensorBoard logs and checkpoints go here.
    pub output_dir: String,
    /// Log a progress line every this many steps when stderr is not a terminal.
    pub log_period: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            task_type: TaskType::Classification,
            pretrain: PretrainConfig::default(),
            localization: LocalizationConfig::default(),
            train: TrainConfig::default(),
            test: TestConfig::default(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            video: VideoConfig::default(),
            optimizer: OptimizerConfig::default(),
            bn: BnConfig::default(),
            data_loader: DataLoaderConfig::default(),
            augmentation: AugmentationConfig::default(),
            submission: SubmissionConfig::default(),
            num_gpus: 8,
            random_seed: 0,
            output_dir: "output/".into(),
            log_period: 10,
        }
    }
}

impl Config {
    /// Clips of one optimiser step: TRAIN.BATCH_SIZE videos, times PRETRAIN.NUM_CLIPS_PER_VIDEO
    /// views when pretraining (what OPTIMIZER.ADJUST_LR scales by).
    pub fn clips_per_step(&self) -> usize {
        let clips = if self.pretrain.enable {
            self.pretrain.num_clips_per_video
        } else {
            1
        };
        self.train.batch_size * clips
    }

    /// The learning rate a run's schedule starts from: BASE_LR after ADJUST_LR.
    pub fn base_lr(&self) -> f64 {
        self.optimizer.adjusted_base_lr(self.clips_per_step())
    }
}
