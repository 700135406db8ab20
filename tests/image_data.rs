//! Image datasets (MoSI's source): special files and odd names in an image folder are skipped
//! and named, never a hang or a panic; `tada data check` checks images as images; `tada bench
//! data` measures the configured image files.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tada::data::dataset::Split;
use tada::data::loader::{Loader, LoaderConfig};
use tada::data::sources::mosi_images::{ImageOrigin, MosiImages};
use tada_augment::mosi::MosiGenerator;

use crate::common::{tada_bin, write};

/// Longer than any of these runs takes; a hang fails the test instead of stalling the suite.
const PATIENCE: Duration = Duration::from_secs(60);

/// 5 speeds of 4-frame 32x32 clips from 64x48 images (short side to 48).
const MOSI: &str = "
PRETRAIN: {ENABLE: true, NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}
AUGMENTATION: {COLOR_AUG: false}
VIDEO: {HEAD: {NUM_CLASSES: 3}}
";

fn png(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([shade, (x * 4) as u8, (y * 5) as u8])
    })
    .save_with_format(path, image::ImageFormat::Png)
    .unwrap();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// An ImageNet-style folder `root/train/{cat,dog}/…`: three good images, and in `dog/` a FIFO
/// named `.jpg`, a link to the character device `device` named `.jpg` and an unreadable file
/// whose name is not UTF-8. Returns the paths of the three bad ones.
fn image_tree(root: &Path, device: &str) -> [PathBuf; 3] {
    png(&root.join("train/cat/a.png"), 10);
    png(&root.join("train/cat/b.jpg"), 90);
    png(&root.join("train/dog/c.png"), 200);
    let dog = root.join("train/dog");
    let fifo = dog.join("fifo.jpg");
    mkfifo(&fifo);
    let zero = dog.join("zero.jpg");
    std::os::unix::fs::symlink(device, &zero).unwrap();
    let odd = dog.join(OsStr::from_bytes(b"bad\xff.jpg"));
    std::fs::write(&odd, b"not an image").unwrap();
    [fifo, zero, odd]
}

/// `tada ARGS`, killed after [`PATIENCE`], with at most 4 GiB of data memory: a regression that
/// reads /dev/zero to the end fails on an allocation instead of filling the machine.
fn tada_within(args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(tada_bin());
    command
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("run tada");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > PATIENCE {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "tada {args:?} hung; stdout:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn special_files_in_an_image_folder_are_skipped_samples_not_a_hang() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("images");
    // /dev/null, not /dev/zero, in this process: should reading it ever be unbounded again,
    // only the child processes below (memory-limited) would meet /dev/zero.
    let [fifo, zero, odd] = image_tree(&root, "/dev/null");
    let yaml = format!(
        "{MOSI}TRAIN: {{DATASET: imagenet}}\nDATA: {{DATA_ROOT_DIR: '{}', TRAIN_CROP_SIZE: 32}}\n",
        root.display()
    );
    let cfg = tada::config::load_str(&yaml, "img.yaml", &[])
        .unwrap()
        .config;
    let Some(ImageOrigin::Files(entries)) = tada::data::pipeline::mosi_files(&cfg).unwrap() else {
        panic!("imagenet is read from image files");
    };
    assert_eq!(entries.len(), 6, "{entries:?}");
    assert!(entries.iter().any(|e| e.path == odd), "listed as is");
    let generator = MosiGenerator::new(tada::tasks::mosi::generator_config(&cfg).unwrap()).unwrap();
    let source = MosiImages::new(ImageOrigin::Files(entries), generator, Split::Train);
    let loader = Loader::new(
        Arc::new(source),
        LoaderConfig {
            batch_size: 2,
            num_workers: 2,
            max_bad_fraction: 0.6,
            ..LoaderConfig::default()
        },
    );
    // On a thread, so that a read that blocks fails the test rather than hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let pass = std::thread::spawn(move || {
        let images: usize = loader
            .epoch(0)
            .map(|b| b.expect("under the limit").indices.len())
            .sum();
        let _ = tx.send(());
        (images, loader.bad_samples().distinct())
    });
    rx.recv_timeout(PATIENCE)
        .expect("an epoch over a FIFO must not hang");
    let (images, bad) = pass.join().unwrap();
    assert_eq!(images, 3);
    let bad = bad.join("\n");
    assert!(
        bad.contains(&format!("{}: is a FIFO", fifo.display())),
        "{bad}"
    );
    assert!(
        bad.contains(&format!("{}: is a character device", zero.display())),
        "{bad}"
    );
    assert!(
        bad.contains("bad\u{fffd}.jpg: not a readable image"),
        "{bad}"
    );
}

#[test]
fn data_check_checks_an_image_dataset_as_images() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("images");
    let config = |root: &Path| {
        write(
            d.path(),
            "img.yaml",
            &format!(
                "{MOSI}TRAIN: {{DATASET: imagenet}}\nDATA: {{DATA_ROOT_DIR: '{}'}}\nDATA_LOADER: {{NUM_WORKERS: 2, MAX_BAD_FRACTION: 0.6}}\n",
                root.display()
            ),
        )
    };
    // Good images only: each passes as an image.
    png(&root.join("train/cat/a.png"), 10);
    png(&root.join("train/cat/b.jpg"), 90);
    png(&root.join("train/dog/c.png"), 200);
    let cfg = config(&root);
    let out = tada_within(&["data", "check", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim_end(), "checked 3, bad 0");

    // With special files and a name that is not UTF-8: one line each, printed lossily.
    let root = d.path().join("mixed");
    let [fifo, zero, _] = image_tree(&root, "/dev/zero");
    let cfg = config(&root);
    let out = tada_within(&["data", "check", "--config", cfg.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines.contains(
            &format!(
                "{}: is a FIFO (named pipe), not a regular file",
                fifo.display()
            )
            .as_str()
        ),
        "{stdout}"
    );
    assert!(
        lines.contains(
            &format!(
                "{}: is a character device, not a regular file",
                zero.display()
            )
            .as_str()
        ),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bad\u{fffd}.jpg: not a readable image")),
        "{stdout}"
    );
    assert_eq!(lines[3], "checked 6, bad 3");
}

#[test]
fn bench_data_measures_the_configured_images_and_refuses_an_empty_folder() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("images");
    for (i, class) in ["cat", "dog"].iter().enumerate() {
        for k in 0..2 {
            png(
                &root.join(format!("{class}/{k}.png")),
                (60 * i + 20 * k) as u8,
            );
        }
    }
    let cfg = |root: &Path, name: &str| {
        write(
            d.path(),
            name,
            &format!(
                "{MOSI}TRAIN: {{DATASET: imagenet, BATCH_SIZE: 2}}\nDATA: {{DATA_ROOT_DIR: '{}', TRAIN_CROP_SIZE: 32}}\nDATA_LOADER: {{NUM_WORKERS: 1}}\n",
                root.display()
            ),
        )
    };
    let good = cfg(&root, "good.yaml");
    let out = tada_within(&[
        "bench",
        "data",
        "--config",
        good.to_str().unwrap(),
        "--seconds",
        "0.3",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "MoSI from 4 image files under {}, through the loader",
            root.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("[3, 4, 32, 32] per clip"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .contains("clips/s"),
        "{stdout}"
    );

    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = tada_within(&[
        "bench",
        "data",
        "--config",
        cfg(&empty, "empty.yaml").to_str().unwrap(),
        "--seconds",
        "0.3",
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(stderr.contains(&empty.display().to_string()), "{stderr}");
    assert!(!text(&out.stdout).contains("clips/s"));
}

#[test]
fn pretraining_skips_special_files_in_an_image_folder() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("images");
    let [fifo, zero, odd] = image_tree(&root, "/dev/zero");
    let cfg = write(
        d.path(),
        "mosi.yaml",
        &format!(
            "PRETRAIN: {{ENABLE: true, NUM_FRAMES: 4, STANDARD_SIZE: 48, STATIC_MASK: false}}
AUGMENTATION: {{COLOR_AUG: false}}
MODEL: {{NAME: MoSINet}}{}  HEAD: {{NAME: MoSIHeadJoint, NUM_CLASSES: 3, DROPOUT_RATE: 0.0}}
TRAIN: {{DATASET: imagenet, BATCH_SIZE: 2, CHECKPOINT_PERIOD: 1}}
DATA: {{DATA_ROOT_DIR: '{}', TRAIN_CROP_SIZE: 32}}
DATA_LOADER: {{NUM_WORKERS: 2, MAX_BAD_FRACTION: 0.6}}
OPTIMIZER: {{MAX_EPOCH: 2, WARMUP_EPOCHS: 0}}
NUM_GPUS: 0
",
            crate::common::TINY_BACKBONE,
            root.display()
        ),
    );
    let out = tada_within(&[
        "pretrain",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        d.path().join("run").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        text(&out.stdout).contains("finished after 2 epochs"),
        "{}",
        text(&out.stdout)
    );
    // Each special file skipped and named once, though both epochs met it.
    for bad in [&fifo, &zero, &odd] {
        let name = bad.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(stderr.matches(&name).count(), 1, "{name}:\n{stderr}");
    }
    assert!(stderr.contains("is a FIFO") && stderr.contains("is a character device"));
}
