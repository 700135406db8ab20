//! From a config to loader sources: which dataset a split reads, its entries, and the sample
//! source (video clips, MoSI samples from images, or the embedded synthetic data).

use std::sync::Arc;

use crate::config::schema::Dataset;
use crate::config::Config;
use crate::data::dataset::annotations::epic::{read_list, EpicList};
use crate::data::dataset::{DatasetError, Entry, EntryList, Split};
use crate::data::loader::{Loader, LoaderConfig, SampleSource};
use crate::data::sources::epic_clips::EpicClips;
use crate::data::sources::mosi_images::ImageOrigin;
use crate::data::sources::synthetic_videos::{SyntheticVideos, MAX_CLASSES};
use crate::data::sources::video_clips::{ClipSourceConfig, VideoClips};

/// Why a split's data cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no dataset configured for the {split} split: set {key}")]
    NoDataset {
        split: &'static str,
        key: &'static str,
    },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("synthetic_videos: VIDEO.HEAD.NUM_CLASSES must be 2 to {MAX_CLASSES} (one class per motion direction), got {0}")]
    SyntheticClasses(usize),
    #[error(transparent)]
    Augmentation(#[from] crate::data::sources::video_clips::AugmentationError),
    #[error("TRAIN.DATASET {0} for MoSI: tada's MoSI source takes images (imagenet, synthetic_images) or frames of a video dataset (ucf101, hmdb51, kinetics400, ssv2)")]
    NotImages(&'static str),
    #[error("{0}")]
    EpicHead(String),
}

/// Videos per split of the embedded `synthetic_videos` dataset when TRAIN.NUM_SAMPLES is unset.
pub const SYNTHETIC_VIDEOS: usize = 512;

/// The embedded labelled videos for `split`: NUM_INPUT_FRAMES x TRAIN_CROP_SIZE² clips, one class
/// per motion direction.
pub fn synthetic_videos(cfg: &Config, split: Split) -> Result<SyntheticVideos, PipelineError> {
    let classes = cfg.video.head.num_classes.unwrap_or(0);
    if !(2..=MAX_CLASSES).contains(&classes) {
        return Err(PipelineError::SyntheticClasses(classes));
    }
    let count = cfg.train.num_samples.unwrap_or(SYNTHETIC_VIDEOS);
    let mut s = SyntheticVideos::new(
        split,
        count,
        classes,
        cfg.data.num_input_frames,
        cfg.data.train_crop_size,
    );
    s.mean = crate::data::sources::video_clips::triple(&cfg.data.mean);
    s.std = crate::data::sources::video_clips::triple(&cfg.data.std);
    if split == Split::Train {
        s.rand_augment = crate::data::sources::video_clips::rand_augment(cfg)?;
        s.erasing = crate::data::sources::video_clips::random_erasing(&cfg.augmentation)?;
    }
    Ok(s)
}

/// The dataset a split reads: TRAIN.DATASET for training, TEST.DATASET (or TRAIN.DATASET) for
/// validation and testing.
pub fn dataset_for(cfg: &Config, split: Split) -> Result<Dataset, PipelineError> {
    let d = match split {
        Split::Train => cfg.train.dataset,
        Split::Val | Split::Test => cfg.test.dataset.or(cfg.train.dataset),
    };
    d.ok_or(PipelineError::NoDataset {
        split: split.name(),
        key: match split {
            Split::Train => "TRAIN.DATASET",
            Split::Val | Split::Test => "TEST.DATASET",
        },
    })
}

/// The labelled files of a split, read from the dataset's annotation files.
pub fn entries(cfg: &Config, split: Split) -> Result<EntryList, PipelineError> {
    let dataset = dataset_for(cfg, split)?;
    Ok(crate::data::dataset::annotations::read_entries(
        dataset, &cfg.data, split,
    )?)
}

/// The files MoSI pretraining reads when TRAIN.DATASET names a dataset on disk: image files
/// (imagenet), or one frame of each video of a video dataset. `None` when the config asks for
/// tada's synthetic images (TRAIN.DATASET unset or `synthetic_images`).
pub fn mosi_files(cfg: &Config) -> Result<Option<ImageOrigin>, PipelineError> {
    match cfg.train.dataset {
        None | Some(Dataset::SyntheticImages) => Ok(None),
        Some(Dataset::Imagenet) => Ok(Some(ImageOrigin::Files(
            entries(cfg, Split::Train)?.entries,
        ))),
        Some(Dataset::Ucf101 | Dataset::Hmdb51 | Dataset::Kinetics400 | Dataset::Ssv2) => Ok(Some(
            ImageOrigin::VideoFrames(entries(cfg, Split::Train)?.entries),
        )),
        Some(
            d @ (Dataset::SyntheticVideos
            | Dataset::Epickitchen100
            | Dataset::Epickitchen100Localization),
        ) => Err(PipelineError::NotImages(d.name())),
    }
}

/// Loader settings from DATA_LOADER and the split's batch size.
///
/// With DATA.CLIPS_PER_DECODE k > 1 a training sample is k clips of one video, so a batch of
/// TRAIN.BATCH_SIZE clips takes TRAIN.BATCH_SIZE / k samples (validation checks that k
/// divides it; only supervised video training may set k).
pub fn loader_config(cfg: &Config, split: Split, seed: u64) -> LoaderConfig {
    let train = split == Split::Train;
    // A distributed run's training split: every rank reads its shard in its share of the
    // global TRAIN.BATCH_SIZE (refused up front when the world size does not divide it).
    let (world, rank) = (crate::dist::world_size(), crate::dist::rank());
    let shard = (train && world > 1).then_some((rank, world));
    let k = cfg.data.clips_per_decode.max(1);
    LoaderConfig {
        batch_size: if train {
            (cfg.train.batch_size / world.max(1) / k).max(1)
        } else {
            cfg.test.batch_size
        },
        shard,
        num_workers: cfg.data_loader.num_workers,
        prefetch: 2 * cfg.data_loader.num_workers.max(1),
        shuffle: train,
        drop_last: train,
        seed,
        max_bad_fraction: cfg.data_loader.max_bad_fraction,
        pin_memory: cfg.data_loader.pin_memory,
        batch_size_key: if train && k > 1 {
            "TRAIN.BATCH_SIZE / DATA.CLIPS_PER_DECODE videos"
        } else if train {
            "TRAIN.BATCH_SIZE"
        } else {
            "TEST.BATCH_SIZE"
        },
    }
}

/// A loader of labelled video clips for `split` of the config's dataset.
pub fn video_loader(cfg: &Config, split: Split, seed: u64) -> Result<Loader, PipelineError> {
    let list = entries(cfg, split)?;
    let source = VideoClips::new(list.entries, ClipSourceConfig::from_config(cfg, split)?);
    Ok(Loader::new(
        Arc::new(source),
        loader_config(cfg, split, seed),
    ))
}

/// The labelled clips a split trains or tests on: the dataset's videos, the embedded
/// `synthetic_videos`, or EPIC-Kitchens segments (labelled verb and noun).
pub enum LabelledClips {
    Videos(VideoClips),
    Synthetic(SyntheticVideos),
    Epic(EpicClips),
}

impl LabelledClips {
    /// The files with their labels; none for the embedded videos, whose labels are in range
    /// by construction, nor for EPIC's segments, checked against both heads when read.
    pub fn entries(&self) -> &[Entry] {
        match self {
            Self::Videos(v) => v.entries(),
            Self::Synthetic(_) | Self::Epic(_) => &[],
        }
    }

    /// Test views per video (temporal x spatial); 1 for the embedded videos.
    pub fn views_per_video(&self) -> usize {
        match self {
            Self::Videos(v) => v.config().views_per_video(),
            Self::Epic(e) => e.config().views_per_video(),
            Self::Synthetic(_) => 1,
        }
    }

    pub fn into_source(self) -> Arc<dyn SampleSource> {
        match self {
            Self::Videos(v) => Arc::new(v),
            Self::Synthetic(s) => Arc::new(s),
            Self::Epic(e) => Arc::new(e),
        }
    }
}

/// The labelled clips of `split` (TRAIN.DATASET, or TEST.DATASET for testing).
pub fn labelled_clips(cfg: &Config, split: Split) -> Result<LabelledClips, PipelineError> {
    match dataset_for(cfg, split).ok() {
        Some(Dataset::SyntheticVideos) => {
            return Ok(LabelledClips::Synthetic(synthetic_videos(cfg, split)?))
        }
        Some(Dataset::Epickitchen100) => {
            let clips = epic_clips(cfg, EpicList::of(split), split)?;
            return Ok(LabelledClips::Epic(clips));
        }
        _ => {}
    }
    let list = entries(cfg, split)?;
    Ok(LabelledClips::Videos(VideoClips::new(
        list.entries,
        ClipSourceConfig::from_config(cfg, split)?,
    )))
}

/// The segments of an EPIC-Kitchens list as clips of `split`'s pipeline (the test timestamps
/// with the test views for a submission). Fails unless VIDEO.HEAD has a verb and a noun head
/// wide enough for every label.
pub fn epic_clips(cfg: &Config, list: EpicList, split: Split) -> Result<EpicClips, PipelineError> {
    let Some([verbs, nouns]) = cfg
        .video
        .head
        .num_classes_per_head
        .as_deref()
        .and_then(|v| <[usize; 2]>::try_from(v).ok())
    else {
        return Err(PipelineError::EpicHead(
            "VIDEO.HEAD.NUM_CLASSES: epickitchen100 labels each segment with a verb and a noun; \
             the model needs two heads ([verbs, nouns], e.g. [97, 300], with VIDEO.HEAD.NAME \
             BaseHeadx2 or TransformerHeadx2)"
                .into(),
        ));
    };
    let n = read_list(
        std::path::Path::new(&cfg.data.anno_dir),
        std::path::Path::new(cfg.data.data_root_dir.first()),
        list,
    )?;
    if n.narrations.is_empty() {
        return Err(DatasetError::NoSamples {
            dataset: Dataset::Epickitchen100.name().into(),
            split: split.name().into(),
            path: n.source,
        }
        .into());
    }
    for (what, k, max) in [
        ("verb", verbs, n.narrations.iter().map(|x| x.verb).max()),
        ("noun", nouns, n.narrations.iter().map(|x| x.noun).max()),
    ] {
        if let Some(m) = max.filter(|&m| m as usize >= k) {
            return Err(PipelineError::EpicHead(format!(
                "VIDEO.HEAD.NUM_CLASSES is [{verbs}, {nouns}], but {} has {what} class {m}; \
                 the {what} head needs at least {} classes",
                n.source.display(),
                m + 1
            )));
        }
    }
    let cfg_split = ClipSourceConfig::from_config(cfg, split)?;
    Ok(EpicClips::new(n.narrations, cfg_split, cfg.data.target_fps))
}
