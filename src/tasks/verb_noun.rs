//! EPIC-Kitchens' two predictions, verb and noun, trained and scored as the reference's
//! (`losses.calculate_loss`, `metrics.joint_topks_correct`):
//!
//! - the loss is the sum of the verb and the noun cross-entropy (each with
//!   AUGMENTATION.LABEL_SMOOTHING over its own classes, or against its mixed soft targets);
//! - verb and noun top-k are each head's own;
//! - an action is a (verb, noun) pair, class `verb * K_noun + noun`, scored by the outer
//!   product of the two heads' probabilities, so top-1 is right exactly when both heads' top-1
//!   are, and top-5 is the 5 most probable pairs (not "verb in top 5 and noun in top 5").
//!
//! Scores that are not probabilities (logits, or views' probabilities summed) go through a
//! softmax first, as the reference's; it tests one row for an exact sum of 1, tada tests every
//! row within 1e-4, so a single view's float rounding does not decide it.

use tch::{Kind, Tensor};

/// Top-1 and top-5 hits of each prediction, counted over a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hits {
    pub verb: [f64; 2],
    pub noun: [f64; 2],
    pub action: [f64; 2],
}

impl Hits {
    pub fn add(&mut self, o: &Hits) {
        for (a, b) in [
            (&mut self.verb, o.verb),
            (&mut self.noun, o.noun),
            (&mut self.action, o.action),
        ] {
            a[0] += b[0];
            a[1] += b[1];
        }
    }
}

/// Top-1 and top-min(K, 5) hits of `(N, K)` scores against `(N)` labels.
pub fn topk_hits(scores: &Tensor, labels: &Tensor) -> [f64; 2] {
    let k = scores.size()[1].min(5);
    let (_, idx) = scores.topk(k, 1, true, true);
    // (N, k): column 0 is the top-1 guess.
    let hit = idx.eq_tensor(&labels.to_kind(Kind::Int64).unsqueeze(1));
    [
        hit.select(1, 0).sum(Kind::Double).double_value(&[]),
        hit.any_dim(1, false).sum(Kind::Double).double_value(&[]),
    ]
}

/// `scores` as probabilities: unchanged when every row sums to 1, else their softmax.
pub fn as_probabilities(scores: &Tensor) -> Tensor {
    let sums = scores.sum_dim_intlist(1, false, Kind::Double);
    let off = (sums - 1.0).abs().max().double_value(&[]);
    match off <= 1e-4 {
        true => scores.to_kind(Kind::Float),
        false => scores.softmax(1, Kind::Float),
    }
}

/// The action scores of verb and noun scores: their outer product per row.
///
/// # Shapes
/// `(N, K_verb)`, `(N, K_noun)` -> `(N, K_verb * K_noun)`, column `v * K_noun + n`.
pub fn action_scores(verb: &Tensor, noun: &Tensor) -> Tensor {
    let (v, n) = (as_probabilities(verb), as_probabilities(noun));
    let b = v.size()[0];
    // (N, Kv, 1) x (N, 1, Kn) -> (N, Kv, Kn) -> (N, Kv * Kn).
    (v.unsqueeze(2) * n.unsqueeze(1)).reshape([b, -1])
}

/// The action class of `(N)` verb and noun labels.
pub fn action_labels(verb: &Tensor, noun: &Tensor, nouns: i64) -> Tensor {
    verb.to_kind(Kind::Int64) * nouns + noun.to_kind(Kind::Int64)
}

/// Hits of a batch: `(N, K_verb)` and `(N, K_noun)` scores, `(N, 2)` `[verb, noun]` labels.
pub fn hits(verb: &Tensor, noun: &Tensor, labels: &Tensor) -> Hits {
    tch::no_grad(|| {
        let (yv, yn) = (labels.select(1, 0), labels.select(1, 1));
        let nouns = noun.size()[1];
        Hits {
            verb: topk_hits(verb, &yv),
            noun: topk_hits(noun, &yn),
            action: topk_hits(&action_scores(verb, noun), &action_labels(&yv, &yn, nouns)),
        }
    })
}

/// The training loss, and its parts `loss_verb_class`, `loss_noun_class` (the reference's
/// names). `labels` are `(N, 2)` class indices, or `(N, K_verb + K_noun)` mixed soft targets
/// (float): the verb's then the noun's.
pub fn loss(verb: &Tensor, noun: &Tensor, labels: &Tensor, smoothing: f64) -> (Tensor, [f64; 2]) {
    let kv = verb.size()[1];
    let parts: [Tensor; 2] = match labels.kind() {
        Kind::Int64 | Kind::Int => [0, 1].map(|i| {
            let y = labels.select(1, i).to_kind(Kind::Int64);
            let logits = if i == 0 { verb } else { noun };
            // The reference's smoothed one-hot target, which ATen's `label_smoothing` is.
            logits.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, smoothing)
        }),
        _ => {
            let kn = noun.size()[1];
            let (tv, tn) = (labels.narrow(1, 0, kv), labels.narrow(1, kv, kn));
            [
                tada_augment::transforms::mixup::soft_target_cross_entropy(verb, &tv),
                tada_augment::transforms::mixup::soft_target_cross_entropy(noun, &tn),
            ]
        }
    };
    let values = [0, 1].map(|i| tch::no_grad(|| parts[i].double_value(&[])));
    (&parts[0] + &parts[1], values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Action top-1 is right only when both heads are; top-5 is over pairs, so a pair whose
    /// verb and noun are each in their top 5 can miss it.
    #[test]
    fn an_action_is_right_when_its_pair_is_among_the_best_pairs() {
        // One clip, 3 verbs, 6 nouns, probabilities.
        let verb = Tensor::from_slice(&[0.6f32, 0.3, 0.1]).view([1, 3]);
        let noun = Tensor::from_slice(&[0.5f32, 0.2, 0.1, 0.1, 0.05, 0.05]).view([1, 6]);
        let h = |v: i64, n: i64| hits(&verb, &noun, &Tensor::from_slice(&[v, n]).view([1, 2]));
        assert_eq!(h(0, 0).action, [1.0, 1.0]);
        assert_eq!(h(0, 0).verb, [1.0, 1.0]);
        // Verb right, noun wrong: no action top-1.
        assert_eq!(h(0, 1).action, [0.0, 1.0]);
        // Pairs by score: (0,0) .30, (1,0) .15, (0,1) .12, (0,2) .06, (0,3) .06, (1,1) .06 …:
        // (2, 0) = .05 is not among the best 5 though verb 2 and noun 0 are each in theirs.
        assert_eq!(h(2, 0).action, [0.0, 0.0]);
        assert_eq!((h(2, 0).verb, h(2, 0).noun), ([0.0, 1.0], [1.0, 1.0]));
        // The label is v * K_noun + n, not n * K_verb + v (which would be class 2 = (0, 2)).
        assert_eq!(
            action_labels(
                &Tensor::from_slice(&[2i64]),
                &Tensor::from_slice(&[0i64]),
                6
            )
            .int64_value(&[0]),
            12
        );
    }

    /// Logits go through a softmax before the outer product, probabilities do not.
    #[test]
    fn scores_become_probabilities_once() {
        let p = Tensor::from_slice(&[0.7f32, 0.2, 0.1]).view([1, 3]);
        assert!(as_probabilities(&p).allclose(&p, 0.0, 0.0, false));
        let logits = Tensor::from_slice(&[2.0f32, 0.5, -1.0]).view([1, 3]);
        let want = logits.softmax(1, Kind::Float);
        assert!(as_probabilities(&logits).allclose(&want, 1e-6, 1e-6, false));
        // Two views' probabilities summed are no longer probabilities.
        assert!(!as_probabilities(&(&p * 2.0)).allclose(&(&p * 2.0), 1e-3, 1e-3, false));
    }

    /// The loss is the verb's plus the noun's cross-entropy, with smoothing per head.
    #[test]
    fn the_loss_is_the_sum_of_both_heads() {
        let verb = Tensor::from_slice(&[1.0f32, 0.0, -1.0, 0.5, 0.5, 0.0]).view([2, 3]);
        let noun = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0]).view([2, 4]);
        let y = Tensor::from_slice(&[0i64, 1, 2, 3]).view([2, 2]);
        let (l, parts) = loss(&verb, &noun, &y, 0.0);
        let ce = |x: &Tensor, t: &[i64]| x.cross_entropy_for_logits(&Tensor::from_slice(t));
        let want_v = ce(&verb, &[0, 2]).double_value(&[]);
        let want_n = ce(&noun, &[1, 3]).double_value(&[]);
        assert!((parts[0] - want_v).abs() < 1e-6 && (parts[1] - want_n).abs() < 1e-6);
        assert!((l.double_value(&[]) - want_v - want_n).abs() < 1e-6);
        // Smoothing over each head's own classes: the soft-target form of the reference.
        let s = 0.2;
        let (_, smoothed) = loss(&verb, &noun, &y, s);
        let soft = |x: &Tensor, t: &[i64], k: i64| {
            let target =
                tada_augment::transforms::mixup::smoothed_one_hot(&Tensor::from_slice(t), k, s);
            tada_augment::transforms::mixup::soft_target_cross_entropy(x, &target).double_value(&[])
        };
        assert!((smoothed[0] - soft(&verb, &[0, 2], 3)).abs() < 1e-6);
        assert!((smoothed[1] - soft(&noun, &[1, 3], 4)).abs() < 1e-6);
        assert!(
            (smoothed[0] - parts[0]).abs() > 1e-3,
            "smoothing changed nothing"
        );
        // Mixed soft targets: the verb's columns, then the noun's.
        let targets = Tensor::cat(
            &[
                tada_augment::transforms::mixup::smoothed_one_hot(
                    &Tensor::from_slice(&[0i64, 2]),
                    3,
                    0.0,
                ),
                tada_augment::transforms::mixup::smoothed_one_hot(
                    &Tensor::from_slice(&[1i64, 3]),
                    4,
                    0.0,
                ),
            ],
            1,
        );
        let (_, mixed) = loss(&verb, &noun, &targets, 0.0);
        assert!((mixed[0] - want_v).abs() < 1e-6 && (mixed[1] - want_n).abs() < 1e-6);
    }

    /// The reference's `joint_topks_correct` and two-head loss on seeded scores
    /// (tests/fixtures/epic, scripts/fixtures/epic_metrics.py): a training batch of logits, and
    /// three views' probabilities fused by sum with their per-view products.
    #[test]
    fn counts_and_losses_match_the_reference() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/epic/metrics.json"
        );
        let f: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (kv, kn) = (f["verbs"].as_i64().unwrap(), f["nouns"].as_i64().unwrap());
        let floats = |v: &serde_json::Value| -> Vec<f32> {
            fn flat(v: &serde_json::Value, out: &mut Vec<f32>) {
                match v.as_array() {
                    Some(a) => a.iter().for_each(|x| flat(x, out)),
                    None => out.push(v.as_f64().unwrap() as f32),
                }
            }
            let mut out = Vec::new();
            flat(v, &mut out);
            out
        };
        let ints = |v: &serde_json::Value| -> Vec<i64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect()
        };
        let (yv, yn) = (ints(&f["labels"][0]), ints(&f["labels"][1]));
        let b = yv.len() as i64;
        // (B, 2) [verb, noun].
        let labels = Tensor::stack(&[Tensor::from_slice(&yv), Tensor::from_slice(&yn)], 1);
        let want = |case: &str, key: &str| -> [f64; 2] {
            let c = &f[case]["counts"][key];
            [c[0].as_f64().unwrap(), c[1].as_f64().unwrap()]
        };
        // Training logits.
        let lv = Tensor::from_slice(&floats(&f["logits"]["verb"])).view([b, kv]);
        let ln = Tensor::from_slice(&floats(&f["logits"]["noun"])).view([b, kn]);
        let h = hits(&lv, &ln, &labels);
        assert_eq!(h.verb, want("logits", "verb_class"));
        assert_eq!(h.noun, want("logits", "noun_class"));
        assert_eq!(h.action, want("logits", "joint_class"));
        for (s, key) in [(0.0, "0.0"), (0.2, "0.2")] {
            let (total, parts) = loss(&lv, &ln, &labels, s);
            let r = &f["losses"][key];
            for i in 0..2 {
                let w = r[i].as_f64().unwrap();
                assert!(
                    (parts[i] - w).abs() < 1e-5,
                    "smoothing {s}: {parts:?} vs {r}"
                );
            }
            assert!((total.double_value(&[]) - parts[0] - parts[1]).abs() < 1e-5);
        }
        // Views: (B, V, K) probabilities, fused by sum.
        let pv = Tensor::from_slice(&floats(&f["views"]["verb"])).view([b, 3, kv]);
        let pn = Tensor::from_slice(&floats(&f["views"]["noun"])).view([b, 3, kn]);
        let (fv, fnoun) = (
            pv.sum_dim_intlist(1, false, Kind::Float),
            pn.sum_dim_intlist(1, false, Kind::Float),
        );
        let h = hits(&fv, &fnoun, &labels);
        assert_eq!(h.verb, want("views", "verb_class"));
        assert_eq!(h.noun, want("views", "noun_class"));
        assert_eq!(h.action, want("views", "joint_class"));
        // Per-view products fused: (B, V, Kv, Kn) summed over V.
        let per_view = (pv.unsqueeze(3) * pn.unsqueeze(2)).sum_dim_intlist(1, false, Kind::Float);
        let ya = action_labels(&labels.select(1, 0), &labels.select(1, 1), kn);
        let got = topk_hits(&per_view.reshape([b, -1]), &ya);
        assert_eq!(got, want("views", "action_class_ind_pred"));
        // Negative control: the pair numbered noun-major scores something else.
        let wrong = action_labels(&labels.select(1, 1), &labels.select(1, 0), kv);
        let swapped = (pv.unsqueeze(2) * pn.unsqueeze(3)).sum_dim_intlist(1, false, Kind::Float);
        assert_eq!(topk_hits(&swapped.reshape([b, -1]), &wrong), got);
        assert_ne!(topk_hits(&per_view.reshape([b, -1]), &wrong), got);
    }
}
