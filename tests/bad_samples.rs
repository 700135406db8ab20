//! Bad samples against DATA_LOADER.MAX_BAD_FRACTION, per epoch: a long fine-tune over a dataset
//! with a few bad files completes and names each once; a loader over the limit stops the run
//! with a checkpoint that `--resume` continues from; a dataset smaller than a batch says so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use tada::checkpoint::Checkpoint;
use tada::data::loader::{Loader, LoaderConfig, LoaderError, Sample, SampleError, SampleSource};
use tada::models::Session;
use tada::tasks::classify::ClassifyTask;
use tada::train::run_dir::RunDir;
use tada::train::TrainError;
use tch::{Device, Kind, Tensor};

use crate::common::{run_options, serial, stderr, stdout, tada, write, TINY_BACKBONE};
use crate::media::{make_video, Kind as VideoKind};

/// 100 copies of one 8-frame 32x32 video, one truncated copy and one missing file in a
/// UCF101-format tree; a 3 % limit allows 3 bad samples per epoch, the run has 2 in each of its
/// 6 epochs (12 reads of bad files in all).
#[test]
fn a_long_fine_tune_with_a_few_bad_files_completes_and_names_each_once() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("UCF-101");
    let anno = d.path().join("lists");
    write(&anno, "classInd.txt", "1 Archery\n2 Biking\n");
    let one = make_video(&d.path().join("one.mp4"), VideoKind::Mp4, 8, 32, 32);
    let mut train_list = String::new();
    for i in 0..100 {
        let class = ["Archery", "Biking"][i % 2];
        let rel = format!("{class}/v_{class}_g{i:03}_c01.mp4");
        std::fs::create_dir_all(root.join(class)).unwrap();
        std::fs::copy(&one, root.join(&rel)).unwrap();
        train_list.push_str(&format!("{rel} {}\n", i % 2 + 1));
    }
    // An mp4 keeps its index at the end: cut in half, it cannot be read at all.
    let whole = std::fs::read(&one).unwrap();
    std::fs::write(root.join("Biking/v_cut.mp4"), &whole[..whole.len() / 2]).unwrap();
    train_list.push_str("Biking/v_cut.mp4 2\nArchery/v_gone.mp4 1\n");
    write(&anno, "trainlist01.txt", &train_list);
    let cfg = write(
        d.path(),
        "ucf.yaml",
        &format!(
            "MODEL: {{NAME: R2D3D}}{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 2}}
NUM_GPUS: 0
RANDOM_SEED: 1
LOG_PERIOD: 100
DATA:
  DATA_ROOT_DIR: '{}'
  ANNO_DIR: '{}'
  NUM_INPUT_FRAMES: 4
  SAMPLING_RATE: 1
  TRAIN_JITTER_SCALES: [32, 36]
  TRAIN_CROP_SIZE: 32
AUGMENTATION: {{COLOR_AUG: false}}
TRAIN: {{DATASET: ucf101, BATCH_SIZE: 25, CHECKPOINT_PERIOD: 100, EVAL_PERIOD: 0}}
DATA_LOADER: {{NUM_WORKERS: 2, MAX_BAD_FRACTION: 0.03}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.01, MAX_EPOCH: 6, WARMUP_EPOCHS: 0}}
",
            root.display(),
            anno.display()
        ),
    );
    let out = tada(&[
        "finetune",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        d.path().join("run").to_str().unwrap(),
    ]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(text.contains("finished after 6 epochs, 24 steps"), "{text}");
    for name in ["v_cut.mp4", "v_gone.mp4"] {
        assert_eq!(err.matches(name).count(), 1, "{name} once:\n{err}");
    }
    assert!(err.contains("v_gone.mp4: missing"), "{err}");
}

/// Eight clips; from the 13th read on, samples 5 and 6 fail (as files that go bad mid-run).
struct Decaying {
    reads: AtomicUsize,
    healthy: bool,
}

impl SampleSource for Decaying {
    fn len(&self) -> usize {
        8
    }

    fn get(&self, index: usize, _rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        let read = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.healthy && read > 12 && (index == 5 || index == 6) {
            return Err(SampleError {
                what: format!("/data/v{index}.mp4: missing"),
                kind: "missing",
            });
        }
        Ok(Sample {
            input: Tensor::full(
                [3, 4, 32, 32],
                index as f64 / 8.0,
                (Kind::Float, Device::Cpu),
            ),
            label: Tensor::from((index % 4) as i64),
            source: index,
            view: 0,
            decode_seconds: 0.0,
        })
    }
}

#[test]
fn a_loader_over_the_limit_checkpoints_names_the_files_and_resumes() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = write(
        d.path(),
        "run.yaml",
        &format!(
            "MODEL: {{NAME: R2D3D}}{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4}}
NUM_GPUS: 0
RANDOM_SEED: 4
TRAIN: {{BATCH_SIZE: 4, CHECKPOINT_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.01, MAX_EPOCH: 3, WARMUP_EPOCHS: 0}}
"
        ),
    );
    let cfg = tada::config::load(&path, &[]).unwrap();
    let loader = |healthy| {
        let lc = LoaderConfig {
            batch_size: 4,
            num_workers: 0,
            shuffle: false,
            max_bad_fraction: 0.1,
            ..LoaderConfig::default()
        };
        let source = Decaying {
            reads: AtomicUsize::new(0),
            healthy,
        };
        Loader::new(Arc::new(source), lc)
    };
    let out = d.path().join("out");
    let opts = run_options(&out, false, None).train;
    let mut task = ClassifyTask::from_config(&cfg.config).unwrap();

    // Epoch 1 trains (steps 1-2); epoch 2's first batch (reads 9-12) too; its second batch
    // holds samples 5 and 6, now bad: 2 of 8 is over 10 %.
    let session = Session::new(&cfg.config).unwrap();
    let mut run = RunDir::create(&out).unwrap();
    let e = tada::runs::fit_loader(&cfg, &session, &mut task, loader(false), &mut run, &opts)
        .unwrap_err();
    let text = e.to_string();
    eprintln!("{text}");
    let TrainError::LoaderStopped {
        step,
        error: LoaderError::TooManyBad { bad, total, .. },
        checkpoint: Some(ref ckpt),
    } = e
    else {
        panic!("expected the loader to stop the run with a checkpoint, got {text}");
    };
    assert_eq!((step, bad, total), (4, 2, 8));
    assert!(
        text.starts_with("the loader stopped the run before step 4: 2 of 8 samples"),
        "{text}"
    );
    assert!(
        text.contains("/data/v5.mp4: missing; /data/v6.mp4: missing"),
        "{text}"
    );
    assert!(
        text.contains(&ckpt.display().to_string()) && text.contains("--resume"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    assert_eq!(Checkpoint::load(ckpt).unwrap().run.step, 3);
    assert!(
        ckpt.ends_with("checkpoint_epoch_00001_step_00000003.safetensors"),
        "{ckpt:?}"
    );

    // With the files back, `--resume` continues after step 3 (the stopped run's folder closed
    // first: a folder is locked while open).
    drop(run);
    let session = Session::new(&cfg.config).unwrap();
    let mut run = RunDir::create(&out).unwrap();
    let mut opts = opts.clone();
    opts.resume = true;
    let s =
        tada::runs::fit_loader(&cfg, &session, &mut task, loader(true), &mut run, &opts).unwrap();
    assert_eq!(s.resumed_from.as_ref(), Some(ckpt));
    assert_eq!((s.epochs, s.steps, s.losses.len()), (3, 6, 3));
}

#[test]
fn a_dataset_smaller_than_one_batch_names_the_batch_size() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = write(
        d.path(),
        "small.yaml",
        &format!(
            "MODEL: {{NAME: R2D3D}}{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4}}
NUM_GPUS: 0
DATA: {{TRAIN_CROP_SIZE: 32, NUM_INPUT_FRAMES: 4}}
TRAIN: {{DATASET: synthetic_videos, NUM_SAMPLES: 9, BATCH_SIZE: 128}}
TEST: {{BATCH_SIZE: 64}}
DATA_LOADER: {{NUM_WORKERS: 0}}
"
        ),
    );
    let cfg = tada::config::load(&path, &[]).unwrap();
    let e =
        tada::runs::finetune(&cfg, &run_options(&d.path().join("run"), false, None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the training set gives no batch: 9 samples, fewer than one batch of 128 \
         (TRAIN.BATCH_SIZE) with drop_last"
    );
    // Test loaders keep their last partial batch; their messages name TEST.BATCH_SIZE.
    use tada::data::dataset::Split;
    let test = tada::data::pipeline::loader_config(&cfg.config, Split::Test, 0);
    assert_eq!(
        (test.batch_size_key, test.drop_last),
        ("TEST.BATCH_SIZE", false)
    );
}
