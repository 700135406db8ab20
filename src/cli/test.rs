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
}

/// The run folder of weights in `RUN/checkpoints/`, else the weights' own folder.
fn default_output(weights: &Path) -> PathBuf {
    let dir = match weights.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let run = match dir.file_name() {
        Some(n) if n == "checkpoints" => match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        },
        _ => dir,
    };
    run.join("test_results.json")
}

impl Test {
    pub fn run(self) -> Result<()> {
        let weights = &self.weights;
        // Checked before the evaluation, which can take hours.
        let out = self.output.unwrap_or_else(|| default_output(weights));
        let png = out.with_file_name(CONFUSION_PNG);
        check_output_file(&out, &[&self.config.config, weights])?;
        check_output_file(&png, &[&self.config.config, weights, &out])?;
        let loaded = self.config.load()?;
        let r =
            tada::runs::test::test(&loaded, weights).map_err(|e| e.with_origin(&loaded.sources))?;
        tada::atomic_write::write(&out, serde_json::to_string_pretty(&r)?.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
        write_confusion_png(&png, &r.confusion.counts, &r.confusion.classes)?;
        let acc5 = r.acc5.map_or("n/a (fewer than 5 classes)".into(), |a| {
            format!("{:.2}%", 100.0 * a)
        });
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
}

/// The confusion matrix as a heat map: one square cell per (true, predicted) pair, rows = true
/// class, white (none of the row's videos) to dark blue (all of them). Rows are normalised by
/// their own count so that rare classes show as clearly as common ones. Class names are not
/// drawn yet (`_names`).
fn write_confusion_png(path: &Path, counts: &[Vec<u64>], _names: &[String]) -> Result<()> {
    let k = counts.len().max(1) as u32;
    // At least ~256 px a side, 2 to 32 px a cell.
    let cell = (256 / k).clamp(2, 32);
    let img = image::RgbImage::from_fn(k * cell, k * cell, |x, y| {
        let row = counts.get((y / cell) as usize);
        let total: u64 = row.map_or(0, |r| r.iter().sum());
        let n = row.and_then(|r| r.get((x / cell) as usize)).copied();
        let f = if total == 0 {
            0.0
        } else {
            n.unwrap_or(0) as f64 / total as f64
        };
        // White to (8, 48, 107), the dark end of the usual "Blues" map.
        let mix = |dark: f64| (255.0 - f * (255.0 - dark)).round() as u8;
        image::Rgb([mix(8.0), mix(48.0), mix(107.0)])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    tada::atomic_write::write(path, bytes.get_ref())
        .with_context(|| format!("cannot write {}", path.display()))
}
