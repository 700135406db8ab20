//! `tada extract-features` on tiny real videos: the layout BMN's feature reader expects (file
//! names, both lists, rows per clip by the centre rule), rows equal to the model's features of
//! the same clip computed directly, logits, resuming, and an unreadable video skipped.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use tada::data::dataset::Split;
use tada::data::sources::video_clips::ClipSourceConfig;
use tada::data::video::{read_frames, Resize};
use tada_augment::transforms::clip::{transform_clip, ClipView};
use tch::{Kind, Tensor};

use crate::common::{serial, stderr, stdout, tada, TINY_BACKBONE};
use crate::media::{ffmpeg, index_dir};

/// The grid of these tests: a row every 4 frames at 10 fps (0.4 s), clips of 4 frames every 2.
const INTERVAL: usize = 4;
const TARGET_FPS: f64 = 10.0;
const FRAMES: usize = 4;
const RATE: usize = 2;
/// The videos' own rate.
const VIDEO_FPS: f64 = 25.0;
/// Two-head model: 4 verbs, 3 nouns; 3 spatial crops of a 48 x 32 video.
const VERBS: i64 = 4;
const NOUNS: i64 = 3;
const VIEWS: i64 = 3;

fn config(dir: &Path) -> PathBuf {
    let yaml = format!(
        "{TINY_BACKBONE}  HEAD: {{NAME: BaseHeadx2, NUM_CLASSES: [{VERBS}, {NOUNS}], DROPOUT_RATE: 0.0}}
NUM_GPUS: 0
RANDOM_SEED: 3
DATA:
  NUM_INPUT_FRAMES: {FRAMES}
  SAMPLING_RATE: {RATE}
  TARGET_FPS: {TARGET_FPS}
  TEST_SCALE: 32
  TEST_CROP_SIZE: 32
TEST: {{NUM_SPATIAL_CROPS: {VIEWS}}}
"
    );
    let path = dir.join("extract.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Stripes that move with the frame number and differ across the frame, so that rows and
/// crops all differ.
const PATTERN: &str = "geq=lum='mod(7*X+3*Y+11*N,256)':cb='mod(5*X+13*N,256)':cr=128";

/// A `frames`-frame 25 fps 48 x 32 H.264 video of [`PATTERN`].
fn video(path: &Path, frames: usize) -> PathBuf {
    tada::data::video::index::set_cache_dir(index_dir());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let src = format!(
        "testsrc=size=48x32:rate=25:duration={}",
        frames as f64 / VIDEO_FPS
    );
    let p = path.to_string_lossy().into_owned();
    ffmpeg(&[
        "-f", "lavfi", "-i", &src, "-vf", PATTERN, "-g", "10", "-c:v", "libx264", "-pix_fmt",
        "yuv420p", &p,
    ]);
    path.to_path_buf()
}

/// The model of `cfg` with its initial weights, saved to `dir/w.safetensors`.
fn weights(cfg: &Path, dir: &Path) -> (tada::models::Session, PathBuf) {
    let _serial = serial();
    let loaded = tada::config::load(cfg, &[]).unwrap();
    let session = tada::models::Session::new(&loaded.config).unwrap();
    let path = dir.join("w.safetensors");
    session.vs.save(&path).unwrap();
    (session, path)
}

/// Rows of a `duration`-second video whose centre lies in `[start, end]`, by the rule written
/// out here on its own: centre of row k = (k·I + I − 1) / FPS, and no centre past the end.
fn rows_in(duration: f64, start: f64, end: f64) -> Vec<usize> {
    (0..10_000)
        .filter(|&k| {
            let c = (k * INTERVAL + INTERVAL - 1) as f64 / TARGET_FPS;
            c <= duration && c >= start && c <= end
        })
        .collect()
}

/// The video frames of row `k`'s clip: frame N/2 on the centre, every RATE frames at
/// TARGET_FPS, mapped to the video's frames and clamped.
fn row_frames(k: usize, frames: usize) -> Vec<usize> {
    let centre = (k * INTERVAL + INTERVAL - 1) as f64;
    (0..FRAMES)
        .map(|j| {
            let at = centre - (FRAMES * RATE) as f64 / 2.0 + (j * RATE) as f64;
            let f = (at / TARGET_FPS * VIDEO_FPS + 1e-6).floor();
            f.clamp(0.0, (frames - 1) as f64) as usize
        })
        .collect()
}

/// The model's features and softmaxed verb scores of crop `view` of row `k`, computed alone.
fn direct(
    session: &tada::models::Session,
    cfg: &Path,
    video: &Path,
    frames: usize,
    k: usize,
    view: usize,
) -> (Tensor, Tensor) {
    let loaded = tada::config::load(cfg, &[]).unwrap();
    let clip = ClipSourceConfig::from_config(&loaded.config, Split::Test)
        .unwrap()
        .clip;
    let f = read_frames(video, &row_frames(k, frames), Resize::None).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let view = ClipView::Test {
        index: view,
        count: VIEWS as usize,
    };
    let x = transform_clip(&f.to_tensor(), &clip, view, &mut rng)
        .unwrap()
        .clip
        .unsqueeze(0);
    let out = tch::no_grad(|| session.model.forward_t(&x, false));
    let verb = out.predictions.get("verb_class").unwrap().get(0);
    (out.features.get(0), verb)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn extracted_clips_follow_the_feature_zoo_layout_and_equal_the_models_features() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path());
    // 11.2 s: clips 0-5, 5-10, 10-11.2; 5.12 s: 0-5 only (the 0.12 s tail is too short).
    let long = video(&d.path().join("videos/long_one.mp4"), 280);
    video(&d.path().join("videos/short.mp4"), 128);
    let list = d.path().join("videos/list.txt");
    std::fs::write(&list, "long_one.mp4\n\nshort.mp4\n").unwrap();
    let (session, w) = weights(&cfg, d.path());
    let out = d.path().join("features");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "extract-features",
            "--config",
            cfg.to_str().unwrap(),
            "--weights",
            w.to_str().unwrap(),
            "--videos",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--clip-interval",
            "4",
            "--batch",
            "5",
            "--classifier",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        tada(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 extracted"), "{}", stdout(&o));

    assert_eq!(
        lines(&out.join("5s_clips.txt")),
        [
            "long_one,0,5000",
            "long_one,5000,10000",
            "long_one,10000,11200",
            "short,0,5000"
        ]
    );
    assert_eq!(
        lines(&out.join("epic_videos_len.txt")),
        ["long_one.MP4,11.2", "short.MP4,5.12"]
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("features.json")).unwrap()).unwrap();
    let width = meta["channels_per_view"].as_i64().unwrap();
    assert_eq!(width, 8);
    assert_eq!(meta["channels"].as_i64().unwrap(), VIEWS * width);
    assert_eq!(meta["clip_interval"], 4);

    let clips = [
        ("long_one", 11.2, 0.0, 5.0),
        ("long_one", 11.2, 5.0, 10.0),
        ("long_one", 11.2, 10.0, 11.2),
        ("short", 5.12, 0.0, 5.0),
    ];
    for (name, duration, start, end) in clips {
        let stem = format!("{name}_{}_{}", start * 1000.0, (end * 1000.0_f64).round());
        let f = Tensor::read_npy(out.join(format!("{stem}.npy"))).unwrap();
        let rows = rows_in(duration, start, end).len() as i64;
        assert_eq!(f.size(), [rows, VIEWS * width], "{stem}");
        assert_eq!(f.kind(), Kind::Float);
        let cls = Tensor::read_npz(out.join(format!("cls/{stem}.npz"))).unwrap();
        let shapes: Vec<(String, Vec<i64>)> =
            cls.iter().map(|(n, t)| (n.clone(), t.size())).collect();
        assert_eq!(
            shapes,
            [
                ("verb_class".to_string(), vec![rows, VIEWS * VERBS]),
                ("noun_class".to_string(), vec![rows, VIEWS * NOUNS]),
            ]
        );
    }
    assert!(!out.join("short_5000_5120.npy").exists());

    // Row 13 of the long video is the second row of its 5-10 s clip; rows of other views and
    // of the next row differ (the negative control of the comparison).
    let mid = Tensor::read_npy(out.join("long_one_5000_10000.npy")).unwrap();
    let cls = Tensor::read_npz(out.join("cls/long_one_5000_10000.npz")).unwrap();
    let first = rows_in(11.2, 5.0, 10.0)[0];
    let k = 13;
    let row = mid.get((k - first) as i64);
    for view in [0usize, 2] {
        let (feat, verb) = direct(&session, &cfg, &long, 280, k, view);
        let cols = row.narrow(0, view as i64 * width, width);
        assert!(
            max_diff(&cols, &feat) < 1e-5,
            "view {view}: {cols} vs {feat}"
        );
        let next = mid
            .get((k + 1 - first) as i64)
            .narrow(0, view as i64 * width, width);
        assert!(
            max_diff(&next, &feat) > 1e-3,
            "row {k} and the next are equal"
        );
        let other = row.narrow(0, (2 - view as i64) * width, width);
        assert!(max_diff(&other, &feat) > 1e-3, "views 0 and 2 are equal");
        // The file holds logits: their softmax is the model's verb scores.
        let logits = cls[0]
            .1
            .get((k - first) as i64)
            .narrow(0, view as i64 * VERBS, VERBS);
        assert!(max_diff(&logits.softmax(0, Kind::Float), &verb) < 1e-5);
        assert!(max_diff(&logits, &verb) > 1e-3, "probabilities, not logits");
    }
    // The long video's rows in time order across its clips: the 10-11.2 s clip starts with
    // row 25 of the direct computation.
    let last = Tensor::read_npy(out.join("long_one_10000_11200.npy")).unwrap();
    let (feat, _) = direct(&session, &cfg, &long, 280, 25, 1);
    assert!(max_diff(&last.get(0).narrow(0, width, width), &feat) < 1e-5);

    read_back_by_the_localisation_reader(&out, &mid);

    // A rerun skips both videos and leaves their files alone.
    let file = out.join("long_one_0_5000.npy");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("0 extracted"), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 already done"), "{}", stdout(&o));
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
    // --overwrite redoes them, to the same lists.
    let o = run(&["--overwrite"]);
    assert!(stdout(&o).contains("2 extracted"), "{}", stdout(&o));
    assert_eq!(lines(&out.join("5s_clips.txt")).len(), 4);
    // Another grid into the same folder is refused.
    let mut other = args(&[]);
    let at = other.iter().position(|a| a == "4").unwrap();
    other[at] = "5".into();
    let o = tada(&other.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("features.json differs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unreadable_video_is_named_and_skipped() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path());
    let good = video(&d.path().join("good.mp4"), 60);
    let bad = d.path().join("broken.mp4");
    std::fs::write(&bad, b"not a video at all, just text").unwrap();
    let list = d.path().join("list.txt");
    std::fs::write(&list, format!("{}\n{}\n", bad.display(), good.display())).unwrap();
    let (_, w) = weights(&cfg, d.path());
    let out = d.path().join("out");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "extract-features",
            "--config",
            cfg.to_str().unwrap(),
            "--weights",
            w.to_str().unwrap(),
            "--videos",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--clip-interval",
            "4",
        ];
        a.extend_from_slice(extra);
        tada(&a)
    };
    let o = run(&[]);
    // Exit status 1 after the readable videos are written, the bad one named on stderr.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("skipped") && err.contains("broken.mp4"),
        "{err}"
    );
    assert!(stdout(&o).contains("1 extracted") && stdout(&o).contains("1 unreadable"));
    assert_eq!(lines(&out.join("epic_videos_len.txt")), ["good.MP4,2.4"]);
    assert_eq!(lines(&out.join("5s_clips.txt")), ["good,0,2400"]);
    // One 3-crop row per 0.4 s centre up to 2.4 s, no logits without --classifier.
    let f = Tensor::read_npy(out.join("good_0_2400.npy")).unwrap();
    assert_eq!(f.size(), [rows_in(2.4, 0.0, 2.4).len() as i64, VIEWS * 8]);
    assert!(!out.join("cls").exists());
    // A later run may add the logits: the video without them is redone.
    let o = run(&["--classifier"]);
    assert!(stdout(&o).contains("1 extracted"), "{}", stdout(&o));
    assert!(out.join("cls/good_0_2400.npz").is_file());
}

#[test]
fn backbone_weights_alone_give_features_but_not_logits() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path());
    let clip = video(&d.path().join("v.mp4"), 30);
    let (session, _) = weights(&cfg, d.path());
    let backbone: Vec<(String, Tensor)> = session
        .vs
        .variables()
        .into_iter()
        .filter(|(n, _)| n.starts_with("backbone."))
        .collect();
    let w = d.path().join("backbone.safetensors");
    Tensor::write_safetensors(&backbone, &w).unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "extract-features",
            "--config",
            cfg.to_str().unwrap(),
            "--weights",
            w.to_str().unwrap(),
            "--videos",
            d.path().to_str().unwrap(),
            "-o",
        ];
        a.extend_from_slice(extra);
        tada(&a)
    };
    let out = d.path().join("out");
    let o = run(&[out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The folder given as --videos: its one video file.
    assert_eq!(lines(&out.join("5s_clips.txt")), ["v,0,1200"]);
    assert!(clip.exists());
    let o = run(&[d.path().join("out2").to_str().unwrap(), "--classifier"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("missing: head.linear1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_references_pyth_of_a_mosi_pretraining_extracts_directly() {
    let d = tempfile::tempdir().unwrap();
    // The reference's R(2+1)D MoSI checkpoint and its config (MoSINet, MoSIHeadJoint).
    let fixture = crate::common::fixtures_dir().join("r2p1d_mosi_joint.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let cfg = d.path().join("mosi.yaml");
    std::fs::write(&cfg, json["cfg"].to_string()).unwrap();
    let pyth = crate::common::fixtures_dir().join("r2p1d_mosi_joint.pyth");
    video(&d.path().join("v.mp4"), 30);
    let out = d.path().join("out");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "extract-features",
            "--config",
            cfg.to_str().unwrap(),
            "--weights",
            pyth.to_str().unwrap(),
            "--videos",
            d.path().to_str().unwrap(),
            "--set",
            "NUM_GPUS=0",
            "-o",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        tada(&a)
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("features.json")).unwrap()).unwrap();
    let width = meta["channels"].as_i64().unwrap();
    assert_eq!(width, json["cfg"]["VIDEO"]["BACKBONE"]["NUM_OUT_FEATURES"]);
    let f = Tensor::read_npy(out.join("v_0_1200.npy")).unwrap();
    assert_eq!(f.size()[1], width);
    // The MoSI head classifies motion, not actions: no logits to write.
    let o = run(&["--classifier", "--overwrite"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no classification layer"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_explains_every_flag() {
    let o = tada(&["extract-features", "--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let help = stdout(&o);
    for flag in [
        "--config <FILE>",
        "--set <KEY=VALUE>",
        "--weights <WEIGHTS>",
        "--videos <FILE|DIR>",
        "-o, --output <DIR>",
        "--batch <BATCH>",
        "--clip-interval <CLIP_INTERVAL>",
        "--classifier",
        "--overwrite",
        "--ema",
    ] {
        assert!(help.contains(flag), "{flag}:\n{help}");
    }
}

#[test]
fn a_tail_clip_without_a_row_is_an_empty_array() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path());
    // 10.24 s: the 10-10.24 s clip is long enough to be written, and no centre (9.9, 10.3)
    // falls in it.
    video(&d.path().join("videos/tail.mp4"), 256);
    let (_, w) = weights(&cfg, d.path());
    let out = d.path().join("out");
    let o = tada(&[
        "extract-features",
        "--config",
        cfg.to_str().unwrap(),
        "--weights",
        w.to_str().unwrap(),
        "--videos",
        d.path().join("videos").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--clip-interval",
        "4",
        "--classifier",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(rows_in(10.24, 10.0, 10.24).len(), 0);
    assert_eq!(
        lines(&out.join("5s_clips.txt")),
        ["tail,0,5000", "tail,5000,10000", "tail,10000,10240"]
    );
    let f = Tensor::read_npy(out.join("tail_10000_10240.npy")).unwrap();
    assert_eq!(f.size(), [0, VIEWS * 8]);
    let cls = Tensor::read_npz(out.join("cls/tail_10000_10240.npz")).unwrap();
    assert_eq!(cls[1].1.size(), [0, VIEWS * NOUNS]);
}

/// The folder through tada's BMN feature reader (src/localization/features): its index of the
/// lists finds every clip of an annotated video, and its file reader returns the rows and the
/// verb / noun logits as written (`mid`: the long video's 5-10 s features).
fn read_back_by_the_localisation_reader(out: &Path, mid: &Tensor) {
    use tada::config::schema::LoadType;
    use tada::localization::features::{FeatureFiles, FeatureIndex, Grid, IndexFiles};
    let csv = out.join("EPIC_100_validation.csv");
    std::fs::write(
        &csv,
        "video_id,start_timestamp,stop_timestamp,verb_class,noun_class\n\
         long_one,00:00:03.00,00:00:07.50,1,2\n",
    )
    .unwrap();
    let files = IndexFiles {
        annotations: csv,
        lengths: out.join("epic_videos_len.txt"),
        clips: out.join("5s_clips.txt"),
    };
    let index = FeatureIndex::read(
        &files,
        Grid {
            tscale: 10,
            dscale: 5,
        },
        false,
    )
    .unwrap();
    let videos: Vec<(&str, f64)> = index
        .videos
        .iter()
        .map(|v| (v.name.as_str(), v.duration))
        .collect();
    assert_eq!(videos, [("long_one", 11.2), ("short", 5.12)]);
    let mut stems: Vec<&str> = index
        .clips
        .values()
        .flatten()
        .map(|c| c.stem.as_str())
        .collect();
    stems.sort_unstable();
    assert_eq!(
        stems,
        [
            "long_one_0_5000",
            "long_one_10000_11200",
            "long_one_5000_10000",
            "short_0_5000"
        ]
    );
    let (clips, _) = index.clips_of(&index.windows[0]);
    assert_eq!(clips[0].stem, "long_one_0_5000");
    let reader = FeatureFiles {
        roots: vec![out.to_path_buf()],
        classifier_root: Some(out.join("cls")),
        load_type: LoadType::Numpy,
    };
    assert!(max_diff(&reader.rows("long_one_5000_10000").unwrap(), mid) == 0.0);
    let (verb, noun) = reader.classifier("long_one_5000_10000").unwrap().unwrap();
    assert_eq!(verb.size(), [mid.size()[0], VIEWS * VERBS]);
    assert_eq!(noun.size(), [mid.size()[0], VIEWS * NOUNS]);
}

#[test]
fn a_folder_of_frames_is_a_video_at_data_fps() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path());
    // 30 frames as JPEG files; at DATA.FPS 20 they last 1.5 s (at the video's 25 fps, 1.2 s).
    let frames = d.path().join("frames/kitchen");
    std::fs::create_dir_all(&frames).unwrap();
    let src = "testsrc=size=48x32:rate=25:duration=1.2";
    let pattern = frames.join("img_%05d.jpg");
    ffmpeg(&["-f", "lavfi", "-i", src, pattern.to_str().unwrap()]);
    let list = d.path().join("list.txt");
    std::fs::write(&list, "frames/kitchen\n").unwrap();
    let (_, w) = weights(&cfg, d.path());
    let out = d.path().join("out");
    let o = tada(&[
        "extract-features",
        "--config",
        cfg.to_str().unwrap(),
        "--weights",
        w.to_str().unwrap(),
        "--videos",
        list.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--clip-interval",
        "4",
        "--set",
        "DATA.FPS=20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&out.join("epic_videos_len.txt")), ["kitchen.MP4,1.5"]);
    let f = Tensor::read_npy(out.join("kitchen_0_1500.npy")).unwrap();
    assert_eq!(f.size()[0], rows_in(1.5, 0.0, 1.5).len() as i64);
}
