//! Every random choice of one RandAugment call, as plain data. The reference draws from
//! Python's `random` and numpy's global generators; here one explicit RNG makes the same kinds
//! of draw with the same distributions (not the same stream).

use rand::Rng;

use super::level::{level_arg, LevelArg};
use super::{MagnitudeNoise, OpKind, RandAugment, Resample};

/// One chosen op and its draw.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerDraw {
    pub op: OpKind,
    /// Passed the probability-0.5 gate; an op that did not fire leaves the clip as it is.
    pub fired: bool,
    /// The magnitude after noise and clipping to `[0, magnitude_max]`, as the level function
    /// reads it.
    pub magnitude: f64,
    /// The sign of `_randomly_negate` (read by [`OpKind::signed`] ops only).
    pub negate: bool,
    /// The filter of a geometric op.
    pub resample: Resample,
}

impl LayerDraw {
    /// The argument the op runs with (the reference's level function).
    pub fn level_arg(&self) -> LevelArg {
        level_arg(self.op, self.magnitude, self.negate)
    }
}

/// The draws of one clip, in the order the ops run. Every frame gets the same ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RandAugmentDraw {
    pub layers: Vec<LayerDraw>,
}

/// One normal deviate (Box–Muller), as `random.gauss(mu, sigma)`.
fn gauss(rng: &mut impl Rng, mu: f64, sigma: f64) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    mu + sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `n` distinct indices drawn in turn with probability proportional to `weights` among those
/// not drawn yet: numpy's `choice(..., replace=False, p=weights)` has this distribution.
fn weighted_distinct(rng: &mut impl Rng, weights: &[f64], n: usize) -> Vec<usize> {
    let mut w = weights.to_vec();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let Some(last) = w.iter().rposition(|&p| p > 0.0) else {
            break;
        };
        let mut u = rng.random::<f64>() * w.iter().sum::<f64>();
        let mut pick = last;
        for (i, &p) in w.iter().enumerate() {
            if p > 0.0 && u < p {
                pick = i;
                break;
            }
            u -= p;
        }
        w[pick] = 0.0;
        out.push(pick);
    }
    out
}

impl RandAugment {
    /// Draws the ops of one clip and, per op, the gate, magnitude, sign and filter.
    pub fn draw(&self, rng: &mut impl Rng) -> RandAugmentDraw {
        let picks: Vec<usize> = match &self.weights {
            None => (0..self.num_layers)
                .map(|_| rng.random_range(0..self.ops.len()))
                .collect(),
            Some(w) => weighted_distinct(rng, w, self.num_layers),
        };
        let layers = picks
            .into_iter()
            .map(|i| {
                let op = self.ops[i];
                // The reference skips an op when random() > 0.5.
                let fired = rng.random::<f64>() <= 0.5;
                let mut magnitude = self.magnitude;
                let mut negate = false;
                if fired {
                    magnitude = match self.noise {
                        MagnitudeNoise::Fixed => self.magnitude,
                        MagnitudeNoise::Gauss(s) => gauss(rng, self.magnitude, s),
                        MagnitudeNoise::Uniform => self.magnitude * rng.random::<f64>(),
                    };
                    magnitude = magnitude.min(self.magnitude_max).max(0.0);
                    negate = op.signed() && rng.random::<f64>() > 0.5;
                }
                LayerDraw {
                    op,
                    fired,
                    magnitude,
                    negate,
                    resample: self.resample,
                }
            })
            .collect();
        RandAugmentDraw { layers }
    }
}
