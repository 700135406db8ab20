//! The parameter network: noise in, two cubes per sample out, bounded to valid crops
//! (docs/paramcrop.md#the-parameter-net). It learns a *distribution* of crops, not a
//! content-dependent crop.

use rand::Rng;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::Cube;

/// PRETRAIN.PARAMCROP settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamCropConfig {
    pub noise_dim: i64,
    pub hidden: i64,
    pub views: i64,
    /// Side of a view as a fraction of the short spatial side: `[S_MIN, S_MAX]`.
    pub spatial_scale: [f64; 2],
    /// Length of a view as a fraction of the source frames: `[S_T_MIN, S_T_MAX]`.
    pub temporal_scale: [f64; 2],
    /// Aspect-ratio range, used only when `square` is false.
    pub aspect: [f64; 2],
    pub square: bool,
}

impl Default for ParamCropConfig {
    fn default() -> Self {
        Self {
            noise_dim: 16,
            hidden: 64,
            views: 2,
            spatial_scale: [0.3, 1.0],
            temporal_scale: [0.5, 1.0],
            aspect: [0.75, 1.333],
            square: true,
        }
    }
}

impl ParamCropConfig {
    /// Raw numbers per view: 5 for square crops, 6 with a free aspect ratio.
    pub fn params_per_view(&self) -> i64 {
        if self.square {
            5
        } else {
            6
        }
    }

    /// Raw parameters that [`ParamCropConfig::cubes`] maps to cubes drawn *uniformly* from the same
    /// bounds: the random cubic crop that ParamCrop replaces, sharing its mapping.
    /// `σ(logit u) = u` and `tanh(logit(u) / 2) = 2u − 1`, so `u ~ U(0, 1)` gives uniform
    /// scales and centres uniform over each axis's valid range.
    ///
    /// # Shapes
    /// `(batch, views * P)`.
    pub fn uniform_raw(&self, batch: i64, rng: &mut impl Rng, device: Device) -> Tensor {
        let p = self.params_per_view() as usize;
        let centre_from = if self.square { 2 } else { 3 };
        let n = batch as usize * self.views as usize * p;
        let v: Vec<f32> = (0..n)
            .map(|i| {
                let u = rng.random::<f64>().clamp(1e-6, 1.0 - 1e-6);
                let logit = (u / (1.0 - u)).ln();
                let half = if i % p >= centre_from { 0.5 } else { 1.0 };
                (logit * half) as f32
            })
            .collect();
        Tensor::from_slice(&v)
            .view([batch, self.views * p as i64])
            .to_device(device)
    }

    /// Maps raw parameters to one cube per view for a source of `[T, H, W]`.
    pub fn cubes(&self, raw: &Tensor, source: [i64; 3]) -> Vec<Cube> {
        let p = self.params_per_view();
        let [t_lo, t_hi] = self.temporal_scale;
        let [s_lo, s_hi] = self.spatial_scale;
        let (h, w) = (source[1] as f64, source[2] as f64);
        let short = h.min(w);
        (0..self.views)
            .map(|v| {
                // (B, P) raw numbers of this view: a_t, a_s, [a_r], b_t, b_h, b_w.
                let r = raw.narrow(1, v * p, p);
                let col = |i: i64| r.select(1, i);
                let s_t = col(0).sigmoid() * (t_hi - t_lo) + t_lo;
                let side = col(1).sigmoid() * (s_hi - s_lo) + s_lo;
                let sqrt_aspect = if self.square {
                    Tensor::ones_like(&side)
                } else {
                    let (lo, hi) = (self.aspect[0].ln(), self.aspect[1].ln());
                    ((col(2).sigmoid() * (hi - lo) + lo) * 0.5).exp()
                };
                let b0 = if self.square { 2 } else { 3 };
                let s_h = (&side * (short / h) / &sqrt_aspect).clamp_max(1.0);
                let s_w = (&side * (short / w) * &sqrt_aspect).clamp_max(1.0);
                let scale = Tensor::stack(&[s_w, s_h, s_t], 1);
                // Keeps every cube inside the source: |c| <= 1 - s on each axis.
                let b = Tensor::stack(&[col(b0 + 2), col(b0 + 1), col(b0)], 1).tanh();
                let centre = (scale.ones_like() - &scale) * b;
                Cube { scale, centre }
            })
            .collect()
    }
}

/// Noise -> MLP -> raw parameters -> cubes.
#[derive(Debug)]
pub struct ParamNet {
    fc1: nn::Linear,
    fc2: nn::Linear,
    out: nn::Linear,
    cfg: ParamCropConfig,
}

impl ParamNet {
    /// Variables `fc1`, `fc2`, `out` under `path`. The last layer starts near zero so every crop
    /// begins centred at mid-range scale and the two views nearly coincide: training starts
    /// from easy positives and the adversary makes them harder.
    pub fn new(path: &nn::Path, cfg: &ParamCropConfig) -> Self {
        let p = cfg.params_per_view();
        let out_cfg = nn::LinearConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.01,
            },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        Self {
            fc1: nn::linear(path / "fc1", cfg.noise_dim, cfg.hidden, Default::default()),
            fc2: nn::linear(path / "fc2", cfg.hidden, cfg.hidden, Default::default()),
            out: nn::linear(path / "out", cfg.hidden, cfg.views * p, out_cfg),
            cfg: cfg.clone(),
        }
    }

    /// Standard-normal noise from the caller's seeded RNG (Box–Muller).
    ///
    /// # Shapes
    /// `(batch, noise_dim)`.
    pub fn noise(&self, batch: i64, rng: &mut impl Rng, device: Device) -> Tensor {
        let n = (batch * self.cfg.noise_dim) as usize;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                let u2: f64 = rng.random();
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        Tensor::from_slice(&v)
            .view([batch, self.cfg.noise_dim])
            .to_device(device)
    }

    /// Raw parameters of every view.
    ///
    /// # Shapes
    /// `z`: `(B, noise_dim)` -> `(B, views * P)`.
    pub fn forward(&self, z: &Tensor) -> Tensor {
        self.out
            .forward(&self.fc2.forward(&self.fc1.forward(z).relu()).relu())
    }

    /// Maps raw parameters to one cube per view for a source of `[T, H, W]`.
    pub fn cubes(&self, raw: &Tensor, source: [i64; 3]) -> Vec<Cube> {
        self.cfg.cubes(raw, source)
    }

    pub fn config(&self) -> &ParamCropConfig {
        &self.cfg
    }

    /// Kind of the network's parameters.
    pub fn kind(&self) -> Kind {
        self.out.ws.kind()
    }
}
