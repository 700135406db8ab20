//! Video decoding through FFmpeg and from frame folders: the frames asked for, byte-equal to
//! the ffmpeg CLI, in every container the datasets ship; bad files named with the reason.

use tada::data::video::{probe, read_frames, DecodeError, Resize};

use crate::media::{cli_frames, make_video, mean, Kind};

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
    let short = make_video(&dir.path().join("short.avi"), Kind::Avi, 3, W, H);
    let whole = make_video(&dir.path().join("whole.avi"), Kind::Avi, 50, W, H);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.avi");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let empty = dir.path().join("empty.webm");
    std::fs::write(&empty, b"").unwrap();
    let paths = [
        good.clone(),
        dir.path().join("gone.mp4"),
        short,
        cut,
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
    let report = check_entries(&entries, 8, 3, &|_| {});
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
            ("short.avi", "too few frames"),
            ("cut.avi", "truncated"),
            ("empty.webm", "empty")
        ]
    );
}
