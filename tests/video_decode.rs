//! Video decoding through FFmpeg and from frame folders: the frames asked for, byte-equal to
//! the ffmpeg CLI, in every container the datasets ship; bad files named with the reason.

use tada::data::video::{probe, read_frames, DecodeError, Resize};

use crate::media::{cli_frames, make_video, make_video_with, mean, remux, Kind};

const W: usize = 64;
const H: usize = 48;

#[test]
fn every_container_decodes_the_requested_frames_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for kind in Kind::ALL {
        let path = make_video(
            &dir.path().join(format!("v.{}", kind.ext())),
            kind,
            50,
            W,
            H,
        );
        let info = probe(&path).unwrap();
        assert_eq!(info.frames, 50, "{kind:?}: {info:?}");
        assert_eq!(info.fps, 25.0, "{kind:?}");
        assert_eq!((info.width, info.height), (W as u32, H as u32));
        let cli = cli_frames(&path, W, H);
        assert_eq!(cli.len(), 50, "{kind:?}: the CLI decodes 50 frames");
        // Unsorted, repeated, across key frames (every 10), and the last frame: exercises the
        // seek to a key frame before the first index and decoding forward.
        let indices = [23, 7, 7, 31, 49, 10, 9];
        let got = read_frames(&path, &indices, Resize::None).unwrap();
        assert_eq!((got.t, got.height, got.width), (indices.len(), H, W));
        for (k, &i) in indices.iter().enumerate() {
            assert!(
                got.frame(k) == cli[i].as_slice(),
                "{kind:?}: frame {i} differs from the CLI's"
            );
        }
        // The content is the frame number: brightness rises by ~4.7 per frame.
        let late = read_frames(&path, &[40, 41, 42], Resize::None).unwrap();
        let m: Vec<f64> = (0..3).map(|k| mean(late.frame(k))).collect();
        assert!(m[0] < m[1] && m[1] < m[2], "{kind:?}: {m:?}");
        // Seeking: the decoder starts at the key frame before 45 (key frames every 10), not at 0.
        let one = read_frames(&path, &[45], Resize::None).unwrap();
        assert!(one.frame(0) == cli[45].as_slice(), "{kind:?}");
        assert!(
            one.decoded <= 12,
            "{kind:?}: decoded {} frames for frame 45",
            one.decoded
        );
        let first = read_frames(&path, &[0], Resize::None).unwrap();
        assert!(
            mean(late.frame(0)) - mean(first.frame(0)) > 150.0,
            "{kind:?}"
        );
    }
}

#[test]
fn short_side_resize_on_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_video(&dir.path().join("v.mp4"), Kind::Mp4, 20, 80, 60);
    let got = read_frames(&path, &[3, 4], Resize::ShortSide(30)).unwrap();
    assert_eq!((got.t, got.height, got.width), (2, 30, 40));
    let t = got.to_tensor();
    assert_eq!(t.size(), [2, 30, 40, 3]);
    assert!(mean(got.frame(1)) > mean(got.frame(0)));
}

#[test]
fn bad_files_are_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.mp4");
    let e = probe(&missing).unwrap_err();
    assert!(matches!(e, DecodeError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("nope.mp4") && e.to_string().contains("missing"));

    let empty = dir.path().join("empty.avi");
    std::fs::write(&empty, b"").unwrap();
    let e = read_frames(&empty, &[0], Resize::None).unwrap_err();
    assert!(matches!(e, DecodeError::Empty { .. }), "{e}");

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "this is not a video\n".repeat(50)).unwrap();
    let e = probe(&text).unwrap_err();
    assert!(matches!(e, DecodeError::Undecodable { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&text.display().to_string()),
        "{e}"
    );

    let png = dir.path().join("still.mp4");
    image::RgbImage::new(8, 8)
        .save_with_format(&png, image::ImageFormat::Png)
        .unwrap();
    let e = probe(&png).unwrap_err();
    assert!(matches!(e, DecodeError::NotAVideo { .. }), "{e}");
    assert_eq!(e.kind(), "not a video");

    let whole = make_video(&dir.path().join("whole.avi"), Kind::Avi, 50, W, H);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.avi");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // The header still claims 50 frames; the late ones are gone.
    let e = read_frames(&cut, &[2, 45], Resize::None).unwrap_err();
    assert!(
        matches!(e, DecodeError::Truncated { wanted: 45, .. }),
        "{e}"
    );
    assert_eq!(e.kind(), "truncated");
}

#[test]
fn frame_folders_read_like_videos() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("clip");
    std::fs::create_dir_all(&frames).unwrap();
    for n in 0..12u8 {
        let img = image::RgbImage::from_pixel(40, 30, image::Rgb([n * 20, 5, 200 - n * 10]));
        img.save(frames.join(format!("img_{:05}.png", n + 1)))
            .unwrap();
    }
    std::fs::write(frames.join("notes.txt"), "ignored").unwrap();
    let info = probe(&frames).unwrap();
    assert_eq!((info.frames, info.width, info.height), (12, 40, 30));
    let got = read_frames(&frames, &[11, 0, 5], Resize::None).unwrap();
    assert_eq!(&got.frame(0)[..3], &[220, 5, 90]);
    assert_eq!(&got.frame(1)[..3], &[0, 5, 200]);
    assert_eq!(&got.frame(2)[..3], &[100, 5, 150]);
    let e = read_frames(&frames, &[12], Resize::None).unwrap_err();
    assert!(
        matches!(e, DecodeError::Truncated { wanted: 12, .. }),
        "{e}"
    );
    let small = read_frames(&frames, &[1], Resize::ShortSide(15)).unwrap();
    assert_eq!((small.height, small.width), (15, 20));
}

#[test]
fn data_check_names_every_bad_file() {
    use tada::data::check::check_entries;
    use tada::data::dataset::Entry;
    let dir = tempfile::tempdir().unwrap();
    let good = make_video(&dir.path().join("good.mp4"), Kind::Mp4, 30, W, H);
    let text = dir.path().join("notes.avi");
    std::fs::write(&text, "this is not a video\n".repeat(50)).unwrap();
    let fifo = dir.path().join("pipe.webm");
    mkfifo(&fifo);
    let empty = dir.path().join("empty.webm");
    std::fs::write(&empty, b"").unwrap();
    let paths = [
        good.clone(),
        dir.path().join("gone.mp4"),
        text,
        fifo,
        empty,
        good,
    ];
    let entries: Vec<Entry> = paths
        .iter()
        .map(|p| Entry {
            path: p.clone(),
            label: 0,
            id: String::new(),
        })
        .collect();
    let report = check_entries(&entries, 3, &|_| {});
    assert_eq!(report.checked, 5, "the duplicate is checked once");
    let kinds: Vec<(&str, &str)> = report
        .bad
        .iter()
        .map(|(p, e)| (p.file_name().unwrap().to_str().unwrap(), e.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("gone.mp4", "missing"),
            ("notes.avi", "undecodable"),
            ("pipe.webm", "not a regular file"),
            ("empty.webm", "empty")
        ]
    );
}

/// Clips of 8 frames, training and test views.
const CLIPS: &str = "
VIDEO: {HEAD: {NUM_CLASSES: 2}}
DATA:
  NUM_INPUT_FRAMES: 8
  SAMPLING_RATE: 2
  TARGET_FPS: 25
  TRAIN_JITTER_SCALES: [32, 40]
  TRAIN_CROP_SIZE: 32
  TEST_SCALE: 32
  TEST_CROP_SIZE: 32
TEST: {NUM_ENSEMBLE_VIEWS: 3, NUM_SPATIAL_CROPS: 1}
";

#[test]
fn data_check_accepts_exactly_what_training_reads() {
    use rand::SeedableRng;
    use tada::data::check::check_file;
    use tada::data::dataset::{Entry, Split};
    use tada::data::loader::SampleSource;
    use tada::data::sources::video_clips::{ClipSourceConfig, VideoClips};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (file, usable): videos shorter than a clip are usable (indices repeat the last frame).
    let mut files = vec![
        (make_video(&d.join("one.mp4"), Kind::Mp4, 1, W, H), true),
        (make_video(&d.join("one.avi"), Kind::Avi, 1, W, H), true),
        (make_video(&d.join("two.webm"), Kind::Webm, 2, W, H), true),
        (make_video(&d.join("three.avi"), Kind::Avi, 3, W, H), true),
        (make_video(&d.join("forty.mp4"), Kind::Mp4, 40, W, H), true),
    ];
    let pipe = ["-f", "matroska", "pipe:1"];
    files.push((
        make_video_with(&d.join("piped.mkv"), Kind::Mp4, 12, (W, H), "", &pipe),
        true,
    ));
    let whole = make_video(&d.join("whole.webm"), Kind::Webm, 50, W, H);
    let offset = remux(
        &whole,
        &d.join("offset.webm"),
        &[],
        &["-output_ts_offset", "100"],
    );
    files.push((offset, true));
    std::fs::write(d.join("empty.mp4"), b"").unwrap();
    files.push((d.join("empty.mp4"), false));
    let cfg = tada::config::load_str(CLIPS, "clips.yaml", &[])
        .unwrap()
        .config;
    for (path, usable) in &files {
        let checked = check_file(path);
        assert_eq!(
            checked.is_ok(),
            *usable,
            "data check on {}: {checked:?}",
            path.display()
        );
        let entries = vec![Entry {
            path: path.clone(),
            label: 1,
            id: String::new(),
        }];
        for split in [Split::Train, Split::Test] {
            let clips = VideoClips::new(
                entries.clone(),
                ClipSourceConfig::from_config(&cfg, split).unwrap(),
            );
            for (view, seed) in (0..clips.len()).zip(0..) {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let got = clips.get(view, &mut rng);
                assert_eq!(
                    got.is_ok(),
                    *usable,
                    "{split:?} view {view} of {}: {:?}",
                    path.display(),
                    got.as_ref().err().map(|e| &e.what)
                );
                if let Ok(s) = got {
                    assert_eq!(s.input.size(), [3, 8, 32, 32], "{}", path.display());
                }
            }
        }
    }
}

/// Every frame of `path` read one by one (each read seeks on its own), and all at once, equal to
/// the CLI's frames in presentation order.
fn assert_reads_like_the_cli(path: &std::path::Path, frames: usize) {
    let info = probe(path).unwrap_or_else(|e| panic!("{e}"));
    let cli = cli_frames(path, 32, 32);
    assert_eq!(cli.len(), frames, "{}: the CLI's frames", path.display());
    assert_eq!(info.frames, frames, "{}: {info:?}", path.display());
    let all: Vec<usize> = (0..frames).collect();
    let got = read_frames(path, &all, Resize::None).unwrap_or_else(|e| panic!("{e}"));
    for (i, want) in cli.iter().enumerate() {
        assert!(
            got.frame(i) == want.as_slice(),
            "{}: frame {i}",
            path.display()
        );
    }
    for i in [frames - 1, frames / 2, 1]
        .into_iter()
        .filter(|&i| i < frames)
    {
        let one = read_frames(path, &[i], Resize::None).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            one.frame(0) == cli[i].as_slice(),
            "{}: frame {i} alone",
            path.display()
        );
    }
    tada::data::check::check_file(path).unwrap_or_else(|e| panic!("data check: {e}"));
}

#[test]
fn late_first_timestamps_index_from_the_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, ext) in [(Kind::Mp4, "mkv"), (Kind::Webm, "webm")] {
        let src = make_video(&dir.path().join(format!("src.{ext}")), kind, 40, 32, 32);
        // A timestamp offset, and a `-c copy` cut that keeps the source's timestamps: both start
        // late, and Matroska then stores the last timestamp as the duration.
        let offset = remux(
            &src,
            &dir.path().join(format!("offset.{ext}")),
            &[],
            &["-output_ts_offset", "100"],
        );
        assert_reads_like_the_cli(&offset, 40);
        let cut = remux(
            &src,
            &dir.path().join(format!("cut.{ext}")),
            &["-ss", "0.5"],
            &["-copyts"],
        );
        let n = cli_frames(&cut, 32, 32).len();
        assert!((20..40).contains(&n), "{ext}: the cut kept {n} frames");
        assert_reads_like_the_cli(&cut, n);
    }
}

#[test]
fn variable_frame_rate_frames_are_indexed_by_position() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["mp4", "mkv"] {
        // Five frames 40 ms apart, then fifteen 120 ms apart.
        let path = make_video_with(
            &dir.path().join(format!("vfr.{ext}")),
            Kind::Mp4,
            20,
            (32, 32),
            ",setpts='if(lt(N,5),N,N*3)/25/TB'",
            &["-fps_mode", "vfr"],
        );
        assert_reads_like_the_cli(&path, 20);
    }
}

#[test]
fn files_without_duration_or_timestamps_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = ["-f", "matroska", "pipe:1"];
    let piped_mkv = make_video_with(
        &dir.path().join("piped.mkv"),
        Kind::Mp4,
        10,
        (32, 32),
        "",
        &pipe,
    );
    assert_reads_like_the_cli(&piped_mkv, 10);
    let pipe = ["-f", "webm", "pipe:1"];
    let piped_webm = make_video_with(
        &dir.path().join("piped.webm"),
        Kind::Webm,
        10,
        (32, 32),
        "",
        &pipe,
    );
    assert_reads_like_the_cli(&piped_webm, 10);
    // A raw H.264 bitstream named .mp4: no container, no timestamps.
    let raw = make_video_with(
        &dir.path().join("raw.mp4"),
        Kind::Mp4,
        10,
        (32, 32),
        "",
        &["-f", "h264"],
    );
    assert_reads_like_the_cli(&raw, 10);
    // Past the counted end: named as such, with the count.
    let e = read_frames(&raw, &[10], Resize::None).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::Truncated {
                wanted: 10,
                decoded: 10,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn one_and_two_frame_videos_read() {
    let dir = tempfile::tempdir().unwrap();
    for kind in Kind::ALL {
        for frames in [1, 2] {
            let path = make_video(
                &dir.path().join(format!("{frames}.{}", kind.ext())),
                kind,
                frames,
                32,
                32,
            );
            assert_reads_like_the_cli(&path, frames);
            let got = read_frames(&path, &[0, frames - 1, 0], Resize::None).unwrap();
            assert_eq!(got.t, 3, "{kind:?}");
        }
    }
}

#[test]
fn a_file_damaged_inside_is_named_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let whole = make_video(&dir.path().join("whole.mp4"), Kind::Mp4, 50, W, H);
    let mut bytes = std::fs::read(&whole).unwrap();
    // Garbage over the middle of the file (H.264 packets whose sizes no longer fit): the frames
    // before and after it are intact.
    let mid = bytes.len() / 2;
    bytes[mid - 100..mid + 100].fill(0x55);
    let bad = dir.path().join("damaged.mp4");
    std::fs::write(&bad, &bytes).unwrap();
    let all: Vec<usize> = (0..50).collect();
    let e = read_frames(&bad, &all, Resize::None).unwrap_err();
    assert_eq!(e.kind(), "corrupt", "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&bad.display().to_string()) && msg.contains("damaged inside"),
        "{msg}"
    );
}

/// Runs `f` on a thread; fails the test when it has not returned within 20 s (after unblocking
/// a reader stuck opening `fifo`, so the thread ends).
fn promptly<T: Send + 'static>(
    fifo: &std::path::Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(v) => v,
        Err(_) => {
            use std::os::unix::fs::OpenOptionsExt;
            // A writer end opened and closed again lets the blocked open return (at EOF).
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo);
            panic!("reading {} hung", fifo.display());
        }
    }
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn a_fifo_named_as_a_video_fails_promptly_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.mp4");
    mkfifo(&fifo);
    let p = fifo.clone();
    let (probed, read, checked) = promptly(&fifo, move || {
        (
            probe(&p).map(|_| ()),
            read_frames(&p, &[0], Resize::None).map(|_| ()),
            tada::data::check::check_file(&p),
        )
    });
    for e in [probed, read, checked] {
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("pipe.mp4") && msg.contains("FIFO"), "{msg}");
    }
}

#[test]
fn special_files_in_a_frame_folder_fail_promptly_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    // A FIFO, and a link to a device, named as frames.
    let frames = dir.path().join("clip");
    std::fs::create_dir_all(&frames).unwrap();
    for n in 0..4 {
        image::RgbImage::new(8, 8)
            .save(frames.join(format!("img_{n:05}.png")))
            .unwrap();
    }
    let fifo = frames.join("img_00002.jpg");
    mkfifo(&fifo);
    let f = frames.clone();
    let (probed, read) = promptly(&fifo, move || {
        (
            probe(&f).map(|_| ()),
            read_frames(&f, &[0, 1, 2], Resize::None).map(|_| ()),
        )
    });
    for e in [probed, read] {
        let e = e.unwrap_err();
        assert_eq!(e.kind(), "not a regular file", "{e}");
        assert!(e.to_string().contains("img_00002.jpg"), "{e}");
    }
    std::fs::remove_file(&fifo).unwrap();
    std::os::unix::fs::symlink("/dev/zero", frames.join("img_00009.png")).unwrap();
    let e = read_frames(&frames, &[0], Resize::None).unwrap_err();
    assert!(
        e.to_string().contains("img_00009.png") && e.to_string().contains("character device"),
        "{e}"
    );
}
