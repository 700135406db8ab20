//! `tada mosi-preview`: what MoSI generates, as pictures — per image one animated GIF per speed
//! class, a labelled PNG grid (rows: speeds with their class, columns: frames), and
//! `labels.json`.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tada_augment::mosi::{head_num_classes, Labels, MosiGenerator, MosiHead, Split};
use tada_augment::visualize::{self, clip_frames};

use super::config::{generator_config, MosiConfigError};
use super::pictures::clip_grid;
use crate::config::Config;
use crate::data::sources::synthetic_images::synthetic_image;

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Config(#[from] MosiConfigError),
    #[error(transparent)]
    Mosi(#[from] tada_augment::mosi::MosiError),
    #[error(transparent)]
    Visualize(#[from] visualize::VisualizeError),
    #[error(transparent)]
    Viz(#[from] crate::viz::VizError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to preview.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    pub images: usize,
    pub seed: u64,
    pub split: Split,
    /// Size of the synthetic source images.
    pub image_size: (usize, usize),
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self {
            images: 2,
            seed: 0,
            split: Split::Train,
            image_size: (240, 320),
        }
    }
}

/// The `labels.json` of a config: the same fields as each entry of the reference fixture
/// `mosi_labels.json`.
pub fn labels_json(cfg: &Config, gen: &MosiGenerator) -> serde_json::Value {
    let s = gen.speed_set();
    let speeds = super::config::speed_config(cfg).ok();
    let heads = speeds.map(|sc| {
        json!({
            "MoSIHeadJoint": head_num_classes(&sc, MosiHead::Joint),
            "MoSIHeadOnlyX": head_num_classes(&sc, MosiHead::OnlyX),
            "MoSIHeadOnlyY": head_num_classes(&sc, MosiHead::OnlyY),
        })
    });
    let labels = match &s.labels {
        Labels::Joint { move_joint } => json!({ "move_joint": move_joint }),
        Labels::Separate { move_x, move_y } => json!({ "move_x": move_x, "move_y": move_y }),
    };
    let p = &cfg.pretrain;
    json!({
        "NUM_CLASSES": cfg.video.head.num_classes,
        "DECOUPLE": p.decouple,
        "DATA_MODE": p.data_mode,
        "ZERO_OUT": p.zero_out,
        "LABEL_MODE": p.label_mode,
        "ok": true,
        "speed_range": s.speed_range,
        "speed_all": s.speed_all,
        "speed_set": s.speeds,
        "num_samples_per_image": s.len(),
        "labels": labels,
        "head_num_classes": heads,
    })
}

/// Writes the preview into `out` and returns the files written.
pub fn mosi_preview(
    cfg: &Config,
    out: &Path,
    opts: &PreviewOptions,
) -> Result<Vec<PathBuf>, PreviewError> {
    let gcfg = generator_config(cfg)?;
    let (mean, std) = (gcfg.mean, gcfg.std);
    let gen = MosiGenerator::new(gcfg)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PreviewError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut files = Vec::new();
    let labels_path = out.join("labels.json");
    let text = serde_json::to_string_pretty(&labels_json(cfg, &gen)).unwrap_or_default();
    std::fs::write(&labels_path, text + "\n").map_err(io(&labels_path))?;
    files.push(labels_path);
    let (h, w) = opts.image_size;
    for i in 0..opts.images {
        let image = synthetic_image(opts.seed, i as u64, h, w);
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(i as u64));
        let sample = gen.generate(&image, opts.split, &mut rng)?;
        let mut rows = Vec::new();
        for (k, [sx, sy]) in gen.speed_set().speeds.iter().enumerate() {
            let frames = clip_frames(&sample.clips.get(k as i64), mean, std)?;
            let gif = out.join(format!("image{i}_class{k}_x{sx}_y{sy}.gif"));
            visualize::write_gif(&gif, &frames, 100)?;
            files.push(gif);
            rows.push(frames);
        }
        let png = out.join(format!("image{i}_grid.png"));
        let title = format!("MoSI image {i}: one row per speed, frames left to right");
        crate::viz::write_png(&png, &clip_grid(gen.speed_set(), &rows, 8, Some(title))?)?;
        files.push(png);
    }
    Ok(files)
}
