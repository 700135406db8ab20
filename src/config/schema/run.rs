//! TRAIN and TEST sections: what the run does and where its checkpoints come from.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// TASK_TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    Classification,
    /// EPIC-Kitchens' challenge submission: the test timestamps' segments scored into the
    /// server's JSON (SUBMISSION section; docs/epic.md#submission).
    Submission,
    /// BMN temporal action localisation on pre-extracted features (docs/localization.md).
    Localization,
}

/// A dataset name. The reference matches names case-insensitively (`UCF101`, `ucf101`), so do we.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Ucf101,
    Hmdb51,
    Kinetics400,
    Ssv2,
    Imagenet,
    /// tada's embedded image source for MoSI (no files needed).
    SyntheticImages,
    /// tada's embedded labelled videos for the downstream stage (no files needed).
    SyntheticVideos,
    /// EPIC-Kitchens-100 action recognition: verb and noun labels (docs/epic.md).
    Epickitchen100,
    /// EPIC-Kitchens-100 temporal action localisation on pre-extracted features
    /// (docs/localization.md#data).
    Epickitchen100Localization,
}

impl Dataset {
    pub const NAMES: [&'static str; 9] = [
        "ucf101",
        "hmdb51",
        "kinetics400",
        "ssv2",
        "imagenet",
        "synthetic_images",
        "synthetic_videos",
        "epickitchen100",
        "epickitchen100localization",
    ];
    const ALL: [Dataset; 9] = [
        Dataset::Ucf101,
        Dataset::Hmdb51,
        Dataset::Kinetics400,
        Dataset::Ssv2,
        Dataset::Imagenet,
        Dataset::SyntheticImages,
        Dataset::SyntheticVideos,
        Dataset::Epickitchen100,
        Dataset::Epickitchen100Localization,
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|d| *d == self).unwrap_or(0)]
    }

    pub fn from_name(s: &str) -> Option<Self> {
        let lower = s.to_ascii_lowercase();
        Self::NAMES
            .iter()
            .position(|n| *n == lower)
            .map(|i| Self::ALL[i])
    }
}

impl Serialize for Dataset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// `""` and null both mean "no dataset", as in the reference's base.yaml.
fn de_dataset<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dataset>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) => Dataset::from_name(name).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown dataset `{name}`, expected one of {}",
                Dataset::NAMES.join(", ")
            ))
        }),
    }
}

/// TRAIN.LOSS_FUNC for supervised training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossFunc {
    CrossEntropy,
    Bce,
    BceLogit,
    Mse,
    SoftTarget,
}

/// TRAIN.PRECISION (a tada key): the dtype of CUDA autocast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    Fp16,
}

/// TRAIN.CHECKPOINT_PRE_PROCESS.POS_EMBED: how a checkpoint's positional embedding is fitted
/// to the model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PosEmbedProcess {
    /// The spatial embedding repeated over the model's temporal tokens.
    Repeat,
    /// The spatial (and temporal) embedding interpolated to the model's grid.
    SuperResolution,
}

/// TRAIN.CHECKPOINT_PRE_PROCESS.PATCH_EMBD: how a 2-D patch embedding becomes a tubelet one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchEmbedProcess {
    /// The 2-D kernel at the middle frame, zeros elsewhere.
    CentralFrame,
    /// The 2-D kernel on every frame, divided by the tubelet size.
    Average,
}

/// TRAIN.CHECKPOINT_PRE_PROCESS: what is done to pretrained weights before they load
/// (docs/training.md#initialisation-from-image-models).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct CheckpointPreProcess {
    pub enable: bool,
    /// Drop every tensor whose name holds `head` (only when TRAIN.FINE_TUNE).
    pub pop_head: bool,
    pub pos_embed: Option<PosEmbedProcess>,
    pub patch_embd: Option<PatchEmbedProcess>,
}

/// TRAIN section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct TrainConfig {
    /// tada key: `fp32` (default), or CUDA autocast in `bf16` or `fp16` (with loss scaling).
    pub precision: Precision,
    pub enable: bool,
    #[serde(deserialize_with = "de_dataset")]
    pub dataset: Option<Dataset>,
    /// Batch size of one training step (tada runs one process, so this is the global batch).
    pub batch_size: usize,
    /// tada key: run each step's batch through the model in chunks of this many samples,
    /// accumulating gradients for one optimiser step (0, the default: the whole batch at once).
    /// Lets a recipe's batch fit one device; BatchNorm then sees each chunk's statistics.
    pub micro_batch_size: usize,
    pub eval_period: u32,
    pub num_folds: u32,
    pub auto_resume: bool,
    pub checkpoint_period: u32,
    pub init: String,
    pub checkpoint_file_path: String,
    pub checkpoint_pre_process: CheckpointPreProcess,
    pub fine_tune: bool,
    pub only_linear: bool,
    pub lr_reduce: bool,
    pub loss_func: LossFunc,
    pub num_samples: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            precision: Precision::Fp32,
            enable: false,
            dataset: None,
            batch_size: 128,
            micro_batch_size: 0,
            eval_period: 10,
            num_folds: 1,
            auto_resume: true,
            checkpoint_period: 10,
            init: String::new(),
            checkpoint_file_path: String::new(),
            checkpoint_pre_process: CheckpointPreProcess::default(),
            fine_tune: false,
            only_linear: false,
            lr_reduce: false,
            loss_func: LossFunc::CrossEntropy,
            num_samples: None,
        }
    }
}

/// TEST section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct TestConfig {
    pub enable: bool,
    #[serde(deserialize_with = "de_dataset")]
    pub dataset: Option<Dataset>,
    pub batch_size: usize,
    pub num_spatial_crops: u32,
    pub num_ensemble_views: u32,
    pub automatic_multi_scale_test: bool,
    pub checkpoint_file_path: String,
    /// Localisation: the split `tada localize` scores (`val`, the reference's default, reads
    /// EPIC_100_validation.csv and is evaluated; `train`/`training` the training list).
    pub test_set: String,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            enable: false,
            dataset: None,
            batch_size: 100,
            num_spatial_crops: 1,
            num_ensemble_views: 1,
            automatic_multi_scale_test: true,
            checkpoint_file_path: String::new(),
            test_set: "val".into(),
        }
    }
}

/// SUBMISSION.ACTION_CLASS_ENSUMBLE_METHOD (the reference's spelling): how a segment's action
/// scores are made from its views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionEnsemble {
    /// Each view's verb x noun outer product, fused over the views (DATA.ENSEMBLE_METHOD).
    Sum,
    /// The outer product of the fused verb and noun scores.
    Calculate,
}

/// SUBMISSION section: TASK_TYPE submission writes the EPIC-Kitchens challenge JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct SubmissionConfig {
    pub enable: bool,
    pub action_class_ensumble_method: ActionEnsemble,
    /// File name of the JSON in the output folder (the reference reads this key without a
    /// default; tada's is `submission.json`).
    pub save_results_path: String,
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        Self {
            enable: false,
            action_class_ensumble_method: ActionEnsemble::Sum,
            save_results_path: "submission.json".into(),
        }
    }
}
