//! Run logs: metrics.jsonl, progress lines without a terminal, TensorBoard read-back.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tada::train::metrics::{read_metrics, MetricsLog};
use tada::train::progress::Progress;
use tempfile::TempDir;

#[test]
fn metrics_jsonl_appends_one_object_per_line() {
    let d = TempDir::new().unwrap();
    let p = d.path().join("metrics.jsonl");
    let mut m = MetricsLog::open(&p).unwrap();
    m.log("train", 0, 1, &[("loss", 2.5), ("lr", 0.1)]).unwrap();
    m.log("train", 0, 2, &[("loss", f64::NAN)]).unwrap();
    drop(m);
    // Reopening (a resumed run) appends.
    MetricsLog::open(&p)
        .unwrap()
        .log("val", 1, 2, &[("acc1", 50.0)])
        .unwrap();
    let recs = read_metrics(&p).unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["loss"], 2.5);
    assert_eq!(recs[0]["step"], 1);
    assert_eq!(recs[1]["loss"], "NaN");
    assert_eq!(recs[2]["phase"], "val");
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn progress_without_terminal_prints_periodic_lines() {
    let buf = Shared::default();
    let mut p = Progress::plain("pretrain", 10, 4, Box::new(buf.clone()));
    for i in 0..10 {
        p.inc(1, || format!("loss={:.2}", 1.0 / (i + 1) as f64));
    }
    p.finish();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("pretrain 4/10 (40.0%)")
            && lines[0].contains("it/s")
            && lines[0].contains("loss=0.25"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("pretrain 10/10 (100.0%)") && lines[2].contains("eta 0s"),
        "{text}"
    );
}

#[test]
fn run_dir_writes_config_metrics_and_tensorboard() {
    use tada::config::load_str;
    use tada::train::run_dir::RunDir;
    use tada::train::tensorboard::{images, scalars};

    let d = TempDir::new().unwrap();
    let cfg = load_str("VIDEO:\n  HEAD:\n    NUM_CLASSES: 3\n", "run.yaml", &[]).unwrap();
    let root = d.path().join("run");
    let mut run = RunDir::create(&root).unwrap();
    // The loop writes the config once the run starts; creating the folder does not.
    assert!(!root.join("config.yaml").exists());
    run.write_config(&cfg.to_yaml()).unwrap();
    run.log_scalars("train", 0, 1, &[("loss", 1.5)]).unwrap();
    run.log_scalars("train", 0, 2, &[("loss", 0.75)]).unwrap();
    let rgb: Vec<u8> = (0..6 * 10 * 3).map(|i| i as u8).collect();
    run.log_image("crops/views", &rgb, 6, 10, 2).unwrap();
    drop(run);

    assert!(root.join("checkpoints").is_dir());
    let again = tada::config::load(&root.join("config.yaml"), &[]).unwrap();
    assert_eq!(
        again.config, cfg.config,
        "resolved config reloads identically"
    );
    assert_eq!(read_metrics(&root.join("metrics.jsonl")).unwrap().len(), 2);

    let events: Vec<_> = std::fs::read_dir(root.join("tensorboard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(events.len(), 1);
    let s = scalars(&events[0]).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!((s[1].0.as_str(), s[1].1, s[1].2), ("train/loss", 2, 0.75));
    let im = images(&events[0]).unwrap();
    assert_eq!(im.len(), 1);
    let png = image::load_from_memory(&im[0].4).unwrap().to_rgb8();
    assert_eq!((png.width(), png.height()), (10, 6));
    assert_eq!(png.into_raw(), rgb, "non-square image stored unscrambled");

    // A resumed run reopens the folder and appends.
    let mut run = RunDir::create(&root).unwrap();
    run.log_scalars("train", 0, 3, &[("loss", 0.5)]).unwrap();
    assert_eq!(read_metrics(&root.join("metrics.jsonl")).unwrap().len(), 3);
}
