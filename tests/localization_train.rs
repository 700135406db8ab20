//! BMN learns planted segments: a small network trained on the embedded synthetic features
//! (tada::localization::synthetic) lowers its losses and detects held-out segments far better
//! than at initialisation, while its sampling mask (a frozen parameter) stays as built.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Tensor};

use tada::localization::eval::{mean_average_precision, Detection, GroundTruth};
use tada::localization::loss::{bmn_losses, LossConfig, RegDraws, Targets};
use tada::localization::post::{proposals_from_maps, rescore_cr, soft_nms, SoftNms};
use tada::localization::synthetic::{batch, Batch, SyntheticSpec};
use tada::models::VideoModel;

const CFG: &str = "
DATA: {TEMPORAL_SCALE: 16, DURATION_SCALE: 8, NUM_INPUT_CHANNELS: 16}
VIDEO:
  DIM1D: 32
  DIM2D: 16
  DIM3D: 32
  BACKBONE_LAYER: 2
  BACKBONE_GROUPS_NUM: 4
  BACKBONE: {META_ARCH: SimpleLocalizationConv}
  HEAD: {NAME: BaseBMN, NUM_SAMPLE: 4, NUM_SAMPLE_PERBIN: 3, BOUNDARY_RATIO: 0.5}
";

const SPEC: SyntheticSpec = SyntheticSpec {
    channels: 16,
    tscale: 16,
    dscale: 8,
    max_segments: 2,
    noise: 1.0,
};

const SEED: u64 = 7;
/// Held-out windows start here; training reads windows below it.
const HELD_OUT: u64 = 1 << 20;

fn losses(
    model: &VideoModel,
    b: &Batch,
    rng: &mut ChaCha8Rng,
) -> tada::localization::loss::BmnLosses {
    let out = model.forward_t(&b.features, true);
    let p = |k: &str| out.predictions.get(k).unwrap();
    let targets = Targets {
        start: &b.start,
        end: &b.end,
        iou_map: &b.iou_map,
        mask: &b.mask,
    };
    let draws = RegDraws::sample(&b.iou_map, rng);
    bmn_losses(
        p("confidence_map"),
        p("start"),
        p("end"),
        &targets,
        &LossConfig::default(),
        &draws,
    )
}

/// mAP at tIoU 0.5 of the post-processed proposals of 64 held-out windows (one class).
fn held_out_map(model: &VideoModel) -> f64 {
    let b = batch(&SPEC, SEED, HELD_OUT, 64);
    let out = tch::no_grad(|| model.forward_t(&b.features, false));
    let p = |k: &str| out.predictions.get(k).unwrap();
    let v = |t: Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    let nms = SoftNms {
        alpha: 0.4,
        low_thres: 0.25,
        high_thres: 0.9,
        iou_power: 2.0,
        max_proposals: 10,
    };
    let (mut gt, mut dets) = (Vec::new(), Vec::new());
    for (i, segs) in b.segments.iter().enumerate() {
        let video = format!("w{i}");
        let cmap = p("confidence_map").get(i as i64);
        let props = proposals_from_maps(
            &v(p("start").get(i as i64)),
            &v(p("end").get(i as i64)),
            &v(cmap.get(1)),
            &v(cmap.get(0)),
        );
        for k in soft_nms(&rescore_cr(&props, 1.2, 1.0, 0.0), &nms) {
            dets.push(Detection {
                video: video.clone(),
                start: k.xmin,
                end: k.xmax,
                label: 0,
                score: k.score,
            });
        }
        for &(s, e) in segs {
            gt.push(GroundTruth {
                video: video.clone(),
                start: s,
                end: e,
                label: 0,
            });
        }
    }
    mean_average_precision(&gt, &dets, &[0.5]).map[0]
}

#[test]
fn bmn_learns_planted_segments() {
    let _serial = crate::common::serial();
    tch::manual_seed(0);
    let cfg = tada::config::load_str(CFG, "bmn_synthetic.yaml", &[]).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = VideoModel::new(&vs.root(), &cfg.config).unwrap();
    let mask_before = vs.variables()["head.sample_mask"].copy();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let probe = batch(&SPEC, SEED, HELD_OUT, 32);
    let before = tch::no_grad(|| {
        losses(&model, &probe, &mut rng.clone())
            .total
            .double_value(&[])
    });
    let map_before = held_out_map(&model);
    let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
    for step in 0..150u64 {
        let b = batch(&SPEC, SEED, step * 16, 16);
        opt.backward_step(&losses(&model, &b, &mut rng).total);
    }
    let after = tch::no_grad(|| {
        losses(&model, &probe, &mut rng.clone())
            .total
            .double_value(&[])
    });
    let map_after = held_out_map(&model);
    eprintln!("loss {before:.3} -> {after:.3}, mAP@0.5 {map_before:.3} -> {map_after:.3}");
    assert!(after < 0.7 * before, "loss {before} -> {after}");
    assert!(
        map_after > map_before + 0.2,
        "mAP@0.5 {map_before} -> {map_after}"
    );
    assert!(map_after > 0.5, "mAP@0.5 {map_after}");
    // The mask is no trainable variable: the optimiser never moved it.
    assert!(vs.variables()["head.sample_mask"].equal(&mask_before));
}
