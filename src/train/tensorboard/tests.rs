//! Writer/reader round trips, corruption handling, and (optionally) a
//! cross-check against TensorBoard's own Python loader.

use std::fs;
use std::path::{Path, PathBuf};

use super::proto::event::What;
use super::proto::summary::value::Value;
use super::*;

const WIDE_W: u32 = 40;
const WIDE_H: u32 = 24;

/// Deterministic HWC RGB test pattern in which every row and column differs,
/// so a transposed or mis-strided image cannot match.
fn pattern(height: u32, width: u32, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity((height * width * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            out.push((x * 6 + y) as u8);
            out.push((y * 10 + 1) as u8);
            out.push(seed.wrapping_add(x as u8));
        }
    }
    out
}

fn lr(step: i64) -> f32 {
    0.1 * 0.9f32.powi(step as i32)
}

fn loss(step: i64) -> f32 {
    1.0 / (step as f32 + 1.0)
}

/// Writes the shared fixture: scalars for two tags at steps 0..20 and
/// images at steps 0, 5 and 10. Steps never decrease, because TensorBoard
/// treats a decreasing step as a restart and discards later data.
fn write_fixture(logdir: &Path) -> PathBuf {
    let mut w = EventWriter::new(logdir).unwrap();
    for step in 0..20 {
        w.add_scalar("loss/train", loss(step), step).unwrap();
        w.add_scalar("lr", lr(step), step).unwrap();
        if step == 0 || step == 10 {
            let rgb = pattern(WIDE_H, WIDE_W, step as u8);
            w.add_image("samples/wide", &rgb, WIDE_H, WIDE_W, step)
                .unwrap();
        }
        if step == 5 {
            let rgb = pattern(WIDE_W, WIDE_H, 7);
            w.add_image("samples/tall", &rgb, WIDE_W, WIDE_H, step)
                .unwrap();
        }
    }
    let path = w.path().to_path_buf();
    drop(w); // exercises flush-on-drop
    path
}

#[test]
fn file_name_and_header_event() {
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("nested/run");
    let a = EventWriter::new(&logdir).unwrap();
    let b = EventWriter::new(&logdir).unwrap();
    assert_ne!(
        a.path(),
        b.path(),
        "second writer must not clobber the first"
    );

    let name = a.path().file_name().unwrap().to_str().unwrap().to_owned();
    let parts: Vec<&str> = name.split('.').collect();
    assert_eq!(&parts[..3], ["events", "out", "tfevents"]);
    assert!(parts[3].parse::<u64>().unwrap() > 1_600_000_000);
    assert_eq!(parts[parts.len() - 2], std::process::id().to_string());
    assert_eq!(parts[parts.len() - 1], "tada");

    // The header is flushed by `new`, before any explicit flush.
    let events = read_events(a.path()).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into()))
    );
    assert!(events[0].wall_time > 1.6e9);
}

#[test]
fn scalars_and_non_square_image_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path());

    let got = scalars(&path).unwrap();
    let mut want = Vec::new();
    for step in 0..20 {
        want.push(("loss/train".to_owned(), step, loss(step)));
        want.push(("lr".to_owned(), step, lr(step)));
    }
    // Exact equality is intended: the f32 bits must survive untouched.
    assert_eq!(got, want);

    let imgs = images(&path).unwrap();
    let shapes: Vec<(&str, i64, i32, i32)> = imgs
        .iter()
        .map(|(t, s, h, w, _)| (t.as_str(), *s, *h, *w))
        .collect();
    assert_eq!(
        shapes,
        [
            ("samples/wide", 0, 24, 40),
            ("samples/tall", 5, 40, 24),
            ("samples/wide", 10, 24, 40)
        ]
    );

    let (_, _, _, _, png) = &imgs[0];
    let decoded = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    assert_eq!((decoded.width(), decoded.height()), (40, 24));
    assert_eq!(decoded.as_raw(), &pattern(WIDE_H, WIDE_W, 0));

    let colorspaces: Vec<i32> = read_events(&path)
        .unwrap()
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) => s.value.iter().find_map(|v| match &v.value {
                Some(Value::Image(img)) => Some(img.colorspace),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    assert_eq!(colorspaces, [3, 3, 3]);
}

#[test]
fn flipped_byte_is_a_crc_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let err = read_events(&path).unwrap_err();
    match &err {
        Error::CrcMismatch {
            path: p, offset, ..
        } => {
            assert_eq!(p, &path);
            assert!(*offset <= mid as u64);
            assert!(err.to_string().contains(&format!("byte offset {offset}")));
        }
        other => panic!("expected CRC mismatch, got {other:?}"),
    }
}

#[test]
fn truncated_file_is_a_truncation_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    match read_events(&path) {
        Err(Error::Truncated {
            part, offset, eof, ..
        }) => {
            assert_eq!(part, "data CRC");
            assert_eq!(eof, len - 3);
            assert!(offset < eof);
        }
        other => panic!("expected truncation, got {other:?}"),
    }
}

#[test]
fn corrupt_payload_with_valid_crcs_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.out.tfevents.bad");
    let mut bytes = Vec::new();
    record::write_record(&mut bytes, &[0xFF, 0xFF, 0xFF]).unwrap();
    fs::write(&path, bytes).unwrap();
    assert!(matches!(
        read_events(&path),
        Err(Error::Decode { offset: 0, .. })
    ));
}

#[test]
fn missing_file_error_names_the_path() {
    let path = Path::new("/nonexistent/tada/events.out.tfevents.x");
    let err = read_events(path).unwrap_err();
    assert!(matches!(&err, Error::Io { path: p, .. } if p == path));
    assert!(err.to_string().contains("/nonexistent/tada"));
}

#[test]
fn bad_image_arguments_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventWriter::new(dir.path()).unwrap();
    let rgb = pattern(WIDE_H, WIDE_W, 0);
    let short = &rgb[..rgb.len() - 1];
    assert!(matches!(
        w.add_image("t", short, WIDE_H, WIDE_W, 0),
        Err(Error::InvalidImage { .. })
    ));
    assert!(w.add_image("t", &[], 0, 0, 0).is_err());
    assert!(matches!(
        w.add_png("t", b"not a png", 1, 1, 0),
        Err(Error::Image { .. })
    ));

    let mut png = Vec::new();
    image::RgbImage::from_raw(WIDE_W, WIDE_H, rgb)
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // Swapped dimensions are exactly the mistake this check exists for.
    assert!(matches!(
        w.add_png("t", &png, WIDE_W, WIDE_H, 0),
        Err(Error::InvalidImage { .. })
    ));
    w.add_png("t", &png, WIDE_H, WIDE_W, 0).unwrap();
    w.flush().unwrap();
    let imgs = images(w.path()).unwrap();
    assert_eq!(imgs.len(), 1);
    assert_eq!((imgs[0].2, imgs[0].3), (24, 40));
}

/// A Python that can import TensorBoard: `TB_PY`, else the project venv made by
/// `scripts/setup.sh --test`.
fn tensorboard_python() -> Option<PathBuf> {
    let candidate = std::env::var_os("TB_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let ok = std::process::Command::new(&candidate)
        .args(["-c", "import tensorboard, PIL"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(candidate)
}

/// Cross-checks the writer against TensorBoard's own `EventAccumulator` (which also verifies
/// CRCs). The test script installs TensorBoard, so under CI a missing one is a failure; a plain
/// `cargo test` without it skips with a note.
#[test]
fn python_tensorboard_reads_our_files() {
    let Some(python) = tensorboard_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Python tensorboard (scripts/setup.sh --test)"
        );
        println!("skipping python_tensorboard_reads_our_files: no Python with tensorboard");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tb_readback.py");
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());

    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}\n{stdout}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");

    // Python's float repr and Rust's f64 Debug both print the shortest
    // round-tripping decimal, so the f32 values compare exactly as text.
    let series = |f: fn(i64) -> f32| {
        let points: Vec<String> = (0..20)
            .map(|s| format!("[{s},{:?}]", f(s) as f64))
            .collect();
        format!("[{}]", points.join(","))
    };
    let image_row = |step: i64, h: u32, w: u32, seed: u8| {
        let rgb = pattern(h, w, seed);
        let last = ((w - 1) * 3) as usize;
        let (a, b) = (&rgb[0..3], &rgb[last..last + 3]);
        format!(
            "[{step},{w},{h},[{},{},{}],[{},{},{}]]",
            a[0], a[1], a[2], b[0], b[1], b[2]
        )
    };
    let expected = format!(
        r#"{{"images":{{"samples/tall":[{}],"samples/wide":[{},{}]}},"scalars":{{"loss/train":{},"lr":{}}}}}"#,
        image_row(5, WIDE_W, WIDE_H, 7),
        image_row(0, WIDE_H, WIDE_W, 0),
        image_row(10, WIDE_H, WIDE_W, 10),
        series(loss),
        series(lr),
    );
    let compact: String = stdout.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(compact, expected);
}
