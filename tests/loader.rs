//! The loader over a small real dataset: right clips and labels, identical with 1 and 4
//! workers, bad files skipped and named.

use std::path::PathBuf;
use std::sync::Arc;

use tada::data::dataset::{Entry, Split};
use tada::data::loader::{Loader, LoaderConfig};
use tada::data::sources::video_clips::{ClipSourceConfig, VideoClips};

use crate::media::{make_video, Kind};

const TINY: &str = "
VIDEO: {HEAD: {NUM_CLASSES: 3}}
DATA:
  NUM_INPUT_FRAMES: 4
  SAMPLING_RATE: 2
  TARGET_FPS: 25
  TRAIN_JITTER_SCALES: [40, 56]
  TRAIN_CROP_SIZE: 32
  TEST_SCALE: 40
  TEST_CROP_SIZE: 32
AUGMENTATION: {COLOR_AUG: true}
TEST: {NUM_ENSEMBLE_VIEWS: 2, NUM_SPATIAL_CROPS: 3}
";

/// Six good videos (two per container, labels 0..3) and three bad files.
fn dataset(dir: &std::path::Path) -> (Vec<Entry>, Vec<PathBuf>) {
    let mut entries = Vec::new();
    for (i, kind) in Kind::ALL.iter().chain(Kind::ALL.iter()).enumerate() {
        let path = make_video(&dir.join(format!("v{i}.{}", kind.ext())), *kind, 40, 64, 48);
        entries.push(Entry {
            path,
            label: (i % 3) as i64,
            id: format!("v{i}"),
        });
    }
    let whole = std::fs::read(&entries[0].path).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &whole[..whole.len() / 3]).unwrap();
    let empty = dir.join("empty.avi");
    std::fs::write(&empty, b"").unwrap();
    let wrong = dir.join("image.webm");
    image::RgbImage::new(8, 8)
        .save_with_format(&wrong, image::ImageFormat::Png)
        .unwrap();
    let bad = vec![cut, empty, wrong];
    for (k, p) in bad.iter().enumerate() {
        entries.push(Entry {
            path: p.clone(),
            label: 0,
            id: format!("bad{k}"),
        });
    }
    (entries, bad)
}

fn loader(entries: &[Entry], split: Split, workers: usize) -> Loader {
    let cfg = tada::config::load_str(TINY, "tiny.yaml", &[])
        .unwrap()
        .config;
    let source = VideoClips::new(
        entries.to_vec(),
        ClipSourceConfig::from_config(&cfg, split).unwrap(),
    );
    Loader::new(
        Arc::new(source),
        LoaderConfig {
            batch_size: 4,
            num_workers: workers,
            seed: 11,
            max_bad_fraction: 0.5,
            ..LoaderConfig::default()
        },
    )
}

#[test]
fn training_batches_are_identical_with_1_and_4_workers_and_skip_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, bad) = dataset(dir.path());
    let one = loader(&entries, Split::Train, 1);
    let four = loader(&entries, Split::Train, 4);
    let (mut seen, mut skipped) = (Vec::new(), 0);
    let a_batches: Vec<_> = one.epoch(2).map(Result::unwrap).collect();
    let b_batches: Vec<_> = four.epoch(2).map(Result::unwrap).collect();
    assert_eq!(a_batches.len(), b_batches.len());
    for (a, b) in a_batches.into_iter().zip(b_batches) {
        assert_eq!(a.indices, b.indices);
        assert!(
            a.inputs.equal(&b.inputs),
            "clips differ between 1 and 4 workers"
        );
        assert_eq!(a.inputs.size()[1..], [3, 4, 32, 32]);
        let labels = Vec::<i64>::try_from(&a.labels).unwrap();
        for (i, l) in a.indices.iter().zip(labels) {
            assert_eq!(l, entries[*i].label, "label of {}", entries[*i].id);
        }
        skipped += a.skipped.len();
        seen.extend(a.indices);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..6).collect::<Vec<_>>(), "every good video once");
    // A batch of only bad files is never yielded, so count on the loader, not the batches.
    assert!(skipped <= 3);
    assert_eq!(one.bad_samples().count(), 3);
    assert_eq!(four.bad_samples().count(), 3);
    let named = one.bad_samples().distinct().join("\n");
    for (p, why) in bad.iter().zip([
        "not a readable video",
        "empty file",
        "not a video but png_pipe data",
    ]) {
        assert!(
            named.contains(&format!("{}: {why}", p.display())),
            "{p:?} should be named with `{why}`:\n{named}"
        );
    }
}

#[test]
fn test_views_cover_every_temporal_and_spatial_view_in_frame_order() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = dataset(dir.path());
    let good = &entries[..6];
    let l = loader(good, Split::Test, 2);
    let batches: Vec<_> = l.epoch(0).map(|b| b.unwrap()).collect();
    let n: usize = batches.iter().map(|b| b.indices.len()).sum();
    assert_eq!(n, 6 * 2 * 3, "videos x temporal views x spatial crops");
    let mut views: Vec<(usize, usize)> = batches
        .iter()
        .flat_map(|b| b.sources.iter().copied().zip(b.views.iter().copied()))
        .collect();
    views.sort_unstable();
    views.dedup();
    assert_eq!(views.len(), 36);
    // Frame content is the frame number (brightness rises with time), so within every clip
    // the per-frame means increase, and the later temporal view is brighter.
    for b in &batches {
        for k in 0..b.indices.len() {
            let clip = b.inputs.get(k as i64);
            let means = Vec::<f32>::try_from(clip.mean_dim(
                [0i64, 2, 3].as_slice(),
                false,
                tch::Kind::Float,
            ))
            .unwrap();
            assert!(
                means.windows(2).all(|w| w[0] < w[1]),
                "frame order {means:?}"
            );
        }
    }
}

#[test]
fn mosi_samples_batch_with_their_labels_and_do_not_depend_on_workers() {
    use tada::data::sources::mosi_images::{ImageOrigin, MosiImages};
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("mosi.yaml");
    std::fs::write(
        &cfg_path,
        "VIDEO: {HEAD: {NUM_CLASSES: 5}}\nDATA: {TRAIN_CROP_SIZE: 32}\nPRETRAIN: {NUM_FRAMES: 4, STANDARD_SIZE: 48}\n",
    )
    .unwrap();
    let cfg = tada::config::recipes::MOSI
        .load(&cfg_path, &[])
        .unwrap()
        .config;
    let make = |workers| {
        let gen = tada_augment::mosi::MosiGenerator::new(
            tada::tasks::mosi::generator_config(&cfg).unwrap(),
        )
        .unwrap();
        let origin = ImageOrigin::Synthetic {
            count: 6,
            seed: 3,
            height: 60,
            width: 80,
        };
        let source = MosiImages::new(origin, gen, Split::Train);
        Loader::new(
            Arc::new(source),
            LoaderConfig {
                batch_size: 3,
                num_workers: workers,
                seed: 5,
                ..LoaderConfig::default()
            },
        )
    };
    let a: Vec<_> = make(1).epoch(0).map(Result::unwrap).collect();
    let b: Vec<_> = make(3).epoch(0).map(Result::unwrap).collect();
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        // Decoupled x/y speeds of 5 classes: 4 + 4 moving clips and one still clip.
        assert_eq!(x.inputs.size(), [3, 9, 3, 4, 32, 32]);
        assert_eq!(x.labels.size(), [3, 9]);
        assert!(x.inputs.equal(&y.inputs));
        let first = Vec::<i64>::try_from(x.labels.get(0)).unwrap();
        assert_eq!(first, (0..9).collect::<Vec<_>>());
    }
    // A resumed epoch starts at a batch offset and makes the same later batches.
    let tail: Vec<_> = make(2).epoch_from(0, 1).map(Result::unwrap).collect();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].indices, a[1].indices);
    assert!(tail[0].inputs.equal(&a[1].inputs));
    assert_eq!(
        make(1).epoch_from(0, 5).count(),
        0,
        "an offset past the end is empty"
    );
}

/// A UCF101-format tree (classInd.txt, trainlist01.txt) with real videos and bad files, through
/// the config-driven loader and `tada data check`.
#[test]
fn a_ucf101_tree_loads_through_the_config_and_data_check_names_bad_files() {
    use crate::common::{stdout, tada, write};
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("UCF-101");
    let anno = d.path().join("ucfTrainTestlist");
    write(&anno, "classInd.txt", "1 Archery\n2 Biking\n");
    let mut train = String::new();
    for (i, kind) in Kind::ALL.iter().enumerate() {
        let class = ["Archery", "Biking"][i % 2];
        let rel = format!("{class}/v_{class}_g0{i}_c01.{}", kind.ext());
        make_video(&root.join(&rel), *kind, 40, 64, 48);
        train.push_str(&format!("{rel} {}\n", i % 2 + 1));
    }
    write(&root, "Biking/v_empty.avi", "");
    train.push_str("Biking/v_empty.avi 2\nArchery/v_gone.avi 1\n");
    write(&anno, "trainlist01.txt", &train);
    let cfg_path = write(
        d.path(),
        "ucf.yaml",
        &format!(
            "{}TRAIN: {{DATASET: ucf101, BATCH_SIZE: 5}}\nDATA_LOADER: {{NUM_WORKERS: 2, MAX_BAD_FRACTION: 0.5}}\n",
            TINY.replace(
                "DATA:\n",
                &format!(
                    "DATA:\n  DATA_ROOT_DIR: '{}'\n  ANNO_DIR: '{}'\n",
                    root.display(),
                    anno.display()
                )
            )
        ),
    );
    let cfg = tada::config::load(&cfg_path, &[]).unwrap().config;
    let loader = tada::data::pipeline::video_loader(&cfg, Split::Train, 0).unwrap();
    let mut got = Vec::new();
    for b in loader.epoch(0) {
        let b = b.unwrap();
        let l = Vec::<i64>::try_from(&b.labels).unwrap();
        got.extend(b.indices.into_iter().zip(l));
    }
    got.sort_unstable();
    // One batch of five: the three good videos, each with its class.
    assert_eq!(got, [(0, 0), (1, 1), (2, 0)]);
    assert_eq!(
        loader.bad_samples().distinct().len(),
        2,
        "{:?}",
        loader.bad_samples().distinct()
    );

    let out = tada(&["data", "check", "--config", cfg_path.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("v_empty.avi: empty file"), "{text}");
    assert!(text.contains("v_gone.avi: missing"), "{text}");
    assert!(text.trim_end().ends_with("checked 5, bad 2"), "{text}");
    // Over the limit: a non-zero exit with the reason.
    let out = tada(&[
        "data",
        "check",
        "--config",
        cfg_path.to_str().unwrap(),
        "--set",
        "DATA_LOADER.MAX_BAD_FRACTION=0.1",
    ]);
    assert!(!out.status.success());
    assert!(crate::common::stderr(&out).contains("MAX_BAD_FRACTION"));
}

/// `tada test` fuses every temporal x spatial view of a video into one score and reports
/// acc@1 / acc@5 / per-class accuracy as JSON.
#[test]
fn multi_view_test_fuses_the_views_of_each_video() {
    use crate::common::{stdout, tada, write};
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("UCF-101");
    let anno = d.path().join("lists");
    write(&anno, "classInd.txt", "1 Archery\n2 Biking\n3 Cliff\n");
    let mut test = String::new();
    for (i, kind) in Kind::ALL.iter().enumerate() {
        let class = ["Archery", "Biking", "Cliff"][i];
        let rel = format!("{class}/v_{i}.{}", kind.ext());
        make_video(&root.join(&rel), *kind, 40, 64, 48);
        test.push_str(&format!("{rel}\n"));
    }
    write(&anno, "testlist01.txt", &test);
    let yaml = format!(
        "{}DATA_LOADER: {{NUM_WORKERS: 2}}\n{}",
        TINY.replace(
            "TEST: {NUM_ENSEMBLE_VIEWS: 2, NUM_SPATIAL_CROPS: 3}",
            "TEST: {NUM_ENSEMBLE_VIEWS: 2, NUM_SPATIAL_CROPS: 3, DATASET: ucf101, BATCH_SIZE: 4}",
        )
        .replace(
            "DATA:\n",
            &format!(
                "DATA:\n  DATA_ROOT_DIR: '{}'\n  ANNO_DIR: '{}'\n",
                root.display(),
                anno.display()
            )
        ),
        "MODEL: {NAME: R2D3D}\nVIDEO:\n  BACKBONE:\n    META_ARCH: ResNet3D\n    DEPTH: 18\n    NUM_FILTERS: [4, 4, 8, 8, 8]\n    NUM_OUT_FEATURES: 8\n    KERNEL_SIZE: [[1, 7, 7], [1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]]\n    DOWNSAMPLING: [true, false, true, true, true]\n    DOWNSAMPLING_TEMPORAL: [false, false, false, true, true]\n    EXPANSION_RATIO: 2\n    STEM: {NAME: DownSampleStem}\n    BRANCH: {NAME: R2D3DBranch}\n  HEAD: {NAME: BaseHead, NUM_CLASSES: 3}\n"
    );
    let yaml = yaml.replacen("VIDEO: {HEAD: {NUM_CLASSES: 3}}\n", "", 1);
    let cfg_path = write(d.path(), "test.yaml", &yaml);
    let loaded = tada::config::load(&cfg_path, &[]).unwrap();
    let session = tada::models::Session::new(&loaded.config).unwrap();
    let weights = d.path().join("w.safetensors");
    session.vs.save(&weights).unwrap();

    let r = tada::runs::test::test(&loaded, &weights, false).unwrap();
    assert_eq!(
        (r.videos, r.views_per_video),
        (3, 6),
        "3 videos x 2 temporal x 3 spatial views"
    );
    assert_eq!(
        r.acc5, None,
        "3 classes: the true one is always in the top 5, so acc@5 is not reported"
    );
    let counted: usize = r.per_class.iter().map(|c| c.videos).sum();
    assert_eq!(counted, 3);
    assert!((0.0..=1.0).contains(&r.acc1));

    let out = tada(&[
        "test",
        "--config",
        cfg_path.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert!(
        stdout(&out).contains("3 videos x 6 views (sum fusion)"),
        "{}",
        stdout(&out)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("test_results.json")).unwrap())
            .unwrap();
    assert_eq!(json["videos"], 3);
    assert_eq!(json["per_class"].as_array().unwrap().len(), 3);
    // Class names from classInd.txt.
    assert_eq!(
        json["confusion"]["classes"],
        serde_json::json!(["Archery", "Biking", "Cliff"])
    );
    assert_eq!(json["per_class"][1]["name"], "Biking");
}
