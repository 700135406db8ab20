//! BMN's training losses, as the reference computes them: the temporal evaluation loss (TEM:
//! start and end, balanced binary log-loss), the proposal evaluation regression loss (PEM reg:
//! squared error on IoU-stratified, randomly sub-sampled map positions) and classification
//! loss (PEM cls: balanced binary log-loss at an IoU threshold), summed with LOSS_WEIGHTS.

use rand::Rng;
use tch::{Kind, Reduction, Tensor};

use crate::config::schema::LocalizationConfig;
use crate::config::KeyError;

/// The LOSS tada builds.
pub const LOSS_TERMS: &str = "Tem+PemReg+PemCls";

/// Added inside every log, as in the reference.
const EPSILON: f64 = 1e-6;

/// The LOCALIZATION keys the losses read, with the reference's defaults
/// (configs/pool/run/training/localization.yaml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// POS_CLS_THRES: IoU above which a map position is a positive for PEM cls.
    pub pos_cls_thres: f64,
    /// POS_REG_THRES: IoU above which a position is "high" for PEM reg (always kept).
    pub pos_reg_thres: f64,
    /// NEG_REG_THRES: IoU at or below which a (valid, non-zero) position is "low".
    pub neg_reg_thres: f64,
    /// LOSS_WEIGHTS of Tem, PemReg, PemCls (LOSS: Tem+PemReg+PemCls).
    pub weights: [f64; 3],
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            pos_cls_thres: 0.9,
            pos_reg_thres: 0.7,
            neg_reg_thres: 0.3,
            weights: [1.0, 10.0, 1.0],
        }
    }
}

impl LossConfig {
    /// From LOCALIZATION: LOSS must be `Tem+PemReg+PemCls` (spaces aside), LOSS_WEIGHTS gives
    /// at least its three weights, the thresholds are in [0, 1].
    pub fn from_config(l: &LocalizationConfig) -> Result<Self, KeyError> {
        let loss: String = l.loss.chars().filter(|c| !c.is_whitespace()).collect();
        if loss != LOSS_TERMS {
            return Err(KeyError::invalid(
                "LOCALIZATION.LOSS",
                format!("is {:?}; tada builds {LOSS_TERMS:?}", l.loss),
            ));
        }
        let [a, b, c, ..] = l.loss_weights[..] else {
            return Err(KeyError::invalid(
                "LOCALIZATION.LOSS_WEIGHTS",
                format!(
                    "needs a weight per term of {LOSS_TERMS}, got {:?}",
                    l.loss_weights
                ),
            ));
        };
        for (key, v) in [
            ("LOCALIZATION.POS_CLS_THRES", l.pos_cls_thres),
            ("LOCALIZATION.POS_REG_THRES", l.pos_reg_thres),
            ("LOCALIZATION.NEG_REG_THRES", l.neg_reg_thres),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(KeyError::invalid(
                    key,
                    format!("must be in [0, 1], got {v}"),
                ));
            }
        }
        Ok(Self {
            pos_cls_thres: l.pos_cls_thres,
            pos_reg_thres: l.pos_reg_thres,
            neg_reg_thres: l.neg_reg_thres,
            weights: [a, b, c],
        })
    }
}

/// What the losses compare against (the dataset's labels).
#[derive(Debug)]
pub struct Targets<'a> {
    /// (B, T) start and end labels in [0, 1]; above 0.5 is a positive.
    pub start: &'a Tensor,
    pub end: &'a Tensor,
    /// (B, D, T) best IoU of each proposal with the ground truth.
    pub iou_map: &'a Tensor,
    /// (B, D, T) 1 where the proposal lies inside the window.
    pub mask: &'a Tensor,
}

/// The two uniform fields PEM reg thresholds to sub-sample medium- and low-IoU positions (the
/// reference draws them with np.random.rand on every call).
#[derive(Debug)]
pub struct RegDraws {
    /// (B, D, T) in [0, 1), for the medium-IoU positions.
    pub medium: Tensor,
    /// (B, D, T) in [0, 1), for the low-IoU positions.
    pub low: Tensor,
}

impl RegDraws {
    /// Draws both fields from `rng` (medium first), as f32 on `like`'s device.
    pub fn sample(like: &Tensor, rng: &mut impl Rng) -> Self {
        let shape = like.size();
        let n: i64 = shape.iter().product();
        let mut field = || {
            let v: Vec<f32> = (0..n).map(|_| rng.random::<f64>() as f32).collect();
            Tensor::from_slice(&v)
                .reshape(&shape)
                .to_device(like.device())
        };
        let medium = field();
        let low = field();
        Self { medium, low }
    }
}

/// Each loss and their weighted sum, all scalars.
#[derive(Debug)]
pub struct BmnLosses {
    pub tem: Tensor,
    pub pem_reg: Tensor,
    pub pem_cls: Tensor,
    pub total: Tensor,
}

/// All three losses and their LOSS_WEIGHTS sum.
///
/// # Shapes
/// confidence_map (B, 2, D, T) (channel 0 regression, 1 classification), start and end (B, T).
pub fn bmn_losses(
    confidence_map: &Tensor,
    start: &Tensor,
    end: &Tensor,
    targets: &Targets,
    cfg: &LossConfig,
    draws: &RegDraws,
) -> BmnLosses {
    let tem = tem_loss(start, end, targets.start, targets.end);
    let pem_reg = pem_reg_loss(&confidence_map.select(1, 0), targets, cfg, draws);
    let pem_cls = pem_cls_loss(&confidence_map.select(1, 1), targets, cfg);
    let [a, b, c] = cfg.weights;
    let total = &tem * a + &pem_reg * b + &pem_cls * c;
    BmnLosses {
        tem,
        pem_reg,
        pem_cls,
        total,
    }
}

/// TEM: the balanced log-loss of the start and of the end probabilities, summed.
///
/// # Shapes
/// all (B, T) -> scalar.
pub fn tem_loss(start: &Tensor, end: &Tensor, gt_start: &Tensor, gt_end: &Tensor) -> Tensor {
    balanced_bce(start, gt_start) + balanced_bce(end, gt_end)
}

/// Positives (label > 0.5) weighted 0.5·n/n⁺ and negatives 0.5·n/n⁻ (the reference's
/// `0.5·r/(r−1)` with r = n/n⁺), averaged over all n positions.
fn balanced_bce(pred: &Tensor, gt: &Tensor) -> Tensor {
    let pred = pred.reshape([-1]);
    // The reference's per-sample label weights are all ones.
    let weight = Tensor::ones_like(&pred);
    let pmask = gt.reshape([-1]).gt(0.5).to_kind(Kind::Float) * &weight;
    let ratio = weight.sum(Kind::Float) / pmask.sum(Kind::Float);
    let coef_0 = &ratio * 0.5 / (&ratio - 1.0);
    let coef_1 = &ratio * 0.5;
    let loss_pos = coef_1 * (&pred + EPSILON).log() * &pmask * &weight;
    let loss_neg = coef_0 * ((-&pred + 1.0) + EPSILON).log() * (-&pmask + 1.0) * &weight;
    -(loss_pos + loss_neg).mean(Kind::Float)
}

/// PEM reg: squared error on every high-IoU position plus about as many medium- and low-IoU
/// ones, picked by thresholding `draws`; half the weighted sum over the kept count.
///
/// # Shapes
/// pred (B, D, T) -> scalar.
pub fn pem_reg_loss(pred: &Tensor, t: &Targets, cfg: &LossConfig, draws: &RegDraws) -> Tensor {
    let gt = t.iou_map * t.mask;
    let high = gt.gt(cfg.pos_reg_thres).to_kind(Kind::Float);
    let medium = gt
        .le(cfg.pos_reg_thres)
        .logical_and(&gt.gt(cfg.neg_reg_thres))
        .to_kind(Kind::Float);
    let low = gt
        .le(cfg.neg_reg_thres)
        .logical_and(&gt.gt(0.0))
        .to_kind(Kind::Float)
        * t.mask;
    let num_h = high.sum(Kind::Float);
    let num_m = medium.sum(Kind::Float);
    let num_l = low.sum(Kind::Float);
    let r_m = if num_m.double_value(&[]) == 0.0 {
        &num_h / (num_m + 1.0)
    } else {
        &num_h / num_m
    };
    let keep_m = (&medium * &draws.medium)
        .gt_tensor(&(-r_m + 1.0))
        .to_kind(Kind::Float);
    let r_l = &num_h / num_l;
    let keep_l = (&low * &draws.low)
        .gt_tensor(&(-r_l + 1.0))
        .to_kind(Kind::Float);
    let weights = high + keep_m + keep_l;
    let mse = (pred * &weights).mse_loss(&(&gt * &weights), Reduction::Mean);
    // The reference multiplies the mean by a map of ones and sums: the mean times the count.
    let summed = (mse * Tensor::ones_like(&weights)).sum(Kind::Float);
    summed * 0.5 / weights.sum(Kind::Float)
}

/// PEM cls: balanced log-loss with positives at IoU > POS_CLS_THRES, negatives the other
/// valid positions, summed over both and divided by their count.
///
/// # Shapes
/// pred (B, D, T) -> scalar.
pub fn pem_cls_loss(pred: &Tensor, t: &Targets, cfg: &LossConfig) -> Tensor {
    let gt = t.iou_map * t.mask;
    let pmask = gt.gt(cfg.pos_cls_thres).to_kind(Kind::Float);
    let nmask = gt.le(cfg.pos_cls_thres).to_kind(Kind::Float) * t.mask;
    let num_positive = pmask.sum(Kind::Float);
    let num_entries = &num_positive + nmask.sum(Kind::Float);
    let ratio = if num_positive.double_value(&[]) == 0.0 {
        Tensor::zeros_like(&num_positive)
    } else {
        &num_entries / &num_positive
    };
    let coef_0 = &ratio * 0.5 / (&ratio - 1.0);
    let coef_1 = &ratio * 0.5;
    let loss_pos = coef_1 * (pred + EPSILON).log() * &pmask;
    let loss_neg = coef_0 * ((-pred + 1.0) + EPSILON).log() * &nmask;
    -(loss_pos + loss_neg).sum(Kind::Float) / num_entries
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recipe's defaults; bmn_epic's four LOSS_WEIGHTS for three terms; other terms refused.
    #[test]
    fn loss_settings_come_from_localization() {
        let mut l = LocalizationConfig::default();
        assert_eq!(LossConfig::from_config(&l).unwrap(), LossConfig::default());
        l.loss_weights = vec![1.0, 10.0, 1.0, 1.0];
        assert_eq!(
            LossConfig::from_config(&l).unwrap().weights,
            [1.0, 10.0, 1.0]
        );
        l.loss_weights = vec![1.0];
        assert!(LossConfig::from_config(&l)
            .unwrap_err()
            .to_string()
            .contains("LOSS_WEIGHTS"));
        l.loss = "Tem+PemReg+PemCls+BmnActionCls".into();
        assert!(LossConfig::from_config(&l)
            .unwrap_err()
            .to_string()
            .contains("LOCALIZATION.LOSS"));
    }
}
