//! `tada extract-features`: videos into the per-video feature files BMN trains on, cut into
//! 5-second clip files as the reference's EPIC-Kitchens feature zoo (docs/extract-features.md).
//!
//! A row of features every DATA.CLIP_INTERVAL frames at DATA.TARGET_FPS ([`layout`]); each row
//! is the model's pooled backbone feature (what its head's classifier sees) of a clip centred
//! on it ([`rows`]), for each of the TEST.NUM_SPATIAL_CROPS test crops, side by side. The
//! folder ([`folder`]) is resumable: finished videos are listed, and skipped on a rerun.

pub mod folder;
pub mod layout;
pub mod rows;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use tch::{Device, Kind, Tensor};

use crate::config::schema::Activation;
use crate::config::LoadedConfig;
use crate::data::dataset::Split;
use crate::data::sources::video_clips::ClipSourceConfig;
use crate::data::video::{probe, VideoInfo};
use crate::models::heads::{Head, NOUN, VERB};
use crate::models::Session;
use crate::train::progress::Progress;
use crate::train::TrainError;

use folder::Folder;
use layout::{clip_spans, RowGrid};
use rows::{RowExtractor, RowSampling, Timing};

/// Extensions of the video files a folder given as input is searched for.
const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "mkv", "avi", "webm", "mov", "m4v"];

/// What went wrong with a whole extraction (a bad video is skipped, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: tch::TchError,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Run(#[from] TrainError),
}

/// What to extract, from which weights, into which folder.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// The videos (files, or folders of frames), in the order the lists give them.
    pub videos: Vec<PathBuf>,
    /// The config file, recorded in features.json.
    pub config: PathBuf,
    pub weights: PathBuf,
    /// The file's EMA weights instead of its plain ones.
    pub ema: bool,
    pub output: PathBuf,
    /// Rows per forward pass.
    pub batch: usize,
    /// Frames at DATA.TARGET_FPS between two rows (DATA.CLIP_INTERVAL).
    pub clip_interval: usize,
    /// Also write the classifier's logits (`cls/`).
    pub classifier: bool,
    /// Redo videos already finished in the folder.
    pub overwrite: bool,
}

/// What an extraction did.
#[derive(Debug, Clone, Default)]
pub struct ExtractSummary {
    pub videos: usize,
    pub extracted: usize,
    /// Finished by an earlier run, skipped.
    pub already_done: usize,
    /// `<video>: <why>` of each video that could not be read.
    pub failed: Vec<String>,
    pub clips: usize,
    pub rows: usize,
    /// Feature width C (per-view width times views).
    pub channels: i64,
    pub seconds: f64,
    /// Of which decoding, cropping and the model.
    pub timing: Timing,
}

/// The videos a `--videos` argument names: a text file of paths (one a line, `#` comments;
/// relative paths are relative to the file's folder), or a folder whose video files (by
/// extension) are taken in name order.
pub fn video_list(path: &Path) -> Result<Vec<PathBuf>, ExtractError> {
    let io = |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|e| {
                        VIDEO_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str())
                    })
            })
            .collect();
        v.sort();
        return Ok(v);
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let base = path.parent().unwrap_or(Path::new(""));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base.join(l))
        .collect())
}

/// Each video's name (its file stem); two videos of one name are refused, naming both.
pub fn video_names(videos: &[PathBuf]) -> Result<Vec<String>, ExtractError> {
    let mut names: Vec<String> = Vec::with_capacity(videos.len());
    for v in videos {
        let name = v
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty() || name.contains(',') {
            return Err(ExtractError::Invalid(format!(
                "{}: a video needs a name (its file stem) without commas",
                v.display()
            )));
        }
        if let Some(j) = names.iter().position(|n| *n == name) {
            return Err(ExtractError::Invalid(format!(
                "{} and {} are both named {name}: their feature files would collide",
                videos[j].display(),
                v.display()
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// Extracts the features of `opts.videos` with the config's model and `opts.weights` into
/// `opts.output`.
pub fn extract(
    loaded: &LoadedConfig,
    opts: &ExtractOptions,
) -> Result<ExtractSummary, ExtractError> {
    let t0 = Instant::now();
    let names = video_names(&opts.videos)?;
    if opts.clip_interval == 0 || opts.batch == 0 {
        return Err(ExtractError::Invalid(
            "--clip-interval and --batch must be at least 1".into(),
        ));
    }
    // Raw logits: the head's evaluation-mode activation (softmax by default) is turned off.
    let mut cfg = loaded.config.clone();
    cfg.video.head.activation = Activation::Identity;
    let session = load_model(&cfg, &opts.weights, opts.ema, opts.classifier)?;
    let model = &session.model;
    if opts.classifier && !has_classifier(model.head()) {
        return Err(ExtractError::Invalid(format!(
            "--classifier: VIDEO.HEAD.NAME {:?} has no classification layer",
            cfg.video.head.name
        )));
    }
    let clip = ClipSourceConfig::from_config(&cfg, Split::Test)
        .map_err(|e| ExtractError::Invalid(e.0))?
        .clip;
    let d = &cfg.data;
    let sampling = RowSampling {
        grid: RowGrid {
            interval: opts.clip_interval,
            target_fps: d.target_fps,
        },
        num_frames: d.num_input_frames,
        sampling_rate: d.sampling_rate,
    };
    let views = check_views_and_input(&cfg, &session, clip.test_crop_size)?;
    let width = model.backbone().out_features();
    let channels = width * views as i64;
    let meta = folder_meta(loaded, opts, views, width)?;
    let logit_widths = match opts.classifier {
        false => Vec::new(),
        true => logit_widths(model.head(), views as i64),
    };
    let mut folder = Folder::open(&opts.output, &meta, opts.overwrite, opts.classifier)?;
    let extractor = RowExtractor {
        session: &session,
        sampling,
        clip,
        views,
        batch: opts.batch,
        channels,
        logit_widths,
        frame_dir_fps: d.fps,
        timing: Default::default(),
    };
    let mut summary = ExtractSummary {
        videos: names.len(),
        channels,
        ..Default::default()
    };
    let mut progress = Progress::new("extract", names.len() as u64, 1);
    each_video(
        &extractor,
        &mut folder,
        opts,
        &names,
        &mut summary,
        &mut progress,
    )?;
    progress.finish();
    summary.seconds = t0.elapsed().as_secs_f64();
    summary.timing = extractor.timing.get();
    Ok(summary)
}

/// The spatial views per row (1 or 3), after checking that the model takes the test clips.
fn check_views_and_input(
    cfg: &crate::config::Config,
    session: &Session,
    crop: i64,
) -> Result<usize, ExtractError> {
    let views = cfg.test.num_spatial_crops.max(1) as usize;
    if views != 1 && views != 3 {
        return Err(ExtractError::Invalid(format!(
            "TEST.NUM_SPATIAL_CROPS is {views}; the test crops are 1 (centre) or 3"
        )));
    }
    let probe_input = Tensor::zeros(
        [1, 3, cfg.data.num_input_frames as i64, crop, crop],
        (Kind::Float, Device::Cpu),
    );
    session
        .model
        .check_input(&rows::model_input(session, &probe_input))
        .map_err(|e| ExtractError::Run(TrainError::Run(e.to_string())))?;
    Ok(views)
}

/// Extracts every video not done yet, counting into `summary`; an unreadable video is named
/// and skipped, a failure to write ends the run.
fn each_video(
    extractor: &RowExtractor<'_>,
    folder: &mut Folder,
    opts: &ExtractOptions,
    names: &[String],
    summary: &mut ExtractSummary,
    progress: &mut Progress,
) -> Result<(), ExtractError> {
    for (path, name) in opts.videos.iter().zip(names) {
        if !opts.overwrite && folder.is_done(name, &extractor.sampling.grid) {
            summary.already_done += 1;
            progress.inc(1, || format!("{name}: already done"));
            continue;
        }
        match one_video(extractor, folder, path, name)? {
            Ok((record, rows)) => {
                summary.clips += record.clips.len();
                summary.rows += rows;
                summary.extracted += 1;
                folder.finish(record, names)?;
            }
            Err(why) => {
                tracing::warn!("skipped {}: {why}", path.display());
                summary.failed.push(format!("{}: {why}", path.display()));
            }
        }
        progress.inc(1, || name.clone());
    }
    Ok(())
}

/// What made a feature folder (`features.json`), so two folders can be told apart and a rerun
/// with another model, weights, grid or crops is refused.
fn folder_meta(
    loaded: &LoadedConfig,
    opts: &ExtractOptions,
    views: usize,
    width: i64,
) -> Result<serde_json::Value, ExtractError> {
    let d = &loaded.config.data;
    let cfg = &loaded.config;
    let channels = width * views as i64;
    Ok(json!({
        "tada_version": env!("CARGO_PKG_VERSION"),
        "config": opts.config.display().to_string(),
        "weights": opts.weights.display().to_string(),
        "weights_sha256": sha256(&opts.weights)?,
        "ema": opts.ema,
        "backbone": format!("{:?}", cfg.video.backbone.meta_arch),
        "head": format!("{:?}", cfg.video.head.name),
        "feature": "the pooled backbone output the head's classifier sees (before dropout)",
        "channels": channels,
        "channels_per_view": width,
        "views": views,
        "view_order": "view-major: columns v*channels_per_view.. are spatial crop v",
        "clip_interval": opts.clip_interval,
        "target_fps": d.target_fps,
        "num_input_frames": d.num_input_frames,
        "sampling_rate": d.sampling_rate,
        "frame_folder_fps": d.fps,
        "test_scale": d.test_scale,
        "test_crop_size": d.test_crop_size,
        "mean": d.mean,
        "std": d.std,
        "clip_seconds": layout::CLIP_SECONDS,
        "classifier": opts.classifier,
        // As configured (the run itself turns the head's activation off for raw logits).
        "video": serde_json::to_value(&loaded.config.video).unwrap_or_default(),
    }))
}

/// Writes the clip files of the video at `path` one clip at a time (a long video's rows are
/// never all in memory) and returns its record and row count. The inner `Err` is a one-line
/// message for a video that cannot be read, whose files are then removed (it is reported and
/// skipped); the outer one a failure to write, which ends the run.
#[allow(clippy::type_complexity)]
fn one_video(
    extractor: &RowExtractor,
    folder: &Folder,
    path: &Path,
    name: &str,
) -> Result<Result<(layout::VideoRecord, usize), String>, ExtractError> {
    let info = match probe(path) {
        // A folder of frames carries no rate: DATA.FPS says it.
        Ok(i) if path.is_dir() => VideoInfo {
            fps: extractor.frame_dir_fps,
            ..i
        },
        Ok(i) => i,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let info = match info {
        i if i.frames > 0 && i.fps > 0.0 && i.fps.is_finite() => i,
        i => return Ok(Err(format!("{} frames at {} fps", i.frames, i.fps))),
    };
    let duration = info.frames as f64 / info.fps;
    let spans = clip_spans(&extractor.sampling.grid, duration);
    let mut rows = 0;
    for span in &spans {
        let ks = span.first_row..span.first_row + span.rows;
        let out = match extractor.rows(path, &info, ks) {
            Ok(out) => out,
            Err(why) => {
                folder.remove_clips(name, &spans);
                return Ok(Err(why));
            }
        };
        folder.write_clip(name, span, &out)?;
        rows += span.rows;
    }
    let record = layout::VideoRecord {
        name: name.to_string(),
        duration,
        clips: spans.iter().map(|s| (s.start_ms, s.end_ms)).collect(),
    };
    Ok(Ok((record, rows)))
}

/// The config's model with `weights` (their EMA weights with `ema`). Features need the
/// backbone only: a file without the head's weights (a pretrained backbone) is taken unless
/// the logits are asked for.
fn load_model(
    cfg: &crate::config::Config,
    weights: &Path,
    ema: bool,
    classifier: bool,
) -> Result<Session, TrainError> {
    let (session, report) = super::test::session_with_weights(cfg, weights, ema)?;
    let missing: Vec<&str> = report
        .missing
        .iter()
        .map(String::as_str)
        .filter(|n| classifier || n.starts_with("backbone."))
        .collect();
    if !missing.is_empty() {
        return Err(TrainError::Run(format!(
            "{} does not hold every weight the {} need; missing: {}",
            weights.display(),
            if classifier {
                "features and logits"
            } else {
                "features"
            },
            missing.join(", ")
        )));
    }
    Ok(session)
}

/// The SHA-256 of the file at `path`, in hex: it tells two checkpoints of one model apart.
fn sha256(path: &Path) -> Result<String, ExtractError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let io = |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The logits arrays of `head` and their row widths with `views` crops side by side.
fn logit_widths(head: &Head, views: i64) -> Vec<(String, i64)> {
    let per_head = head.outputs_per_head();
    let names = match per_head.len() {
        2 => vec![VERB, NOUN],
        _ => vec![rows::CLASS],
    };
    names
        .into_iter()
        .zip(per_head)
        .map(|(n, k)| (n.to_string(), views * k))
        .collect()
}

/// Whether the head ends in a classification layer whose logits `cls/` can hold.
fn has_classifier(head: &Head) -> bool {
    matches!(
        head,
        Head::Base(_) | Head::Transformer(_) | Head::BaseX2(_) | Head::TransformerX2(_)
    )
}
