//! Parity of BMN temporal action localisation with the reference (tests/fixtures/bmn, made by
//! scripts/fixtures/bmn.py): the sampling masks, the network's outputs, the three losses on
//! fixed inputs and recorded draws, the proposals and soft-NMS of one video's maps, and
//! detection AP / mAP. Each comparison has a negative control that must fail it.

use tch::{nn, Device, Kind, Tensor};

use tada::checkpoint::{load_into, read_safetensors, NamedTensors};
use tada::localization::bm_layer::sample_mask;
use tada::localization::eval::{
    interpolated_prec_rec, mean_average_precision, Detection, GroundTruth, TIOU_THRESHOLDS,
};
use tada::localization::loss::{bmn_losses, LossConfig, RegDraws, Targets};
use tada::localization::post::{
    max_proposals, proposals_from_maps, rescore_cr, soft_nms, Scored, SoftNms,
};
use tada::localization::MapSpec;
use tada::models::VideoModel;

use crate::common::fixtures_dir;

fn fixture() -> (NamedTensors, serde_json::Value) {
    let dir = fixtures_dir().join("bmn");
    let t = read_safetensors(&dir.join("bmn.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let j = std::fs::read_to_string(dir.join("bmn.json")).unwrap();
    (t, serde_json::from_str(&j).unwrap())
}

fn get<'a>(f: &'a NamedTensors, name: &str) -> &'a Tensor {
    f.get(name)
        .unwrap_or_else(|| panic!("bmn.safetensors has no {name}"))
}

/// Largest |ours - ref| - rtol·|ref|; within tolerance when <= atol.
fn excess(ours: &Tensor, theirs: &Tensor, rtol: f64) -> f64 {
    assert_eq!(ours.size(), theirs.size());
    let (a, b) = (ours.to_kind(Kind::Double), theirs.to_kind(Kind::Double));
    ((&a - &b).abs() - b.abs() * rtol).max().double_value(&[])
}

fn close(ours: &Tensor, theirs: &Tensor, atol: f64, rtol: f64) -> bool {
    excess(ours, theirs, rtol) <= atol
}

const MODEL_CFG: &str = "
DATA: {TEMPORAL_SCALE: 16, DURATION_SCALE: 8, NUM_INPUT_CHANNELS: 24}
VIDEO:
  DIM1D: 16
  DIM2D: 8
  DIM3D: 12
  BACKBONE_LAYER: 2
  BACKBONE_GROUPS_NUM: 4
  BACKBONE: {META_ARCH: SimpleLocalizationConv}
  HEAD: {NAME: BaseBMN, NUM_SAMPLE: 4, NUM_SAMPLE_PERBIN: 3, BOUNDARY_RATIO: 0.5}
";

/// Builds the fixture's network from `overrides` and loads the reference's weights, all but
/// the sampling mask, so that the mask in use is the one tada built.
fn bmn_model(f: &NamedTensors, overrides: &[&str]) -> (nn::VarStore, VideoModel) {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let cfg = tada::config::load_str(MODEL_CFG, "bmn.yaml", &overrides).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = VideoModel::new(&vs.root(), &cfg.config).unwrap();
    let weights = NamedTensors {
        tensors: f
            .tensors
            .iter()
            .filter_map(|(n, t)| {
                let key = n.strip_prefix("model.state.")?;
                (key != "head.sample_mask").then(|| (key.to_string(), t.shallow_clone()))
            })
            .collect(),
        metadata: Default::default(),
    };
    load_into(
        &vs,
        &weights,
        std::path::Path::new("bmn.safetensors"),
        false,
    )
    .unwrap();
    (vs, model)
}

#[test]
fn bmn_sampling_masks_are_the_references() {
    let (f, _) = fixture();
    let (vs, _) = bmn_model(&f, &[]);
    let ours = &vs.variables()["head.sample_mask"];
    let theirs = get(&f, "model.state.head.sample_mask");
    assert!(close(ours, theirs, 1e-7, 0.0), "head.sample_mask");
    let spec = |ratio| MapSpec {
        tscale: 12,
        dscale: 12,
        num_sample: 5,
        num_sample_perbin: 1,
        boundary_ratio: ratio,
    };
    assert!(
        close(&sample_mask(&spec(0.25)), get(&f, "mask2"), 1e-7, 0.0),
        "mask2"
    );
    // Negative control: another boundary ratio samples elsewhere.
    assert!(!close(
        &sample_mask(&spec(0.5)),
        get(&f, "mask2"),
        1e-3,
        0.0
    ));
}

#[test]
fn bmn_outputs_are_the_references() {
    let (f, _) = fixture();
    let x = get(&f, "model.input");
    let run = |overrides: &[&str]| {
        let (_vs, model) = bmn_model(&f, overrides);
        model.check_input(x).unwrap();
        let out = tch::no_grad(|| model.forward_t(x, false));
        ["confidence_map", "start", "end"]
            .map(|k| (k, out.predictions.get(k).unwrap().shallow_clone()))
    };
    for (k, t) in run(&[]) {
        let theirs = get(&f, &format!("model.{k}"));
        assert!(
            close(&t, theirs, 1e-6, 1e-5),
            "{k}: excess {}",
            excess(&t, theirs, 1e-5)
        );
    }
    // Negative control: a wrong BOUNDARY_RATIO changes the sampled features and the map.
    let wrong = run(&["VIDEO.HEAD.BOUNDARY_RATIO=0.25"]);
    assert!(!close(
        &wrong[0].1,
        get(&f, "model.confidence_map"),
        1e-6,
        1e-5
    ));
}

fn losses_with(f: &NamedTensors, cfg: &LossConfig, swap_draws: bool) -> [Tensor; 4] {
    let t = |k: &str| get(f, k).shallow_clone();
    let targets = Targets {
        start: &t("loss.label.start_map"),
        end: &t("loss.label.end_map"),
        iou_map: &t("loss.label.iou_map"),
        mask: &t("loss.label.mask"),
    };
    let (m, l) = (t("loss.u_m"), t("loss.u_l"));
    let draws = if swap_draws {
        RegDraws { medium: l, low: m }
    } else {
        RegDraws { medium: m, low: l }
    };
    let out = bmn_losses(
        &t("loss.pred.confidence_map"),
        &t("loss.pred.start"),
        &t("loss.pred.end"),
        &targets,
        cfg,
        &draws,
    );
    [out.tem, out.pem_reg, out.pem_cls, out.total]
}

#[test]
fn bmn_losses_are_the_references() {
    let (f, _) = fixture();
    let names = ["tem", "pem_reg", "pem_cls", "total"];
    let ours = losses_with(&f, &LossConfig::default(), false);
    for (k, t) in names.iter().zip(&ours) {
        let theirs = get(&f, &format!("loss.{k}")).reshape([-1i64; 0].as_slice());
        assert!(close(t, &theirs, 1e-6, 1e-5), "{k}: {t} vs {theirs}");
    }
    // Negative controls: a wrong regression threshold, the draws swapped, a wrong cls threshold.
    let wrong_reg = LossConfig {
        pos_reg_thres: 0.6,
        ..LossConfig::default()
    };
    let reg = |l: &[Tensor; 4]| l[1].shallow_clone();
    let theirs_reg = get(&f, "loss.pem_reg").reshape([-1i64; 0].as_slice());
    assert!(!close(
        &reg(&losses_with(&f, &wrong_reg, false)),
        &theirs_reg,
        1e-6,
        1e-5
    ));
    assert!(!close(
        &reg(&losses_with(&f, &LossConfig::default(), true)),
        &theirs_reg,
        1e-6,
        1e-5
    ));
    let wrong_cls = LossConfig {
        pos_cls_thres: 0.8,
        ..LossConfig::default()
    };
    let theirs_cls = get(&f, "loss.pem_cls").reshape([-1i64; 0].as_slice());
    assert!(!close(
        &losses_with(&f, &wrong_cls, false)[2],
        &theirs_cls,
        1e-6,
        1e-5
    ));
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let cols = t.size()[1] as usize;
    let v = Vec::<f64>::try_from(t.flatten(0, -1)).unwrap();
    v.chunks(cols).map(|c| c.to_vec()).collect()
}

fn nms_params(j: &serde_json::Value, alpha: f64) -> SoftNms {
    let p = &j["post"];
    let n = max_proposals(
        p["duration"].as_f64().unwrap(),
        p["prop_num_ratio"].as_f64().unwrap(),
    );
    assert_eq!(n as u64, p["prop_num"].as_u64().unwrap());
    SoftNms {
        alpha,
        low_thres: p["t1"].as_f64().unwrap(),
        high_thres: p["t2"].as_f64().unwrap(),
        iou_power: p["iou_power"].as_f64().unwrap(),
        max_proposals: n,
    }
}

/// The candidate proposals of the fixture's maps.
fn fixture_proposals(f: &NamedTensors) -> Vec<tada::localization::post::Proposal> {
    let cmap = get(f, "post.confidence_map");
    proposals_from_maps(
        &values(get(f, "post.start")),
        &values(get(f, "post.end")),
        &values(&cmap.select(0, 1)),
        &values(&cmap.select(0, 0)),
    )
}

#[test]
fn bmn_proposals_and_soft_nms_are_the_references() {
    let (f, j) = fixture();
    let props = fixture_proposals(&f);
    let theirs = rows(get(&f, "post.proposals"));
    assert_eq!(props.len(), theirs.len(), "proposal count");
    for (p, r) in props.iter().zip(&theirs) {
        let ours = p.row();
        for (a, b) in ours.iter().zip(r) {
            assert!(
                (a - b).abs() <= 1e-7 * b.abs().max(1.0),
                "{ours:?} vs {r:?}"
            );
        }
    }
    let p = &j["post"];
    let (clr_power, reg_power) = (
        p["clr_power"].as_f64().unwrap(),
        p["reg_power"].as_f64().unwrap(),
    );
    let scored = rescore_cr(
        &props,
        clr_power,
        reg_power,
        p["select_score"].as_f64().unwrap(),
    );
    let kept = soft_nms(&scored, &nms_params(&j, p["alpha"].as_f64().unwrap()));
    let matches = |kept: &[Scored]| {
        let theirs = rows(get(&f, "post.nms"));
        kept.len() == theirs.len()
            && kept.iter().zip(&theirs).all(|(k, r)| {
                k.index as f64 == r[3]
                    && (k.score - r[0]).abs() <= 1e-6 * r[0].abs().max(1e-3)
                    && k.xmin == r[1]
                    && k.xmax == r[2]
            })
    };
    assert!(matches(&kept), "soft-NMS differs: {kept:?}");
    // Negative control: another decay (SOFT_NMS_ALPHA) keeps other proposals or scores.
    let other = soft_nms(&scored, &nms_params(&j, 0.8));
    assert!(!matches(&other));
}

fn eval_sets(f: &NamedTensors) -> (Vec<GroundTruth>, Vec<Detection>) {
    let gt = rows(get(f, "eval.gt"))
        .into_iter()
        .map(|r| GroundTruth {
            video: format!("video{}", r[0]),
            start: r[1],
            end: r[2],
            label: r[3] as usize,
        })
        .collect();
    let det = rows(get(f, "eval.det"))
        .into_iter()
        .map(|r| Detection {
            video: format!("video{}", r[0]),
            start: r[1],
            end: r[2],
            label: r[3] as usize,
            score: r[4],
        })
        .collect();
    (gt, det)
}

#[test]
fn detection_map_is_the_references() {
    let (f, _) = fixture();
    let tiou = Vec::<f64>::try_from(get(&f, "eval.tiou")).unwrap();
    for (a, b) in tiou.iter().zip(TIOU_THRESHOLDS) {
        assert!((a - b).abs() < 1e-12);
    }
    let (gt, det) = eval_sets(&f);
    let ours = mean_average_precision(&gt, &det, &TIOU_THRESHOLDS);
    // The fixture evaluates classes 0..K in order; ours are in first-seen order.
    let ap = rows(get(&f, "eval.ap"));
    for (t, row) in ap.iter().enumerate() {
        for (c, want) in row.iter().enumerate() {
            let i = ours.classes.iter().position(|&k| k == c).unwrap();
            assert!(
                (ours.ap[t][i] - want).abs() < 1e-12,
                "AP tIoU {} class {c}",
                tiou[t]
            );
        }
    }
    let map = Vec::<f64>::try_from(get(&f, "eval.map")).unwrap();
    for (a, b) in ours.map.iter().zip(&map) {
        assert!((a - b).abs() < 1e-12, "{:?} vs {map:?}", ours.map);
    }
    let prec = Vec::<f64>::try_from(get(&f, "eval.interp.prec")).unwrap();
    let rec = Vec::<f64>::try_from(get(&f, "eval.interp.rec")).unwrap();
    let want = get(&f, "eval.interp.ap").double_value(&[0]);
    assert!((interpolated_prec_rec(&prec, &rec) - want).abs() < 1e-12);
    // Negative control: detections that lose their scores' order score another mAP.
    let flipped: Vec<Detection> = det
        .iter()
        .map(|d| Detection {
            score: 1.0 - d.score,
            ..d.clone()
        })
        .collect();
    let other = mean_average_precision(&gt, &flipped, &TIOU_THRESHOLDS);
    assert!(other
        .map
        .iter()
        .zip(&map)
        .any(|(a, b)| (a - b).abs() > 1e-6));
}

#[test]
fn bmn_training_targets_are_the_references() {
    use tada::localization::labels::LabelMaps;
    let (f, j) = fixture();
    let c = &j["labels"];
    let (t, d) = (
        c["tscale"].as_u64().unwrap() as usize,
        c["dscale"].as_u64().unwrap() as usize,
    );
    let gt: Vec<(f64, f64)> = c["gt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g[0].as_f64().unwrap(), g[1].as_f64().unwrap()))
        .collect();
    let bbox = LabelMaps::normalise(&gt, c["duration"].as_f64().unwrap());
    let theirs_bbox = rows(get(&f, "labels.bbox"));
    for (a, b) in bbox.iter().zip(&theirs_bbox) {
        assert!((a.0 - b[0]).abs() < 1e-12 && (a.1 - b[1]).abs() < 1e-12);
    }
    let maps = LabelMaps::new(t, d);
    let ours = maps.targets(&bbox);
    assert!(
        close(&maps.valid_mask(), get(&f, "labels.mask"), 0.0, 0.0),
        "mask"
    );
    for (k, v) in [
        ("iou_map", &ours.iou_map),
        ("start", &ours.start),
        ("end", &ours.end),
    ] {
        let theirs = get(&f, &format!("labels.{k}"));
        assert!(
            close(v, theirs, 1e-7, 0.0),
            "{k}: excess {}",
            excess(v, theirs, 0.0)
        );
    }
    // Negative control: a window twice as long halves every segment.
    let other = maps.targets(&LabelMaps::normalise(&gt, 16.0));
    assert!(!close(&other.iou_map, get(&f, "labels.iou_map"), 1e-3, 0.0));
}

#[test]
fn bmn_action_pairs_are_the_references() {
    use tada::localization::actions::fuse_verb_noun;
    let (f, _) = fixture();
    let props = fixture_proposals(&f);
    let (verb_map, noun_map) = (get(&f, "post.verb_map"), get(&f, "post.noun_map"));
    let (pairs, scores) = (get(&f, "post.verb_noun"), get(&f, "post.vn_score"));
    let cell =
        |m: &Tensor, (d, s): (usize, usize)| values(&m.select(1, d as i64).select(1, s as i64));
    let agrees = |i: usize, verb: &[f32]| {
        let ours = fuse_verb_noun(verb, &cell(noun_map, props[i].cell));
        let want_pairs = Vec::<i64>::try_from(pairs.get(i as i64).flatten(0, -1)).unwrap();
        let want_scores = values(&scores.get(i as i64));
        ours.len() * 2 == want_pairs.len()
            && ours.iter().enumerate().all(|(k, a)| {
                a.verb as i64 == want_pairs[2 * k]
                    && a.noun as i64 == want_pairs[2 * k + 1]
                    && [a.verb_score, a.noun_score, a.score] == want_scores[3 * k..3 * k + 3]
            })
    };
    for (i, p) in props.iter().enumerate() {
        assert!(agrees(i, &cell(verb_map, p.cell)), "proposal {i}");
    }
    // Negative control: the verb scores of another cell give other pairs.
    let other = cell(verb_map, props[1].cell);
    assert!(!agrees(0, &other));
}
