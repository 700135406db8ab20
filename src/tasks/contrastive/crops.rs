//! `tada crops`: what ParamCrop cuts. For a few synthetic clips, samples the parameter net (its
//! initial state, or trained weights), draws both view cubes over the source frames (PNG + GIF),
//! writes the views themselves, and reports IoU and centre distance (printed and `crops.json`).

use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tada_augment::paramcrop::{centre_distance, iou, Cube, ParamNet};
use tada_augment::visualize::{self, clip_frames};
use tch::nn::VarStore;
use tch::{Device, IndexOp, Kind, Tensor};

use super::paramcrop::{paramcrop_config, PARAMCROP_PATH};
use crate::checkpoint::{load_into, CheckpointError};
use crate::config::Config;
use crate::data::sources::synthetic_images::synthetic_image;
use crate::models::inference::read_weights;
use crate::viz::draw::upscale_factor;
use crate::viz::grid::{spaced, LabelledGrid, MIN_TILE};
use crate::viz::views::{boxed_frames, views_picture, ViewBox};
use crate::viz::{write_png, VizError};

/// Why the crop preview failed.
#[derive(Debug, thiserror::Error)]
pub enum CropsError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "{path} has no ParamCrop weights (expected paramcrop.fc1/fc2/out.*): missing {missing}"
    )]
    NoParamCropWeights { path: PathBuf, missing: String },
    #[error(transparent)]
    Crop(#[from] tada_augment::paramcrop::ParamCropError),
    #[error(transparent)]
    Visualize(#[from] visualize::VisualizeError),
    #[error(transparent)]
    Viz(#[from] VizError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The overlap measures of one clip's two views.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairStats {
    pub iou: f64,
    pub spatial_iou: f64,
    pub temporal_iou: f64,
    pub centre_distance: f64,
}

/// A synthetic panning clip: a wide synthetic image seen through a window sliding 2 px a frame.
///
/// # Shapes
/// `(1, 3, frames, h, w)` float in [0, 1].
fn synthetic_clip(seed: u64, index: u64, frames: i64, h: i64, w: i64) -> Tensor {
    let wide = synthetic_image(seed, index, h as usize, (w + 2 * frames) as usize);
    let frames: Vec<Tensor> = (0..frames)
        .map(|t| wide.i((.., 2 * t..2 * t + w, ..)))
        .collect();
    // (T, H, W, 3) uint8 -> (1, 3, T, H, W) float.
    Tensor::stack(&frames, 0)
        .permute([3, 0, 1, 2])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 255.0
}

fn pick(cubes: &[Cube], b: i64) -> Vec<Cube> {
    cubes
        .iter()
        .map(|c| Cube {
            scale: c.scale.i(b..b + 1),
            centre: c.centre.i(b..b + 1),
        })
        .collect()
}

/// Where sample `b`'s views sit in a `[T, H, W]` source: pixel and frame spans, one per view.
pub fn view_boxes(views: &[Cube], b: i64, source: [i64; 3]) -> Vec<ViewBox> {
    let [t_in, h, w] = source;
    views
        .iter()
        .map(|cube| {
            let g = |t: &Tensor, k: i64| t.double_value(&[b, k]);
            let span = |k: i64, n: i64| {
                let (c, s) = (g(&cube.centre, k), g(&cube.scale, k));
                [
                    ((c - s + 1.0) / 2.0 * n as f64) as i64,
                    ((c + s + 1.0) / 2.0 * n as f64).ceil() as i64,
                ]
            };
            ViewBox {
                x: span(0, w),
                y: span(1, h),
                t: span(2, t_in),
            }
        })
        .collect()
}

/// Sample `b`'s source frames with its views' boxes: up to 8 frames in rows of 4, each at least
/// 128 px, labelled with its index, under a legend with the views' IoU.
pub fn views_over_source(
    frames: &[RgbImage],
    views: &[Cube],
    b: i64,
) -> Result<RgbImage, VizError> {
    let first = frames.first().ok_or(VizError::Empty)?;
    let source = [
        frames.len() as i64,
        first.height() as i64,
        first.width() as i64,
    ];
    let overlap = match views {
        [a, c, ..] => Some(iou(a, c).iou.double_value(&[b])),
        _ => None,
    };
    views_picture(frames, &view_boxes(views, b, source), overlap, 8, 4)
}

/// The parameter net of `cfg`, initialised from libtorch's generator, or with the `paramcrop.*`
/// tensors of `weights`.
fn param_net(cfg: &Config, weights: Option<&Path>) -> Result<(VarStore, ParamNet), CropsError> {
    let vs = VarStore::new(Device::Cpu);
    let net = ParamNet::new(
        &(vs.root() / PARAMCROP_PATH),
        &paramcrop_config(&cfg.pretrain.paramcrop),
    );
    if let Some(path) = weights {
        let report = load_into(&vs, &read_weights(path)?, path, false)?;
        if !report.missing.is_empty() {
            return Err(CropsError::NoParamCropWeights {
                path: path.to_path_buf(),
                missing: report.missing.join(", "),
            });
        }
    }
    Ok((vs, net))
}

/// Overlap of the first sample's two views.
fn pair_stats(views: &[Cube]) -> PairStats {
    let overlap = iou(&views[0], &views[1]);
    PairStats {
        iou: overlap.iou.double_value(&[0]),
        spatial_iou: overlap.spatial.double_value(&[0]),
        temporal_iou: overlap.temporal.double_value(&[0]),
        centre_distance: centre_distance(&views[0], &views[1]).double_value(&[0]),
    }
}

/// The views themselves, one labelled row each, up to 8 evenly spaced frames.
fn views_grid(rows: &[Vec<RgbImage>], st: &PairStats) -> Result<RgbImage, VizError> {
    let frames = rows.iter().map(Vec::len).max().unwrap_or(0);
    let shown = spaced(frames, 8);
    LabelledGrid {
        title: Some(format!(
            "the views as the encoder sees them, IoU {:.2}, centre distance {:.2}",
            st.iou, st.centre_distance
        )),
        rows: rows
            .iter()
            .map(|r| shown.iter().filter_map(|&t| r.get(t).cloned()).collect())
            .collect(),
        row_labels: (1..=rows.len()).map(|v| format!("view {v}")).collect(),
        col_labels: shown.iter().map(|t| format!("t {t}")).collect(),
    }
    .render()
}

/// `tada crops`: ParamCrop's two views over `clips` synthetic panning clips, as GIF/PNG, with
/// their overlap in `crops.json`.
pub fn crops(
    cfg: &Config,
    weights: Option<&Path>,
    out: &Path,
    clips: usize,
    seed: u64,
) -> Result<Vec<PairStats>, CropsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CropsError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    tch::manual_seed(seed as i64);
    let (_vs, net) = param_net(cfg, weights)?;
    let (t_in, h, w) = (cfg.pretrain.paramcrop.input_frames as i64, 128, 170);
    let s = cfg.data.train_crop_size as i64;
    let t_out = cfg.data.num_input_frames as i64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let z = net.noise(clips as i64, &mut rng, Device::Cpu);
    let cubes = tch::no_grad(|| net.cubes(&net.forward(&z), [t_in, h, w]));
    let (mean, std) = ([0.0; 3], [1.0; 3]);
    let mut stats = Vec::new();
    let mut records = Vec::new();
    for b in 0..clips as i64 {
        let clip = synthetic_clip(seed, b as u64, t_in, h, w);
        let views = pick(&cubes, b);
        let st = pair_stats(&views);
        // Source frames with every view's box drawn on the frames it covers.
        let source = clip_frames(&clip.get(0), mean, std)?;
        let factor = upscale_factor(w as u32, h as u32, MIN_TILE);
        let boxes = view_boxes(&views, 0, [t_in, h, w]);
        let gif = out.join(format!("clip{b}_source.gif"));
        visualize::write_gif(&gif, &boxed_frames(&source, &boxes, factor), 80)?;
        let png = out.join(format!("clip{b}_source.png"));
        write_png(&png, &views_over_source(&source, &views, 0)?)?;
        let mut rows = Vec::new();
        for cube in &views {
            let view = cube.crop(&clip, [t_out, s, s])?;
            rows.push(clip_frames(&view.get(0), mean, std)?);
        }
        write_png(
            &out.join(format!("clip{b}_views.png")),
            &views_grid(&rows, &st)?,
        )?;
        let cube_json = |c: &Cube| {
            json!({"scale_whT": Vec::<f64>::try_from(c.scale.get(0)).unwrap_or_default(),
                   "centre_whT": Vec::<f64>::try_from(c.centre.get(0)).unwrap_or_default()})
        };
        records.push(json!({
            "clip": b, "iou": st.iou, "spatial_iou": st.spatial_iou, "temporal_iou": st.temporal_iou,
            "centre_distance": st.centre_distance, "views": views.iter().map(cube_json).collect::<Vec<_>>(),
        }));
        stats.push(st);
    }
    let json_path = out.join("crops.json");
    let text = serde_json::to_string_pretty(&json!({
        "source": {"frames": t_in, "height": h, "width": w, "synthetic_seed": seed},
        "weights": weights.map(|p| p.display().to_string()),
        "clips": records,
    }))
    .unwrap_or_default();
    std::fs::write(&json_path, text + "\n").map_err(io(&json_path))?;
    Ok(stats)
}
