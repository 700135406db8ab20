//! Annotation readers on small trees in each dataset's published format.

use std::path::Path;

use tada::config::schema::Dataset;
use tada::data::dataset::annotations::read_entries;
use tada::data::dataset::{EntryList, Split};

use crate::common::write;

fn read(dataset: Dataset, root: &Path, anno: &Path, split: Split) -> Result<EntryList, String> {
    let yaml = format!(
        "VIDEO: {{HEAD: {{NUM_CLASSES: 3}}}}\nDATA: {{DATA_ROOT_DIR: '{}', ANNO_DIR: '{}'}}\n",
        root.display(),
        anno.display()
    );
    let cfg = tada::config::load_str(&yaml, "d.yaml", &[]).unwrap().config;
    read_entries(dataset, &cfg.data, split).map_err(|e| e.to_string())
}

fn labels(l: &EntryList) -> Vec<(String, i64)> {
    l.entries.iter().map(|e| (e.id.clone(), e.label)).collect()
}

#[test]
fn ucf101_official_lists() {
    let d = tempfile::tempdir().unwrap();
    let anno = d.path().join("anno");
    // BOM, CRLF and blank lines as files edited on other systems have them.
    write(
        &anno,
        "ucfTrainTestlist/classInd.txt",
        "\u{feff}1 ApplyEyeMakeup\r\n2 Archery\r\n\r\n3 Basketball\r\n",
    );
    write(&anno, "ucfTrainTestlist/trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nBasketball/v_Basketball_g01_c01.avi 3\r\n\r\n");
    write(
        &anno,
        "ucfTrainTestlist/testlist01.txt",
        "Archery/v_Archery_g01_c01.avi\nBasketball/v_Basketball_g02_c01.avi\n",
    );
    let root = d.path().join("videos");
    let train = read(Dataset::Ucf101, &root, &anno, Split::Train).unwrap();
    assert_eq!(train.classes, ["ApplyEyeMakeup", "Archery", "Basketball"]);
    assert_eq!(
        labels(&train),
        [
            ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi".into(), 0),
            ("Basketball/v_Basketball_g01_c01.avi".into(), 2)
        ]
    );
    assert_eq!(
        train.entries[0].path,
        root.join("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi")
    );
    let test = read(Dataset::Ucf101, &root, &anno, Split::Test).unwrap();
    assert_eq!(labels(&test)[0].1, 1);
    assert_eq!(labels(&test)[1].1, 2);

    write(
        &anno,
        "ucfTrainTestlist/testlist01.txt",
        "Archery/a.avi\nJuggling/b.avi\n",
    );
    let e = read(Dataset::Ucf101, &root, &anno, Split::Test).unwrap_err();
    assert!(
        e.contains("testlist01.txt:2:") && e.contains("`Juggling`"),
        "{e}"
    );
    write(
        &anno,
        "ucfTrainTestlist/trainlist01.txt",
        "Archery/a.avi 7\n",
    );
    let e = read(Dataset::Ucf101, &root, &anno, Split::Train).unwrap_err();
    assert!(
        e.contains("trainlist01.txt:1:") && e.contains("label 7"),
        "{e}"
    );
}

#[test]
fn hmdb51_official_split_files() {
    let d = tempfile::tempdir().unwrap();
    let anno = d.path().join("anno");
    let s = "testTrainMulti_7030_splits";
    write(
        &anno,
        &format!("{s}/wave_test_split1.txt"),
        "w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n",
    );
    write(
        &anno,
        &format!("{s}/climb_test_split1.txt"),
        "c1.avi 2\nc2.avi 1\n",
    );
    write(&anno, &format!("{s}/climb_test_split2.txt"), "c1.avi 1\n");
    let root = d.path().join("hmdb");
    let train = read(Dataset::Hmdb51, &root, &anno, Split::Train).unwrap();
    assert_eq!(train.classes, ["climb", "wave"]);
    assert_eq!(
        labels(&train),
        [("climb/c2.avi".into(), 0), ("wave/w1.avi".into(), 1)]
    );
    assert_eq!(train.entries[0].path, root.join("climb").join("c2.avi"));
    let test = read(Dataset::Hmdb51, &root, &anno, Split::Test).unwrap();
    assert_eq!(
        labels(&test),
        [("climb/c1.avi".into(), 0), ("wave/w2.avi".into(), 1)]
    );
    write(
        &anno,
        &format!("{s}/wave_test_split1.txt"),
        "w1.avi 1\nw2.avi 5\n",
    );
    let e = read(Dataset::Hmdb51, &root, &anno, Split::Train).unwrap_err();
    assert!(
        e.contains("wave_test_split1.txt:2:") && e.contains("tag `5`"),
        "{e}"
    );
}

#[test]
fn kinetics_csv_with_quoted_labels_and_layouts() {
    let d = tempfile::tempdir().unwrap();
    let anno = d.path().join("anno");
    write(
        &anno,
        "train.csv",
        "label,youtube_id,time_start,time_end,split\nabseiling,abc,10,20,train\n\"cooking, chicken\",xyz,0,10,train\n",
    );
    write(
        &anno,
        "validate.csv",
        "label,youtube_id,time_start,time_end,split\n\"cooking, chicken\",qqq,5,15,val\n",
    );
    let root = d.path().join("k400");
    // One clip exists in the per-split class folder layout (with underscores).
    write(&root, "train/abseiling/abc_000010_000020.mp4", "x");
    let train = read(Dataset::Kinetics400, &root, &anno, Split::Train).unwrap();
    assert_eq!(train.classes, ["abseiling", "cooking, chicken"]);
    assert_eq!(
        train.entries[0].path,
        root.join("train/abseiling/abc_000010_000020.mp4")
    );
    assert_eq!(train.entries[1].label, 1);
    assert_eq!(train.entries[1].id, "xyz_000000_000010");
    let val = read(Dataset::Kinetics400, &root, &anno, Split::Test).unwrap();
    assert_eq!(labels(&val), [("qqq_000005_000015".into(), 1)]);
    write(
        &anno,
        "validate.csv",
        "label,youtube_id,time_start,time_end,split\nflying,qqq,5,15,val\n",
    );
    let e = read(Dataset::Kinetics400, &root, &anno, Split::Val).unwrap_err();
    assert!(
        e.contains("validate.csv:2:") && e.contains("`flying`"),
        "{e}"
    );
}

#[test]
fn ssv2_templates_map_to_label_indices() {
    let d = tempfile::tempdir().unwrap();
    let anno = d.path().join("anno");
    write(
        &anno,
        "something-something-v2-labels.json",
        r#"{"Approaching something with your camera": "0", "Moving something up": "1"}"#,
    );
    write(
        &anno,
        "something-something-v2-train.json",
        r#"[{"id": "78687", "label": "moving a cup up", "template": "Moving [something] up", "placeholders": ["a cup"]},
            {"id": "42326", "label": "approaching", "template": "Approaching [something] with your camera", "placeholders": []}]"#,
    );
    let root = d.path().join("ssv2");
    write(&root, "42326.mp4", "x");
    let train = read(Dataset::Ssv2, &root, &anno, Split::Train).unwrap();
    assert_eq!(labels(&train), [("78687".into(), 1), ("42326".into(), 0)]);
    assert_eq!(train.entries[0].path, root.join("78687.webm"));
    assert_eq!(
        train.entries[1].path,
        root.join("42326.mp4"),
        "an mp4 conversion wins"
    );
    let e = read(Dataset::Ssv2, &root, &anno, Split::Test).unwrap_err();
    assert!(e.contains("something-something-v2-validation.json"), "{e}");
}

#[test]
fn image_folders_and_reference_lists() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("imagenet");
    for (class, file) in [("n02", "b.JPEG"), ("n01", "a.jpg"), ("n01", "notes.txt")] {
        write(&root, &format!("train/{class}/{file}"), "x");
    }
    let anno = d.path().join("anno");
    let train = read(Dataset::Imagenet, &root, &anno, Split::Train).unwrap();
    assert_eq!(train.classes, ["n01", "n02"]);
    assert_eq!(
        labels(&train),
        [("n01/a.jpg".into(), 0), ("n02/b.JPEG".into(), 1)]
    );
    // The reference's own list format is read when the published files are absent.
    write(&anno, "ucf101_train_list.txt", "a/b c.avi 4\n");
    let ucf = read(Dataset::Ucf101, &root, &anno, Split::Train).unwrap();
    assert_eq!(labels(&ucf), [("a/b c.avi".into(), 4)]);
    let e = read(Dataset::Hmdb51, &root, &anno, Split::Train).unwrap_err();
    assert!(e.starts_with("hmdb51: no annotation file found"), "{e}");
    write(&anno, "hmdb51_train_list.txt", "x.avi one\n");
    let e = read(Dataset::Hmdb51, &root, &anno, Split::Train).unwrap_err();
    assert!(
        e.contains("hmdb51_train_list.txt:1:") && e.contains("`one`"),
        "{e}"
    );
}

#[test]
fn an_empty_split_is_an_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let anno = d.path().join("anno");
    write(&anno, "classInd.txt", "1 A\n");
    write(&anno, "trainlist01.txt", "\n\n");
    let e = read(Dataset::Ucf101, d.path(), &anno, Split::Train).unwrap_err();
    assert!(
        e.contains("no samples") && e.contains("trainlist01.txt"),
        "{e}"
    );
}

#[test]
fn an_image_folder_lists_names_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("imagenet");
    write(&root, "train/n01/a.jpg", "");
    let odd = root
        .join("train/n01")
        .join(OsStr::from_bytes(b"bad\xff.jpg"));
    std::fs::write(&odd, b"").unwrap();
    // A class folder whose own name is not UTF-8 either.
    let class = root.join("train").join(OsStr::from_bytes(b"n\xfe2"));
    std::fs::create_dir_all(&class).unwrap();
    std::fs::write(class.join("b.png"), b"").unwrap();
    let train = read(
        Dataset::Imagenet,
        &root,
        &d.path().join("anno"),
        Split::Train,
    )
    .unwrap();
    assert_eq!(
        labels(&train),
        [
            ("n01/a.jpg".into(), 0),
            ("n01/bad\u{fffd}.jpg".into(), 0),
            ("n\u{fffd}2/b.png".into(), 1)
        ]
    );
    // The path itself keeps its bytes, so the file is still opened.
    assert_eq!(train.entries[1].path, odd);
    assert_eq!(train.classes[1], "n\u{fffd}2");
}
