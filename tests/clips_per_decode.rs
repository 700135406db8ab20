//! Decode once, many clips: clips cut from one decode are byte-identical to the same clips
//! decoded one by one (and to the ffmpeg CLI's frames), the key-frame index saves decoding
//! between clips and is rebuilt when stale or corrupt, and DATA.CLIPS_PER_DECODE gives each
//! clip its own place in the batch without changing the frames the sampling rule picks.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tada::config::load_str;
use tada::data::dataset::{Entry, Split};
use tada::data::loader::{Loader, LoaderConfig, SampleSource};
use tada::data::sources::video_clips::{ClipSourceConfig, Sampling, VideoClips};
use tada::data::video::index::{self, forget_in_memory, keyframes_in, Found, KeyframeIndex};
use tada::data::video::{probe, read_clips_with, read_frames, Resize};
use tada_augment::transforms::clip::{transform_clip, ClipView};
use tada_augment::transforms::temporal::{interval_indices, TemporalView};

use crate::media::{cli_frames, make_video, Kind};

const W: usize = 64;
const H: usize = 48;

/// Overlapping clips, clips in separate groups of pictures (key frames every 10), repeats,
/// and the last frame.
fn clips() -> Vec<Vec<usize>> {
    vec![
        vec![3, 5, 7, 9],
        vec![30, 31, 33, 33],
        vec![45, 46, 47, 48, 49],
        vec![5, 6, 7],
    ]
}

#[test]
fn clips_from_one_decode_equal_clips_decoded_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Mp4, Kind::Avi] {
        let path = make_video(
            &dir.path().join(format!("v.{}", kind.ext())),
            kind,
            50,
            W,
            H,
        );
        let cli = cli_frames(&path, W, H);
        let together = read_clips_with(&path, Resize::None, |_| Ok(clips())).unwrap();
        assert_eq!(together.len(), 4);
        let mut alone_decoded = 0;
        for (c, clip) in clips().iter().enumerate() {
            let alone = read_frames(&path, clip, Resize::None).unwrap();
            alone_decoded += alone.decoded;
            assert_eq!(together[c].t, clip.len());
            assert!(
                together[c].data == alone.data,
                "{kind:?}: clip {c} differs from the same clip decoded alone"
            );
            for (k, &i) in clip.iter().enumerate() {
                assert!(
                    together[c].frame(k) == cli[i].as_slice(),
                    "{kind:?}: clip {c} frame {i} differs from the CLI's"
                );
            }
        }
        // Negative control: the comparison sees a frame off by one.
        assert!(together[1].frame(0) != cli[31].as_slice(), "{kind:?}");
        // One decode, seeking past the key frames between the clips (runs from 0, 30, 40):
        // fewer frames than decoding on from frame 3 to 49, and than the clips one by one.
        let decoded = together[0].decoded;
        assert!(
            decoded <= 30 && decoded < alone_decoded,
            "{kind:?}: {decoded} frames decoded together, {alone_decoded} one by one"
        );
        assert_eq!(together[1].decoded, 0, "counted on the first clip only");
    }
}

#[test]
fn a_stale_or_corrupt_index_is_rebuilt_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let video = dir.path().join("v.mp4");
    std::fs::write(&video, b"not really a video: only its size and time matter").unwrap();
    let made = |kf: i64| {
        move || {
            Some(KeyframeIndex {
                stream: 0,
                keyframes: vec![0, kf],
                packets: 50,
            })
        }
    };
    let found = |kf: i64| {
        forget_in_memory();
        let (i, f) = keyframes_in(&cache, &video, 0, made(kf)).unwrap();
        (i.keyframes[1], f)
    };
    assert_eq!(found(10), (10, Found::Built { saved: true }));
    // Read back from disk: the builder is not called (it would say 99).
    assert_eq!(found(99), (10, Found::Disk));
    // Corrupt: one digit changed, or the file cut short.
    let file = index::index_file(&cache, &video).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("0 10", "0 11")).unwrap();
    assert_eq!(found(12), (12, Found::Built { saved: true }));
    std::fs::write(&file, &text[..text.len() / 2]).unwrap();
    assert_eq!(found(13), (13, Found::Built { saved: true }));
    assert_eq!(found(99), (13, Found::Disk));
    // Stale: the video changed (size and time).
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&video, b"another file now").unwrap();
    assert_eq!(found(14), (14, Found::Built { saved: true }));
    // A cache folder that cannot be made: built and used, not saved.
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    forget_in_memory();
    let (i, f) = keyframes_in(&blocked.join("cache"), &video, 0, made(15)).unwrap();
    assert_eq!((i.keyframes[1], f), (15, Found::Built { saved: false }));
}

fn clip_source(k: usize, split: Split, entries: Vec<Entry>) -> VideoClips {
    let yaml = format!(
        "VIDEO: {{HEAD: {{NUM_CLASSES: 4}}}}\nTRAIN: {{DATASET: ucf101, BATCH_SIZE: {}}}\n\
         DATA: {{NUM_INPUT_FRAMES: 4, SAMPLING_RATE: 2, TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32, \
         TEST_SCALE: 32, TRAIN_JITTER_SCALES: [32, 40], CLIPS_PER_DECODE: {k}}}\n\
         TEST: {{NUM_ENSEMBLE_VIEWS: 3, NUM_SPATIAL_CROPS: 1}}\n",
        2 * k
    );
    let cfg = load_str(&yaml, "k.yaml", &[]).unwrap().config;
    VideoClips::new(entries, ClipSourceConfig::from_config(&cfg, split).unwrap())
}

fn entries(dir: &std::path::Path) -> Vec<Entry> {
    (0..2)
        .map(|v| Entry {
            path: make_video(&dir.join(format!("v{v}.mp4")), Kind::Mp4, 50, W, H),
            label: v as i64,
            id: format!("v{v}"),
        })
        .collect()
}

#[test]
fn repeated_clips_are_samples_of_their_own_and_one_clip_draws_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let videos = entries(dir.path());
    let one = clip_source(1, Split::Train, videos.clone());
    let two = clip_source(2, Split::Train, videos.clone());
    assert_eq!((one.clips_per_sample(), two.clips_per_sample()), (1, 2));
    // k = 1 draws as the clip reader always did: the frame indices from the sample's stream,
    // then the augmentation from where that left off.
    let a = one.get(1, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let info = probe(&videos[1].path).unwrap();
    let Sampling::Interval(s) = one.config().sampling else {
        panic!("interval sampling configured")
    };
    let idx = interval_indices(&s, info.frames, info.fps, TemporalView::Random, &mut rng);
    let idx: Vec<usize> = idx.into_iter().map(|i| i as usize).collect();
    let frames = read_frames(&videos[1].path, &idx, Resize::None).unwrap();
    let clip = &one.config().clip;
    let want = transform_clip(&frames.to_tensor(), clip, ClipView::Train, &mut rng).unwrap();
    assert!(
        a.input.equal(&want.clip),
        "k = 1 is the clip as drawn before"
    );
    let other = one.get(1, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
    assert!(
        !other.input.equal(&want.clip),
        "negative control: another seed"
    );
    let s = two.get(1, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
    // (2, 3, T, S, S) and one label per clip.
    assert_eq!(s.input.size(), [2, 3, 4, 32, 32]);
    assert_eq!(Vec::<i64>::try_from(&s.label).unwrap(), [1, 1]);
    assert!(
        !s.input.get(0).equal(&s.input.get(1)),
        "each clip its own draw"
    );
    // The loader: B = 4 clips = 2 videos x 2 clips, flattened in order.
    let cfg = LoaderConfig {
        batch_size: 2,
        num_workers: 0,
        shuffle: false,
        ..Default::default()
    };
    let loader = Loader::new(Arc::new(two), cfg);
    let batch = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!(batch.inputs.size(), [4, 3, 4, 32, 32]);
    assert_eq!(Vec::<i64>::try_from(&batch.labels).unwrap(), [0, 0, 1, 1]);
    assert_eq!(batch.indices, [0, 0, 1, 1]);
    assert_eq!(batch.views, [0, 1, 0, 1]);
    // Resumable and worker-independent: the same batch again from the same (seed, epoch),
    // with 0 or 2 workers.
    let again = loader.epoch(0).next().unwrap().unwrap();
    assert!(again.inputs.equal(&batch.inputs));
    let cfg = LoaderConfig {
        batch_size: 2,
        num_workers: 2,
        shuffle: false,
        ..Default::default()
    };
    let workers = Loader::new(Arc::new(clip_source(2, Split::Train, videos)), cfg);
    let parallel = workers.epoch(0).next().unwrap().unwrap();
    assert!(parallel.inputs.equal(&batch.inputs));
    assert!(parallel.labels.equal(&batch.labels));
}

#[test]
fn test_views_from_one_decode_equal_views_decoded_alone() {
    let dir = tempfile::tempdir().unwrap();
    let videos = entries(dir.path());
    let test = Arc::new(clip_source(1, Split::Test, videos));
    let rng = || ChaCha8Rng::seed_from_u64(0);
    // Views 0, 1, 2 of video 0 in one thread: the first decodes all three.
    let shared: Vec<_> = (0..3).map(|v| test.get(v, &mut rng()).unwrap()).collect();
    assert!(shared[1].decode_seconds == 0.0 && shared[2].decode_seconds == 0.0);
    // Each view alone, in a fresh thread (nothing kept).
    for (v, view) in shared.iter().enumerate() {
        let t = test.clone();
        let alone = std::thread::spawn(move || t.get(v, &mut rng()).unwrap())
            .join()
            .unwrap();
        assert!(alone.decode_seconds > 0.0);
        assert!(alone.input.equal(&view.input), "view {v}");
    }
    // Negative control: the views differ from each other.
    assert!(!shared[0].input.equal(&shared[2].input));
}

#[test]
fn clips_per_decode_is_checked_in_one_line() {
    let base = "VIDEO: {HEAD: {NUM_CLASSES: 4}}\nTRAIN: {DATASET: ucf101, BATCH_SIZE: 6}\n";
    let err = |extra: &str| {
        load_str(&format!("{base}{extra}"), "c.yaml", &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("DATA: {CLIPS_PER_DECODE: 4}\n");
    assert!(
        e.contains("DATA.CLIPS_PER_DECODE") && e.contains("BATCH_SIZE 6"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    assert_eq!(err("DATA: {CLIPS_PER_DECODE: 3}\n"), "");
    let e = err("DATA: {DECODER: nvdec}\n");
    assert!(
        e.contains("DATA.DECODER") && e.contains("not built yet"),
        "{e}"
    );
    assert_eq!(err("DATA: {DECODER: cpu}\n"), "");
    let e = err("DATA: {CLIPS_PER_DECODE: 2}\nPRETRAIN: {ENABLE: true}\n");
    assert!(e.contains("DATA.CLIPS_PER_DECODE"), "{e}");
}

/// Not a test but a measurement (docs/benchmarks.md#decode-once-many-clips-issue-18): frames
/// the decoder produces per useful frame, and decode + conversion speed, for 1, 2 and 4 clips
/// per decode over the videos under `$TADA_BENCH_VIDEOS` (16 frames at rate 4, as the loader
/// benchmark samples them). Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn decoded_frames_per_useful_frame() {
    use tada_augment::transforms::temporal::IntervalSampling;
    let Some(dir) = std::env::var_os("TADA_BENCH_VIDEOS") else {
        return eprintln!("set TADA_BENCH_VIDEOS to a folder of videos");
    };
    let files = video_files(std::path::Path::new(&dir));
    let s = IntervalSampling {
        num_frames: 16,
        sampling_rate: 4,
        target_fps: 30.0,
        minus_interval: false,
    };
    for k in [1usize, 2, 4] {
        let (mut decoded, mut useful, mut secs) = (0, 0, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
        for f in files.iter().cycle().take(6 * files.len()) {
            let t0 = std::time::Instant::now();
            let clips = read_clips_with(f, Resize::None, |info| {
                let draw = |_| {
                    let v = TemporalView::Random;
                    let idx = interval_indices(&s, info.frames, info.fps, v, &mut rng);
                    idx.into_iter().map(|i| i as usize).collect()
                };
                Ok((0..k).map(draw).collect())
            })
            .unwrap();
            secs += t0.elapsed().as_secs_f64();
            decoded += clips[0].decoded;
            useful += clips.iter().map(|c| c.t).sum::<usize>();
        }
        println!(
            "k = {k}: {:.2} frames decoded per useful frame; {:.0} useful, {:.0} decoded frames/s (decode + RGB)",
            decoded as f64 / useful as f64,
            useful as f64 / secs,
            decoded as f64 / secs
        );
    }
}

fn video_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(video_files(&p));
        } else if p.extension().is_some_and(|x| x == "mp4" || x == "avi") {
            out.push(p);
        }
    }
    out.sort();
    out
}
