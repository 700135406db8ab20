//! tiny-tal: an embedded EPIC-Kitchens-100 localisation dataset in the reference's published
//! layout, generated on disk so that the whole localisation path (training, `tada localize`,
//! evaluation) runs without the real features. Each video's feature rows are Gaussian noise
//! with a shared "action" direction added inside its planted segments; its classifier results
//! score the segment's verb and noun above the rest (three noisy views each). See
//! docs/localization.md#tiny-tal.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::features::files::{NOUN_KEY, VERB_KEY};
use super::features::index::CLIP_SECONDS;
use super::features::Centres;

/// Sizes of a tiny-tal dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinySpec {
    pub train_videos: usize,
    pub val_videos: usize,
    /// Feature dimensions (DATA.NUM_INPUT_CHANNELS).
    pub channels: usize,
    pub verbs: usize,
    pub nouns: usize,
    /// Standard deviation of the background noise (the action direction has unit entries).
    pub noise: f64,
    pub seed: u64,
}

impl Default for TinySpec {
    fn default() -> Self {
        Self {
            train_videos: 12,
            val_videos: 4,
            channels: 16,
            verbs: 4,
            nouns: 5,
            noise: 0.7,
            seed: 11,
        }
    }
}

/// Where a written dataset is.
#[derive(Debug, Clone)]
pub struct TinyDataset {
    pub anno_dir: PathBuf,
    pub features_dir: PathBuf,
    pub classifier_dir: PathBuf,
}

/// The rows of tiny-tal: every 8 frames at 60 fps, as bmn_epic's features.
pub const CENTRES: Centres = Centres {
    interval: 8,
    fps: 60.0,
};
/// The ground-truth JSON's name (DATA.ANNO_NAME).
pub const ANNO_NAME: &str = "EPIC_100_validation.json";
const LENGTHS: &str = "epic_videos_len.txt";
const CLIPS: &str = "5s_clips.txt";

const HEADER: &str = "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,\
stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,\
all_noun_classes";

/// One planted segment (seconds, on a 0.01 s grid as the published timestamps).
struct Planted {
    start: f64,
    end: f64,
    verb: usize,
    noun: usize,
}

fn timestamp(s: f64) -> String {
    let cs = (s * 100.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:02}",
        cs / 360_000,
        cs / 6000 % 60,
        cs / 100 % 60,
        cs % 100
    )
}

fn gaussian(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Segments of 0.8 to 2.4 s with gaps of at least 0.8 s, from 0.5 s after the start.
fn plant(rng: &mut impl Rng, duration: f64, spec: &TinySpec) -> Vec<Planted> {
    let mut out = Vec::new();
    let mut t: f64 = 0.5 + rng.random_range(0.0..1.5);
    loop {
        let len = (rng.random_range(0.8f64..2.4) * 100.0).round() / 100.0;
        let start = (t * 100.0).round() / 100.0;
        if start + len > duration - 0.5 {
            return out;
        }
        out.push(Planted {
            start,
            end: start + len,
            verb: rng.random_range(0..spec.verbs),
            noun: rng.random_range(0..spec.nouns),
        });
        t = start + len + rng.random_range(0.8..3.0);
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{}: {e}", path.display()))
}

/// Writes tiny-tal under `dir`: `annotations/` (both lists, lengths, clips, ground-truth JSON),
/// `features/` (`.npy` rows per 5-second clip) and `classifier/` (`.npz` per clip).
pub fn write(dir: &Path, spec: &TinySpec) -> std::io::Result<TinyDataset> {
    let d = TinyDataset {
        anno_dir: dir.join("annotations"),
        features_dir: dir.join("features"),
        classifier_dir: dir.join("classifier"),
    };
    for p in [&d.anno_dir, &d.features_dir, &d.classifier_dir] {
        std::fs::create_dir_all(p)?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let direction: Vec<f64> = (0..spec.channels)
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect();
    let (mut lengths, mut clips) = (String::new(), String::new());
    let mut lists = [HEADER.to_string(), HEADER.to_string()];
    let mut database = serde_json::Map::new();
    for v in 0..spec.train_videos + spec.val_videos {
        let val = v >= spec.train_videos;
        let name = format!("P{:02}_{:02}", 1 + v / 10, v % 10 + 1);
        let duration = (rng.random_range(16.0..30.0) * 100.0_f64).round() / 100.0;
        let planted = plant(&mut rng, duration, spec);
        let _ = writeln!(lengths, "{name}.MP4,{duration}");
        let mut annotations = Vec::new();
        for (k, p) in planted.iter().enumerate() {
            let _ = write!(
                lists[usize::from(val)],
                "\n{name}_{k},{},{name},{},{},{},0,0,action,verb{},{},noun{},{},\"['noun{}']\",[{}]",
                &name[..3],
                timestamp(p.start),
                timestamp(p.start),
                timestamp(p.end),
                p.verb,
                p.verb,
                p.noun,
                p.noun,
                p.noun,
                p.noun
            );
            annotations.push(serde_json::json!({
                "label": format!("{},{}", p.verb, p.noun),
                "segment": [p.start, p.end],
            }));
        }
        if val {
            database.insert(
                name.clone(),
                serde_json::json!({"subset": "validation", "duration": duration,
                                   "annotations": annotations}),
            );
        }
        clips.push_str(&write_clips(
            &d, &name, duration, &planted, &direction, spec, &mut rng,
        )?);
    }
    std::fs::write(d.anno_dir.join(LENGTHS), lengths)?;
    std::fs::write(d.anno_dir.join(CLIPS), clips)?;
    std::fs::write(d.anno_dir.join("EPIC_100_train.csv"), &lists[0])?;
    std::fs::write(d.anno_dir.join("EPIC_100_validation.csv"), &lists[1])?;
    let gt = serde_json::json!({"version": "tiny-tal", "taxonomy": [], "database": database});
    std::fs::write(d.anno_dir.join(ANNO_NAME), gt.to_string())?;
    Ok(d)
}

/// Writes one video's 5-second clip files (features and classifier results) and returns its
/// clip-list lines.
fn write_clips(
    d: &TinyDataset,
    name: &str,
    duration: f64,
    planted: &[Planted],
    direction: &[f64],
    spec: &TinySpec,
    rng: &mut ChaCha8Rng,
) -> std::io::Result<String> {
    let mut lines = String::new();
    let centres = CENTRES.up_to(duration);
    let mut m = 0;
    while (m * CLIP_SECONDS) as f64 <= duration {
        let (c0, c1) = ((m * CLIP_SECONDS) as f64, ((m + 1) * CLIP_SECONDS) as f64);
        let c1 = c1.min(duration);
        m += 1;
        if c1 - c0 < 0.2 {
            continue;
        }
        let stem = format!(
            "{name}_{}_{}",
            (c0 * 1000.0).round() as i64,
            (c1 * 1000.0).round() as i64
        );
        let _ = writeln!(
            lines,
            "{name},{},{}",
            (c0 * 1000.0).round() as i64,
            (c1 * 1000.0).round() as i64
        );
        let times: Vec<f64> = centres
            .iter()
            .map(|&c| f64::from(c))
            .filter(|&c| c >= c0 && c <= c1)
            .collect();
        let (mut rows, mut verbs, mut nouns) = (Vec::new(), Vec::new(), Vec::new());
        for &t in &times {
            let inside = planted.iter().find(|p| t >= p.start && t <= p.end);
            rows.extend(direction.iter().map(|&dir| {
                let signal = if inside.is_some() { dir } else { 0.0 };
                (signal + spec.noise * gaussian(rng)) as f32
            }));
            for (out, k, hit) in [
                (&mut verbs, spec.verbs, inside.map(|p| p.verb)),
                (&mut nouns, spec.nouns, inside.map(|p| p.noun)),
            ] {
                for _view in 0..3 {
                    for c in 0..k {
                        let boost = if hit == Some(c) { 3.0 } else { 0.0 };
                        out.push((boost + gaussian(rng)) as f32);
                    }
                }
            }
        }
        let n = times.len() as i64;
        let rows = Tensor::from_slice(&rows).reshape([n, spec.channels as i64]);
        let f = d.features_dir.join(format!("{stem}.npy"));
        rows.write_npy(&f).map_err(|e| io(&f, e))?;
        let verbs = Tensor::from_slice(&verbs).reshape([n, 3 * spec.verbs as i64]);
        let nouns = Tensor::from_slice(&nouns).reshape([n, 3 * spec.nouns as i64]);
        let f = d.classifier_dir.join(format!("{stem}.npz"));
        Tensor::write_npz(&[(VERB_KEY, &verbs), (NOUN_KEY, &nouns)], &f).map_err(|e| io(&f, e))?;
    }
    Ok(lines)
}

/// A BMN config for tiny-tal at `d` (small widths, T 16, D 8; CPU).
pub fn config_yaml(d: &TinyDataset, spec: &TinySpec) -> String {
    format!(
        "TASK_TYPE: localization
NUM_GPUS: 0
TRAIN: {{ENABLE: true, DATASET: Epickitchen100Localization, BATCH_SIZE: 16, EVAL_PERIOD: 0, CHECKPOINT_PERIOD: 10}}
TEST: {{ENABLE: true, DATASET: Epickitchen100Localization, BATCH_SIZE: 16, TEST_SET: val}}
DATA:
  DATA_ROOT_DIR: [{features}]
  ANNO_DIR: {anno}
  ANNO_NAME: {ANNO_NAME}
  VIDEO_LENGTH_FILE: {LENGTHS}
  CLIPS_LIST_FILE: {CLIPS}
  LOAD_TYPE: numpy
  TEMPORAL_SCALE: 16
  DURATION_SCALE: 8
  NUM_INPUT_CHANNELS: {channels}
  TARGET_FPS: {fps}
  CLIP_INTERVAL: {interval}
  LABELS_TYPE: bmn
  CLASSIFIER_ROOT_DIR: {classifier}
  LOAD_CLASSIFIER_RES: true
DATA_LOADER: {{NUM_WORKERS: 2}}
VIDEO:
  DIM1D: 32
  DIM2D: 16
  DIM3D: 32
  BACKBONE_LAYER: 2
  BACKBONE_GROUPS_NUM: 4
  BACKBONE: {{META_ARCH: SimpleLocalizationConv}}
  HEAD: {{NAME: BaseBMN, NUM_SAMPLE: 4, NUM_SAMPLE_PERBIN: 3, BOUNDARY_RATIO: 0.5, ACTIVATION: sigmoid}}
LOCALIZATION:
  ENABLE: true
  LOSS: Tem+PemReg+PemCls
  LOSS_WEIGHTS: [1, 10, 1]
  POST_PROCESS: {{PROP_NUM_RATIO: 1.0, SOFT_NMS_ALPHA: 0.4, SOFT_NMS_LOW_THRES: 0.25, SOFT_NMS_HIGH_THRES: 0.9, SELECT_SCORE: 0.0, CLR_POWER: 1.2, REG_POWER: 1.0}}
OPTIMIZER: {{OPTIM_METHOD: adam, BASE_LR: 0.003, ADJUST_LR: false, LR_POLICY: cosine, MAX_EPOCH: 30, WARMUP_EPOCHS: 0, WEIGHT_DECAY: 0.0001}}
BN: {{WEIGHT_DECAY: 0.0}}
",
        features = d.features_dir.display(),
        anno = d.anno_dir.display(),
        classifier = d.classifier_dir.display(),
        channels = spec.channels,
        fps = CENTRES.fps,
        interval = CENTRES.interval,
    )
}
