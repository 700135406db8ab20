//! DATA, DATA_LOADER and AUGMENTATION sections: what a training view is made of.

use serde::{Deserialize, Serialize};

/// DATA.SAMPLING_MODE: how frame indices of a clip are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    IntervalBased,
    SegmentBased,
}

/// DATA.ENSEMBLE_METHOD: how the scores of a video's test views are fused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleMethod {
    Sum,
    Max,
}

/// DATA.DECODER: which decoder reads video files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoder {
    /// FFmpeg's software decoders on the loader's workers.
    Cpu,
    /// NVIDIA's hardware decoder through FFmpeg: not built yet (validation refuses it).
    Nvdec,
    /// NVDEC where it is built and CUDA is present, else `cpu`; today always `cpu`.
    Auto,
}

/// DATA.LOAD_TYPE: how localisation feature files are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadType {
    /// `torch.save` files (`<clip>.pkl`), the reference's feature zoo; read by the safe
    /// importer, which runs nothing from the file.
    Torch,
    /// NumPy files: `<clip>.npy` features, `<clip>.npz` classifier results (what
    /// `tada extract-features` writes).
    Numpy,
}

/// DATA.DATA_ROOT_DIR: one folder, or (localisation features) a list of folders whose
/// features are concatenated channel-wise.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRoots(pub Vec<String>);

/// Keys of the schema that take a string or a list of strings ([`DataRoots`]). Their default
/// serialises as a string, so `--set` learns here that a `[…]` value is a list, not a path.
pub const STRING_OR_LIST_KEYS: &[&str] = &["DATA.DATA_ROOT_DIR"];

impl DataRoots {
    /// The folder of every dataset that reads one.
    pub fn first(&self) -> &str {
        self.0.first().map_or("", String::as_str)
    }

    pub fn all(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for DataRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => f.write_str(one),
            many => write!(f, "[{}]", many.join(", ")),
        }
    }
}

impl Serialize for DataRoots {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DataRoots {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Roots {
            One(Option<String>),
            Many(Vec<String>),
        }
        Ok(match Roots::deserialize(d)? {
            Roots::One(s) => Self(vec![s.unwrap_or_default()]),
            Roots::Many(v) => Self(v),
        })
    }
}

/// DATA section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct DataConfig {
    pub data_root_dir: DataRoots,
    pub anno_dir: String,
    pub num_input_frames: usize,
    pub num_input_channels: usize,
    pub sampling_mode: SamplingMode,
    pub sampling_rate: usize,
    /// `[a, b]`: a short-side range when a > 1, else a RandomResizedCrop area range.
    pub train_jitter_scales: Vec<f64>,
    pub train_crop_size: usize,
    pub test_scale: usize,
    pub test_crop_size: usize,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub ensemble_method: EnsembleMethod,
    pub target_fps: f64,
    /// Frame rate assumed for sources that carry none (image sequences).
    pub fps: f64,
    pub minus_interval: bool,
    /// tada: which official split of UCF101 / HMDB51 to read (1, 2 or 3).
    pub split: usize,
    /// tada: clips cut from one decode of a training video, each its own augmentation and its
    /// own place in the batch (repeated sampling); TRAIN.BATCH_SIZE clips are
    /// TRAIN.BATCH_SIZE / CLIPS_PER_DECODE videos (docs/data.md#clips-per-decode).
    pub clips_per_decode: usize,
    /// tada: `cpu`, `nvdec` (not built yet) or `auto` (docs/data.md#video-decoding).
    pub decoder: Decoder,
    /// BMN: feature positions per window (the boundary-matching map's start axis).
    pub temporal_scale: Option<usize>,
    /// BMN: proposal durations of the map; -1 (or any value below 1) means TEMPORAL_SCALE.
    pub duration_scale: i64,
    /// Localisation: the ground-truth JSON (ActivityNet layout) in ANNO_DIR that detections are
    /// evaluated against.
    pub anno_name: String,
    /// Localisation: `<video>.MP4,<seconds>` per line, in ANNO_DIR.
    pub video_length_file: String,
    /// Localisation: `<video>,<start_ms>,<end_ms>` per 5-second feature clip, in ANNO_DIR.
    pub clips_list_file: String,
    /// Localisation: frames (at TARGET_FPS) between feature rows.
    pub clip_interval: usize,
    /// Localisation targets; tada builds `bmn`.
    pub labels_type: String,
    pub load_type: LoadType,
    /// Localisation: the classifier's per-clip results (verb / noun scores per feature row),
    /// read when LOAD_CLASSIFIER_RES is set.
    pub classifier_root_dir: String,
    pub load_classifier_res: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            data_root_dir: DataRoots(vec!["/data_root/".into()]),
            anno_dir: "/anno_dir/".into(),
            num_input_frames: 16,
            num_input_channels: 3,
            sampling_mode: SamplingMode::IntervalBased,
            sampling_rate: 4,
            train_jitter_scales: vec![168.0, 224.0],
            train_crop_size: 112,
            test_scale: 224,
            test_crop_size: 112,
            mean: vec![0.45; 3],
            std: vec![0.225; 3],
            ensemble_method: EnsembleMethod::Sum,
            target_fps: 30.0,
            fps: 30.0,
            minus_interval: false,
            split: 1,
            clips_per_decode: 1,
            decoder: Decoder::Auto,
            temporal_scale: None,
            duration_scale: -1,
            anno_name: String::new(),
            video_length_file: String::new(),
            clips_list_file: String::new(),
            clip_interval: 8,
            labels_type: "bmn".into(),
            load_type: LoadType::Torch,
            classifier_root_dir: String::new(),
            load_classifier_res: false,
        }
    }
}

/// DATA_LOADER section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct DataLoaderConfig {
    pub num_workers: usize,
    pub pin_memory: bool,
    /// tada: largest share of unreadable samples a run tolerates (skipped and logged) before it
    /// stops with an error naming them.
    pub max_bad_fraction: f64,
}

impl Default for DataLoaderConfig {
    fn default() -> Self {
        Self {
            num_workers: 4,
            pin_memory: false,
            max_bad_fraction: 0.01,
        }
    }
}

/// AUGMENTATION.MIXUP.MODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixupMode {
    Batch,
    Pair,
    Elem,
}

/// AUGMENTATION.MIXUP section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct MixupConfig {
    pub enable: bool,
    pub alpha: f64,
    pub prob: f64,
    pub mode: MixupMode,
    pub switch_prob: f64,
}

impl Default for MixupConfig {
    fn default() -> Self {
        Self {
            enable: false,
            alpha: 0.0,
            prob: 1.0,
            mode: MixupMode::Batch,
            switch_prob: 0.5,
        }
    }
}

/// AUGMENTATION.CUTMIX section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct CutmixConfig {
    pub enable: bool,
    pub alpha: f64,
    pub minmax: Option<Vec<f64>>,
}

/// AUGMENTATION.RANDOM_ERASING.MODE: what an erased box is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RandomErasingMode {
    Const,
    Rand,
    Pixel,
}

/// AUGMENTATION.RANDOM_ERASING section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct RandomErasingConfig {
    pub enable: bool,
    pub prob: f64,
    pub mode: RandomErasingMode,
    pub count: Vec<u32>,
    pub num_splits: u32,
    pub area_range: Vec<f64>,
    pub min_aspect: f64,
}

impl Default for RandomErasingConfig {
    fn default() -> Self {
        Self {
            enable: false,
            prob: 0.25,
            mode: RandomErasingMode::Const,
            count: vec![1, 1],
            num_splits: 0,
            area_range: vec![0.02, 0.33],
            min_aspect: 0.3,
        }
    }
}

/// AUGMENTATION.AUTOAUGMENT section (RandAugment, as the TAdaConvV2 configs use it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AutoAugmentConfig {
    pub enable: bool,
    #[serde(rename = "TYPE")]
    pub kind: String,
    pub before_crop: bool,
}

impl Default for AutoAugmentConfig {
    fn default() -> Self {
        Self {
            enable: false,
            kind: "rand-m9-n4-mstd0.5-inc1".into(),
            before_crop: false,
        }
    }
}

/// AUGMENTATION section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AugmentationConfig {
    pub color_aug: bool,
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub hue: f64,
    pub grayscale: f64,
    pub consistent: bool,
    pub shuffle: bool,
    pub gray_first: bool,
    /// Probability of the brightness/contrast/saturation/hue ops. Absent from the reference's
    /// base.yaml; tada defaults it to 1 so COLOR_AUG really jitters colour (see docs/reference.md).
    pub color_p: f64,
    pub ratio: Vec<f64>,
    pub autoaugment: AutoAugmentConfig,
    pub mixup: MixupConfig,
    pub cutmix: CutmixConfig,
    pub random_erasing: RandomErasingConfig,
    pub label_smoothing: f64,
    pub ssv2_flip: bool,
}

impl Default for AugmentationConfig {
    fn default() -> Self {
        Self {
            color_aug: false,
            brightness: 0.5,
            contrast: 0.5,
            saturation: 0.5,
            hue: 0.25,
            grayscale: 0.3,
            consistent: true,
            shuffle: true,
            gray_first: true,
            color_p: 1.0,
            ratio: vec![6.0 / 7.0, 7.0 / 6.0],
            autoaugment: AutoAugmentConfig::default(),
            mixup: MixupConfig::default(),
            cutmix: CutmixConfig::default(),
            random_erasing: RandomErasingConfig::default(),
            label_smoothing: 0.0,
            ssv2_flip: false,
        }
    }
}
