//! The reference's EPIC-Kitchens-100 localisation features (`Epickitchen100Localization`):
//! per-video features cut into 5-second clip files, read window by window
//! (docs/localization.md#data).

pub mod assemble;
pub mod files;
pub mod index;
pub mod npy;

use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::config::schema::Config;
use crate::config::KeyError;
use crate::data::dataset::DatasetError;

pub use assemble::{Assembled, Centres};
pub use files::FeatureFiles;
pub use index::{FeatureIndex, Grid, IndexFiles, Segment, Video, Window};

/// Why a localisation split cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

/// Which list a split reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TalSplit {
    Train,
    /// TEST.TEST_SET `val` / `validation` (the reference's substring test: any name inside
    /// "validation").
    Validation,
}

impl TalSplit {
    /// TEST.TEST_SET as the reference reads it: a name inside "training" is the training
    /// list, anything else the validation list.
    pub fn of_test_set(name: &str) -> Self {
        match "training".contains(name) && !name.is_empty() {
            true => Self::Train,
            false => Self::Validation,
        }
    }

    pub fn annotation_file(self) -> &'static str {
        match self {
            Self::Train => "EPIC_100_train.csv",
            Self::Validation => "EPIC_100_validation.csv",
        }
    }
}

/// One window's model input and what testing needs to put it back in its video.
#[derive(Debug)]
pub struct WindowInput {
    pub assembled: Assembled,
    /// Classifier results resized as the features: verb (V·K_verb, T), noun (V·K_noun, T).
    pub classifier: Option<(Tensor, Tensor)>,
}

/// A split ready to read: its index, files and geometry.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    pub index: FeatureIndex,
    pub files: FeatureFiles,
    pub centres: Centres,
    pub grid: Grid,
    /// DATA.NUM_INPUT_CHANNELS.
    pub channels: usize,
}

fn required<'a>(value: &'a str, key: &str) -> Result<&'a str, KeyError> {
    match value.trim() {
        "" => Err(KeyError::missing(key, "the localisation dataset")),
        v => Ok(v),
    }
}

impl FeatureSet {
    /// The split of `cfg`'s localisation data. Training never reads classifier results (the
    /// reference reads them for testing only).
    pub fn from_config(
        cfg: &Config,
        split: TalSplit,
        training: bool,
    ) -> Result<Self, FeatureError> {
        let d = &cfg.data;
        if d.labels_type.trim() != "bmn" {
            return Err(KeyError::invalid(
                "DATA.LABELS_TYPE",
                format!("is `{}`; tada builds `bmn`", d.labels_type),
            )
            .into());
        }
        let tscale = d
            .temporal_scale
            .ok_or_else(|| KeyError::missing("DATA.TEMPORAL_SCALE", "the localisation dataset"))?;
        let dscale = match d.duration_scale {
            n if n < 1 => tscale,
            n => n as usize,
        };
        let anno = Path::new(required(&d.anno_dir, "DATA.ANNO_DIR")?);
        let files = IndexFiles {
            annotations: anno.join(split.annotation_file()),
            lengths: anno.join(required(&d.video_length_file, "DATA.VIDEO_LENGTH_FILE")?),
            clips: anno.join(required(&d.clips_list_file, "DATA.CLIPS_LIST_FILE")?),
        };
        let roots: Vec<PathBuf> = d
            .data_root_dir
            .all()
            .iter()
            .map(|r| required(r, "DATA.DATA_ROOT_DIR").map(PathBuf::from))
            .collect::<Result<_, _>>()?;
        if roots.is_empty() {
            return Err(KeyError::missing("DATA.DATA_ROOT_DIR", "the localisation dataset").into());
        }
        let classifier_root = match (d.load_classifier_res, training) {
            (true, false) => Some(PathBuf::from(required(
                &d.classifier_root_dir,
                "DATA.CLASSIFIER_ROOT_DIR",
            )?)),
            _ => None,
        };
        if d.clip_interval == 0 {
            return Err(KeyError::invalid("DATA.CLIP_INTERVAL", "must be at least 1").into());
        }
        let grid = Grid { tscale, dscale };
        Ok(Self {
            index: FeatureIndex::read(&files, grid, training)?,
            files: FeatureFiles {
                roots,
                classifier_root,
                load_type: d.load_type,
            },
            centres: Centres {
                interval: d.clip_interval,
                fps: d.target_fps,
            },
            grid,
            channels: d.num_input_channels,
        })
    }

    /// Window `i`'s input (and classifier results when the split reads them).
    pub fn window(&self, i: usize) -> Result<WindowInput, FeatureError> {
        let w = &self.index.windows[i];
        let (clips, span) = self.index.clips_of(w);
        let video = &self.index.videos[w.video].name;
        if clips.is_empty() {
            return Err(FeatureError::File {
                path: self.files.roots[0].join(format!("{video}_*")),
                reason: format!(
                    "no feature clip of {video} in DATA.CLIPS_LIST_FILE covers {:.2}-{:.2} s",
                    w.start, w.end
                ),
            });
        }
        let stems: Vec<&str> = clips.iter().map(|c| c.stem.as_str()).collect();
        let rows = Tensor::cat(
            &stems
                .iter()
                .map(|s| self.files.rows(s))
                .collect::<Result<Vec<_>, _>>()?,
            0,
        );
        if rows.size()[1] != self.channels as i64 {
            return Err(FeatureError::File {
                path: self.files.roots[0].join(stems[0]),
                reason: format!(
                    "{} channels, DATA.NUM_INPUT_CHANNELS is {}",
                    rows.size()[1],
                    self.channels
                ),
            });
        }
        let window = (w.start, w.end);
        let count_err = |expected: usize| {
            FeatureError::File {
            path: self.files.roots[0].join(stems[0]),
            reason: format!(
                "the clips {} hold {} rows; DATA.CLIP_INTERVAL {} at DATA.TARGET_FPS {} puts {expected} \
                 row centres in {:.2}-{:.2} s",
                stems.join(", "),
                rows.size()[0],
                self.centres.interval,
                self.centres.fps,
                span.0,
                span.1
            ),
        }
        };
        let (keep, in_window) =
            assemble::select_rows(&self.centres, rows.size()[0] as usize, window, span)
                .map_err(count_err)?;
        let features = assemble::assemble(&rows, &keep, window, self.grid.tscale, self.channels);
        let classifier = match &self.files.classifier_root {
            None => None,
            Some(_) => Some(self.classifier(&stems, window, span, &count_err)?),
        };
        Ok(WindowInput {
            assembled: Assembled {
                features,
                rows: keep.len(),
                in_window,
            },
            classifier,
        })
    }

    /// The window's classifier results, fitted to its positions as its features are.
    fn classifier(
        &self,
        stems: &[&str],
        window: (f64, f64),
        span: (f64, f64),
        count_err: &dyn Fn(usize) -> FeatureError,
    ) -> Result<(Tensor, Tensor), FeatureError> {
        let mut verbs = Vec::new();
        let mut nouns = Vec::new();
        for s in stems {
            if let Some((v, n)) = self.files.classifier(s)? {
                verbs.push(v);
                nouns.push(n);
            }
        }
        let fit = |parts: &[Tensor]| {
            let t = Tensor::cat(parts, 0);
            let c = t.size()[1] as usize;
            let views = crate::localization::fuse::CLASSIFIER_VIEWS as usize;
            if c % views != 0 {
                return Err(FeatureError::File {
                    path: self
                        .files
                        .classifier_root
                        .clone()
                        .unwrap_or_default()
                        .join(stems[0]),
                    reason: format!(
                        "{c} classifier columns; the results hold {views} views of every class"
                    ),
                });
            }
            assemble::select_rows(&self.centres, t.size()[0] as usize, window, span)
                .map(|(keep, _)| assemble::assemble(&t, &keep, window, self.grid.tscale, c))
                .map_err(count_err)
        };
        Ok((fit(&verbs)?, fit(&nouns)?))
    }
}
