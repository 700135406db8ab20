//! MoSI with a video dataset as the static-image source: one random frame per video and read,
//! decided by the sample's RNG; unreadable videos skipped and counted; a short pretraining run
//! from a UCF101-format tree of real videos.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tada::data::dataset::{Entry, Split};
use tada::data::loader::{Loader, LoaderConfig, SampleSource};
use tada::data::sources::mosi_images::{ImageOrigin, MosiImages};
use tada::runs::{pretrain, RunOptions};
use tada::train::TrainOptions;
use tada_augment::mosi::MosiGenerator;

use crate::common::{write, TINY_BACKBONE};
use crate::media::{make_video, Kind};

/// Frames per test video; frame n has luma 16 + 4n (tests/media.rs).
const FRAMES: usize = 40;

/// 64x48 frames -> short side 48 -> a 48x48 square -> 32x32 windows; 4-frame clips. Colour
/// jitter and the static mask off, so a clip is the (uniform) frame it was cut from.
const MOSI: &str = "
PRETRAIN: {ENABLE: true, NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}
AUGMENTATION: {COLOR_AUG: false}
";

/// 3 speeds per axis, decoupled: 5 clips per image.
const HEAD: &str = "{NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: 0.0}";

fn source(entries: Vec<Entry>) -> MosiImages {
    let yaml = format!(
        "{MOSI}VIDEO: {{HEAD: {HEAD}}}
DATA: {{TRAIN_CROP_SIZE: 32}}
"
    );
    let cfg = tada::config::load_str(&yaml, "tiny.yaml", &[])
        .unwrap()
        .config;
    let generator = MosiGenerator::new(tada::tasks::mosi::generator_config(&cfg).unwrap()).unwrap();
    MosiImages::new(ImageOrigin::VideoFrames(entries), generator, Split::Train)
}

fn entry(path: PathBuf, id: &str) -> Entry {
    Entry {
        path,
        label: 0,
        id: id.into(),
    }
}

/// Two good videos, then an empty file and a cut-off mp4.
fn videos(dir: &Path) -> Vec<Entry> {
    let avi = make_video(&dir.join("a.avi"), Kind::Avi, FRAMES, 64, 48);
    let mp4 = make_video(&dir.join("b.mp4"), Kind::Mp4, FRAMES, 64, 48);
    let empty = write(dir, "empty.avi", "");
    let whole = std::fs::read(&mp4).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &whole[..whole.len() / 3]).unwrap();
    vec![
        entry(avi, "a"),
        entry(mp4, "b"),
        entry(empty, "empty"),
        entry(cut, "cut"),
    ]
}

/// The frame a uniform clip was cut from, from its normalised value (mean and std 0.45, 0.225;
/// limited-range luma 16 + 4n decodes to 4n·255/219).
fn frame_of(clips: &tch::Tensor) -> f64 {
    let v = clips.mean(tch::Kind::Double).double_value(&[]);
    (v * 0.225 + 0.45) * 255.0 / (4.0 * 255.0 / 219.0)
}

#[test]
fn the_frame_is_the_samples_first_draw_and_bad_videos_are_skipped() {
    let d = tempfile::tempdir().unwrap();
    let entries = videos(d.path());
    let bad: Vec<_> = entries[2..].iter().map(|e| e.path.clone()).collect();
    let src = source(entries);
    assert_eq!(src.len(), 4);

    let mut picked = std::collections::BTreeSet::new();
    for seed in 0..12u64 {
        let s = src.get(0, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        assert_eq!(s.input.size(), [5, 3, 4, 32, 32]);
        let again = src.get(0, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        assert!(s.input.equal(&again.input), "seed {seed}: not reproducible");
        let n = frame_of(&s.input);
        let want = ChaCha8Rng::seed_from_u64(seed).random_range(0..FRAMES);
        assert!(
            (n - want as f64).abs() < 0.3,
            "seed {seed}: clip cut from frame {n:.2}, the first draw is {want}"
        );
        picked.insert(want);
    }
    assert!(picked.len() >= 5, "frames drawn: {picked:?}");

    for (i, (path, why)) in bad
        .iter()
        .zip(["empty file", "not a readable video"])
        .enumerate()
    {
        let e = src
            .get(2 + i, &mut ChaCha8Rng::seed_from_u64(0))
            .expect_err("a bad video must be a sample error");
        assert!(
            e.what.contains(&format!("{}: {why}", path.display())),
            "{}",
            e.what
        );
    }

    // Through the loader: the bad videos are skipped and counted, the epoch goes on.
    let loader = Loader::new(
        Arc::new(src),
        LoaderConfig {
            batch_size: 2,
            num_workers: 2,
            seed: 5,
            max_bad_fraction: 0.5,
            ..LoaderConfig::default()
        },
    );
    let mut seen: Vec<usize> = loader.epoch(0).flat_map(|b| b.unwrap().indices).collect();
    seen.sort_unstable();
    assert_eq!(seen, [0, 1], "each good video once");
    assert_eq!(loader.bad_samples().count(), 2);
}

#[test]
fn mosi_pretraining_runs_on_a_ucf101_tree() {
    let _serial = crate::common::serial();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("UCF-101");
    let anno = d.path().join("ucfTrainTestlist");
    write(&anno, "classInd.txt", "1 Archery\n2 Biking\n");
    let mut train = String::new();
    for (i, kind) in [Kind::Avi, Kind::Mp4, Kind::Avi].into_iter().enumerate() {
        let class = ["Archery", "Biking"][i % 2];
        let rel = format!("{class}/v_{class}_g0{i}_c01.{}", kind.ext());
        make_video(&root.join(&rel), kind, FRAMES, 64, 48);
        train.push_str(&format!("{rel} {}\n", i % 2 + 1));
    }
    write(&root, "Biking/v_empty.avi", "");
    train.push_str("Biking/v_empty.avi 2\n");
    write(&anno, "trainlist01.txt", &train);
    let cfg = write(
        d.path(),
        "mosi_ucf.yaml",
        &format!(
            "{MOSI}
MODEL: {{NAME: MoSINet}}{TINY_BACKBONE}  HEAD: {HEAD}
TRAIN: {{DATASET: ucf101, BATCH_SIZE: 2, CHECKPOINT_PERIOD: 1}}
DATA: {{DATA_ROOT_DIR: '{}', ANNO_DIR: '{}', TRAIN_CROP_SIZE: 32}}
DATA_LOADER: {{NUM_WORKERS: 2, MAX_BAD_FRACTION: 0.5}}
OPTIMIZER: {{MAX_EPOCH: 3, WARMUP_EPOCHS: 0}}
NUM_GPUS: 0
LOG_PERIOD: 1
",
            root.display(),
            anno.display()
        ),
    );
    let loaded = tada::config::recipes::MOSI.load(&cfg, &[]).unwrap();
    let out = d.path().join("run");
    let opts = RunOptions {
        output: Some(out.clone()),
        weights: None,
        train: TrainOptions {
            max_steps: Some(3),
            handle_signals: false,
            ..TrainOptions::default()
        },
    };
    let s = pretrain(&loaded, &opts).unwrap();
    assert_eq!(s.steps, 3);
    assert!(
        s.losses.iter().all(|(_, l)| l.is_finite() && *l > 0.0),
        "{:?}",
        s.losses
    );
    let ckpt = s.checkpoint.expect("a checkpoint");
    assert!(ckpt.starts_with(out.join("checkpoints")) && ckpt.is_file());
    let last = tada::checkpoint::Checkpoint::load(&ckpt).unwrap();
    assert_eq!(last.run.step, 3);
}
