//! A libtorch failure inside a training step (what CUDA running out of memory looks like to
//! the loop) stops the run with one error naming the step and a checkpoint of the state before
//! it, from which `--resume` continues.

use std::cell::Cell;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use tada::checkpoint::Checkpoint;
use tada::data::loader::{Batch, Loader, LoaderConfig, Sample, SampleError, SampleSource};
use tada::models::Session;
use tada::models::VideoModel;
use tada::tasks::{StepContext, Task, TaskLoss};
use tada::train::run_dir::RunDir;
use tada::train::TrainError;
use tch::{Device, Kind, Tensor};

use crate::common::{run_options, serial, TINY_BACKBONE};

/// Eight constant clips of (3, 4, 32, 32), four classes.
struct Clips;

impl SampleSource for Clips {
    fn len(&self) -> usize {
        8
    }

    fn get(&self, index: usize, _rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
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

/// Cross-entropy on the clips; the call numbered `fail_at` hits a libtorch error instead.
struct FailingTask {
    fail_at: Option<u64>,
    calls: Cell<u64>,
}

impl Task for FailingTask {
    fn name(&self) -> &str {
        "failing"
    }

    fn step(
        &mut self,
        model: &VideoModel,
        batch: &Batch,
        device: Device,
        _ctx: &StepContext,
    ) -> Result<TaskLoss, tada::tasks::TaskError> {
        self.calls.set(self.calls.get() + 1);
        if Some(self.calls.get()) == self.fail_at {
            // Shapes that cannot be multiplied: libtorch throws, tch panics.
            let _ = Tensor::zeros([2, 3], (Kind::Float, device))
                .matmul(&Tensor::zeros([4, 5], (Kind::Float, device)));
        }
        let out = model.forward_t(&batch.inputs.to_device(device), true);
        let logits = out.predictions.get("").expect("one output").shallow_clone();
        Ok(TaskLoss {
            loss: logits.cross_entropy_for_logits(&batch.labels.to_device(device)),
            metrics: Vec::new(),
        })
    }
}

#[test]
fn a_failed_step_is_reported_checkpointed_and_resumable() {
    let _serial = serial();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("run.yaml");
    std::fs::write(
        &path,
        format!(
            "MODEL: {{NAME: R2D3D}}{TINY_BACKBONE}  HEAD: {{NAME: BaseHead, NUM_CLASSES: 4}}
NUM_GPUS: 0
RANDOM_SEED: 4
TRAIN: {{BATCH_SIZE: 4, CHECKPOINT_PERIOD: 1}}
OPTIMIZER: {{OPTIM_METHOD: sgd, BASE_LR: 0.01, MAX_EPOCH: 3, WARMUP_EPOCHS: 0}}
"
        ),
    )
    .unwrap();
    let cfg = tada::config::load(&path, &[]).unwrap();
    let loader = || {
        let lc = LoaderConfig {
            batch_size: 4,
            num_workers: 0,
            ..LoaderConfig::default()
        };
        Loader::new(Arc::new(Clips), lc)
    };
    let out = d.path().join("out");
    let opts = run_options(&out, false, None).train;

    let session = Session::new(&cfg.config).unwrap();
    let mut run = RunDir::create(&out).unwrap();
    let mut failing = FailingTask {
        fail_at: Some(4),
        calls: Cell::new(0),
    };
    let e = tada::runs::fit_loader(&cfg, &session, &mut failing, loader(), &mut run, &opts)
        .unwrap_err();
    let TrainError::StepFailed {
        step,
        ref message,
        checkpoint: Some(ref ckpt),
        ..
    } = e
    else {
        panic!("expected a step failure with a checkpoint, got {e}");
    };
    assert_eq!(step, 4);
    let text = e.to_string();
    eprintln!("{text}");
    assert!(
        text.starts_with("step 4 failed: ") && text.contains("cannot be multiplied"),
        "{text}"
    );
    assert!(
        !message.contains('\n') && !message.contains("Exception raised from"),
        "{message}"
    );
    assert!(
        text.contains(&ckpt.display().to_string()) && text.contains("--resume"),
        "{text}"
    );
    assert_eq!(Checkpoint::load(ckpt).unwrap().run.step, 3);
    // Written inside epoch 2, beside (not over) the checkpoint of epoch 1.
    assert!(
        ckpt.ends_with("checkpoint_epoch_00001_step_00000003.safetensors"),
        "{ckpt:?}"
    );
    let epoch1 = out.join("checkpoints").join(Checkpoint::file_name(1));
    assert_eq!(Checkpoint::load(&epoch1).unwrap().run.step, 2);

    // Resuming with a task that works continues after step 3 (the failed run's folder closed
    // first: a folder is locked while open).
    drop(run);
    let session = Session::new(&cfg.config).unwrap();
    let mut run = RunDir::create(&out).unwrap();
    let mut working = FailingTask {
        fail_at: None,
        calls: Cell::new(0),
    };
    let mut opts = opts.clone();
    opts.resume = true;
    let s =
        tada::runs::fit_loader(&cfg, &session, &mut working, loader(), &mut run, &opts).unwrap();
    assert_eq!(s.resumed_from.as_ref(), Some(ckpt));
    assert_eq!((s.steps, working.calls.get()), (6, 3));
}
