//! `tada test`: the multi-view test of trained weights, reported as JSON with a confusion-matrix
//! heat map beside it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tada::output_path::check_output_file;

use super::config_args::ConfigArgs;

/// File name of the heat map written beside the JSON report.
const CONFUSION_PNG: &str = "confusion.png";

#[derive(clap::Args)]
pub struct Test {
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long)]
    weights: PathBuf,
    /// Where to write the JSON report (default: test_results.json in the run folder the weights
    /// belong to, beside the weights outside a run); confusion.png goes beside it.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Test the EMA weights (MODEL.EMA) the file holds: a tada checkpoint's, or the reference's
    /// model_ema_state.
    #[arg(long)]
    ema: bool,
}

/// `test_results.json` in the run folder of weights in `RUN/checkpoints/`, else in the
/// weights' own folder.
fn default_output(weights: &Path) -> PathBuf {
    run_folder(weights).join("test_results.json")
}

/// The run folder of weights in `RUN/checkpoints/`, else the weights' own folder.
pub(super) fn run_folder(weights: &Path) -> PathBuf {
    let dir = match weights.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let run = match dir.file_name() {
        Some(n) if n == tada::train::run_dir::CHECKPOINTS_DIR => match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        },
        _ => dir,
    };
    run.to_path_buf()
}

impl Test {
    pub fn run(self) -> Result<()> {
        let weights = &self.weights;
        let loaded = self.config.load()?;
        let c = &loaded.config;
        if c.task_type == tada::config::schema::TaskType::Submission || c.submission.enable {
            return self.submission(loaded);
        }
        if c.task_type == tada::config::schema::TaskType::Localization {
            return super::localize::run(&loaded, weights, self.output.clone());
        }
        // Checked before the evaluation, which can take hours.
        let out = self.output.unwrap_or_else(|| default_output(weights));
        let png = out.with_file_name(CONFUSION_PNG);
        check_output_file(&out, &[&self.config.config, weights])?;
        check_output_file(&png, &[&self.config.config, weights, &out])?;
        // Under a launcher every rank scores its share of the views; rank 0 writes the results.
        let score = || {
            tada::runs::test::test(&loaded, weights, self.ema)
                .map_err(|e| e.with_origin(&loaded.sources))
        };
        on_every_rank(score, |r| report(&r, &out, &png))
    }
}

/// Writes the test report `r` to `out`, its confusion heat map to `png`, and prints the scores.
fn report(r: &tada::runs::test::TestReport, out: &Path, png: &Path) -> Result<()> {
    tada::atomic_write::write(out, serde_json::to_string_pretty(r)?.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    write_confusion_png(png, &r.confusion.counts, &r.confusion.classes)?;
    let pct = |a: Option<f64>| {
        a.map_or("n/a (fewer than 5 classes)".into(), |a| {
            format!("{:.2}%", 100.0 * a)
        })
    };
    if let Some(e) = &r.epic {
        println!(
                "verb acc@1 {:.2}% acc@5 {}; noun acc@1 {:.2}% acc@5 {}; action acc@1 {:.2}% acc@5 {} (per-view fused: acc@1 {:.2}% acc@5 {})",
                100.0 * e.verb.acc1,
                pct(e.verb.acc5),
                100.0 * e.noun.acc1,
                pct(e.noun.acc5),
                100.0 * e.action.acc1,
                pct(e.action.acc5),
                100.0 * e.action_views.acc1,
                pct(e.action_views.acc5),
            );
    }
    let acc5 = pct(r.acc5);
    println!(
            "{} videos x {} views ({} fusion): acc@1 {:.2}%, acc@5 {acc5}; per-class accuracy and confusion matrix in {}, heat map in {}",
            r.videos,
            r.views_per_video,
            r.ensemble,
            100.0 * r.acc1,
            out.display(),
            png.display()
        );
    Ok(())
}

/// Runs `score` on every rank of a launched run (or in the only process) and `report` with its
/// result on rank 0; every rank then meets the others at the finish barrier. A rank whose
/// `score` fails tells the others before it returns the error.
fn on_every_rank<T, E>(
    score: impl FnOnce() -> Result<T, E>,
    report: impl FnOnce(T) -> Result<()>,
) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let world = tada::dist::init().map_err(tada::train::TrainError::Dist)?;
    let r = score();
    if let (Some(w), Err(e)) = (world, &r) {
        w.report_failure(&e.to_string());
    }
    let r = r?;
    if world.is_none_or(|w| w.placement.rank == 0) {
        report(r)?;
    }
    if let Some(w) = world {
        w.finish().map_err(tada::train::TrainError::dist)?;
    }
    Ok(())
}

impl Test {
    /// TASK_TYPE submission (or SUBMISSION.ENABLE): the EPIC-Kitchens challenge JSON of the
    /// test timestamps, to `-o` or SUBMISSION.SAVE_RESULTS_PATH in the weights' run folder.
    fn submission(self, loaded: tada::config::LoadedConfig) -> Result<()> {
        let weights = &self.weights;
        let out = self.output.clone().unwrap_or_else(|| {
            run_folder(weights).join(&loaded.config.submission.save_results_path)
        });
        check_output_file(&out, &[&self.config.config, weights])?;
        let score = || {
            tada::runs::epic_test::submission(&loaded, weights, self.ema)
                .map_err(|e| e.with_origin(&loaded.sources))
        };
        on_every_rank(score, |r| write_submission(&r, &out))
    }
}

/// Writes the submission JSON `r` to `out` and says how many segments it holds.
fn write_submission(r: &serde_json::Value, out: &Path) -> Result<()> {
    let segments = r["results"].as_object().map_or(0, |m| m.len());
    tada::atomic_write::write(out, serde_json::to_string_pretty(r)?.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "submission of {segments} segments written to {}",
        out.display()
    );
    Ok(())
}

/// The confusion matrix as a labelled heat map ([`tada::viz::confusion::render`]): rows = true
/// class, each cell shaded by its share of the row, so rare classes show as clearly as common
/// ones.
fn write_confusion_png(path: &Path, counts: &[Vec<u64>], names: &[String]) -> Result<()> {
    let img = tada::viz::confusion::render(counts, names);
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    tada::atomic_write::write(path, bytes.get_ref())
        .with_context(|| format!("cannot write {}", path.display()))
}
