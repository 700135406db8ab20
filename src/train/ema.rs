//! MODEL.EMA (docs/training.md#model-ema): an exponential moving average of every tensor of the
//! model (parameters and BatchNorm statistics), updated after every optimiser step as the
//! reference's `ModelEmaV2`: `ema = decay * ema + (1 - decay) * weight`. It is saved in every
//! checkpoint as `__ema.<name>__` (so weight loading skips it), restored on resume, scored beside
//! the model in validation (`val_ema/*`), and tested with `tada test --ema`.

use tch::nn::VarStore;
use tch::Tensor;

use super::TrainError;

/// The averaged weights, beside the model's own.
pub struct ModelEma {
    decay: f64,
    /// `(name, model tensor, average)`, sorted by name. The model tensors share the
    /// VarStore's storage, so no lookup is needed per step.
    slots: Vec<(String, Tensor, Tensor)>,
}

impl ModelEma {
    /// An average that starts at the model's current weights, as the reference's deep copy.
    pub fn new(vs: &VarStore, decay: f64) -> Self {
        let mut slots: Vec<(String, Tensor, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(name, t)| {
                let avg = tch::no_grad(|| t.detach().copy());
                (name, t, avg)
            })
            .collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        Self { decay, slots }
    }

    /// The average of a checkpoint (`saved`: model names and tensors). Every tensor of the
    /// model must be there with its shape; a checkpoint without any (the run had no EMA) gives
    /// `None`, and the caller starts the average from the weights.
    pub fn restore(
        vs: &VarStore,
        decay: f64,
        saved: &[(String, Tensor)],
    ) -> Result<Option<Self>, TrainError> {
        if saved.is_empty() {
            return Ok(None);
        }
        let ema = Self::new(vs, decay);
        for (name, _, avg) in &ema.slots {
            let Some((_, t)) = saved.iter().find(|(n, _)| n == name) else {
                return Err(TrainError::Run(format!(
                    "the checkpoint's EMA weights lack {name}"
                )));
            };
            if t.size() != avg.size() {
                return Err(TrainError::Run(format!(
                    "the checkpoint's EMA weight {name} is {:?}, the model's {:?}",
                    t.size(),
                    avg.size()
                )));
            }
            tch::no_grad(|| avg.shallow_clone().copy_(t));
        }
        Ok(Some(ema))
    }

    /// One update after an optimiser step. The arithmetic is the reference's, operation for
    /// operation (`decay * e + (1 - decay) * m`, then copied into `e`), so float32 rounding is
    /// the same; an integer buffer is computed in float and truncated by the copy, as there.
    pub fn update(&mut self) {
        let d = self.decay;
        tch::no_grad(|| {
            for (_, model, avg) in &self.slots {
                let next = avg.g_mul_scalar(d) + model.g_mul_scalar(1.0 - d);
                avg.shallow_clone().copy_(&next);
            }
        });
    }

    /// `(name, average)` pairs, sorted by name.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.slots.iter().map(|(n, _, a)| (n.as_str(), a))
    }

    /// Exchanges the model's weights with the average (call again to swap back): validation
    /// scores the average with the model's own forward pass.
    pub fn swap(&mut self) {
        tch::no_grad(|| {
            for (_, model, avg) in &self.slots {
                let keep = model.detach().copy();
                model.shallow_clone().copy_(avg);
                avg.shallow_clone().copy_(&keep);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    fn store() -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let _w = root.var("w", &[3], nn::Init::Const(1.0));
        let _rm = root.zeros_no_train("running_mean", &[2]);
        vs
    }

    fn set(vs: &VarStore, name: &str, values: &[f32]) {
        let vars = vs.variables();
        tch::no_grad(|| {
            vars[name]
                .shallow_clone()
                .copy_(&Tensor::from_slice(values));
        });
    }

    /// After k updates the average is the reference's rule applied k times, in float32 as
    /// PyTorch computes it (`decay * e + (1 - decay) * m`), computed here independently.
    #[test]
    fn k_updates_follow_the_reference_rule() {
        let vs = store();
        let decay = 0.9;
        let mut ema = ModelEma::new(&vs, decay);
        let steps: [[f32; 3]; 3] = [[2.0, -1.0, 0.5], [4.0, 0.0, 0.25], [-3.0, 8.0, 1.5]];
        let mut want = [1.0f32; 3];
        let (d32, r32) = (decay as f32, (1.0 - decay) as f32);
        for w in steps {
            set(&vs, "w", &w);
            set(&vs, "running_mean", &[w[0], w[1]]);
            ema.update();
            for i in 0..3 {
                want[i] = d32 * want[i] + r32 * w[i];
            }
        }
        let got: Vec<f32> = ema
            .tensors()
            .find(|(n, _)| *n == "w")
            .unwrap()
            .1
            .try_into()
            .unwrap();
        assert_eq!(got, want.to_vec());
        let rm: Vec<f32> = ema
            .tensors()
            .find(|(n, _)| *n == "running_mean")
            .unwrap()
            .1
            .try_into()
            .unwrap();
        // The buffer started at 0, not 1.
        let mut want_rm = [0.0f32; 2];
        for w in steps {
            for i in 0..2 {
                want_rm[i] = d32 * want_rm[i] + r32 * w[i];
            }
        }
        assert_eq!(rm, want_rm.to_vec());
    }

    #[test]
    fn swap_exchanges_and_swaps_back() {
        let vs = store();
        let mut ema = ModelEma::new(&vs, 0.5);
        set(&vs, "w", &[3.0, 3.0, 3.0]);
        ema.update(); // average 2.0
        ema.swap();
        let w = vs.variables()["w"].shallow_clone();
        assert_eq!(w.double_value(&[0]), 2.0);
        assert!(w.requires_grad(), "still a trainable parameter");
        ema.swap();
        assert_eq!(vs.variables()["w"].double_value(&[0]), 3.0);
        let avg = ema.tensors().find(|(n, _)| *n == "w").unwrap().1;
        assert_eq!(avg.double_value(&[0]), 2.0);
    }

    #[test]
    fn restore_needs_every_tensor_with_its_shape() {
        let vs = store();
        assert!(ModelEma::restore(&vs, 0.9, &[]).unwrap().is_none());
        let saved = vec![
            (
                "w".to_string(),
                Tensor::full([3], 7.0, (Kind::Float, Device::Cpu)),
            ),
            (
                "running_mean".to_string(),
                Tensor::zeros([2], (Kind::Float, Device::Cpu)),
            ),
        ];
        let ema = ModelEma::restore(&vs, 0.9, &saved).unwrap().unwrap();
        assert_eq!(ema.tensors().next().unwrap().0, "running_mean");
        assert_eq!(ema.tensors().nth(1).unwrap().1.double_value(&[1]), 7.0);
        let e = ModelEma::restore(&vs, 0.9, &saved[..1]).err().unwrap();
        assert!(e.to_string().contains("lack running_mean"), "{e}");
        let bad = vec![
            ("w".to_string(), saved[0].1.shallow_clone()),
            (
                "running_mean".to_string(),
                Tensor::zeros([5], (Kind::Float, Device::Cpu)),
            ),
        ];
        let e = ModelEma::restore(&vs, 0.9, &bad).err().unwrap();
        assert!(e.to_string().contains("running_mean is [5]"), "{e}");
    }
}
