//! Per-parameter optimiser state and its exchange format: named tensors `<slot>.<param>` (slots
//! `momentum_buffer`, `exp_avg`, `exp_avg_sq`, `step`, as PyTorch names them), which the
//! checkpoint stores as `__optim.<slot>.<param>__`.

use tch::{Device, Kind, Tensor};

use super::OptimError;

/// State slot names.
pub(crate) const MOMENTUM_BUFFER: &str = "momentum_buffer";
pub(crate) const EXP_AVG: &str = "exp_avg";
pub(crate) const EXP_AVG_SQ: &str = "exp_avg_sq";
pub(crate) const STEP: &str = "step";

/// What an optimiser remembers about one parameter. `Fresh` until the parameter is first
/// stepped with a gradient: PyTorch creates state lazily, and SGD's first momentum step differs
/// from later ones (`buf = g`), so "no state yet" is itself state.
#[derive(Debug)]
pub(crate) enum ParamState {
    Fresh,
    /// SGD and LARS with momentum ≠ 0.
    Momentum(Tensor),
    /// Adam and AdamW. `step` counts this parameter's updates (PyTorch keeps it per parameter).
    Adam {
        step: u64,
        exp_avg: Tensor,
        exp_avg_sq: Tensor,
    },
}

impl ParamState {
    /// `(slot, tensor)` pairs; `step` as a one-element int64 tensor (exact at any count).
    pub(crate) fn export(&self) -> Vec<(&'static str, Tensor)> {
        match self {
            Self::Fresh => Vec::new(),
            Self::Momentum(buf) => vec![(MOMENTUM_BUFFER, buf.copy())],
            Self::Adam {
                step,
                exp_avg,
                exp_avg_sq,
            } => vec![
                (STEP, Tensor::from_slice(&[*step as i64])),
                (EXP_AVG, exp_avg.copy()),
                (EXP_AVG_SQ, exp_avg_sq.copy()),
            ],
        }
    }

    /// Rebuilds the state of parameter `param` (shape, kind and device of `like`) from its slots.
    /// `adam` says which optimiser family the run uses; slots of the other family are an error.
    pub(crate) fn import(
        param: &str,
        like: &Tensor,
        adam: bool,
        slots: &[(&str, &Tensor)],
    ) -> Result<Self, OptimError> {
        let get = |slot: &str| slots.iter().find(|(s, _)| *s == slot).map(|(_, t)| *t);
        let full = |slot: &str| format!("{slot}.{param}");
        let tensor = |slot: &str| -> Result<Tensor, OptimError> {
            let t = get(slot)
                .ok_or_else(|| OptimError::state(&full(slot), "missing from the checkpoint"))?;
            if t.size() != like.size() {
                return Err(OptimError::state(
                    &full(slot),
                    format!(
                        "has shape {:?}, the parameter has {:?}",
                        t.size(),
                        like.size()
                    ),
                ));
            }
            Ok(t.to_device(like.device()).to_kind(like.kind()).copy())
        };
        for (slot, _) in slots {
            let known: &[&str] = if adam {
                &[STEP, EXP_AVG, EXP_AVG_SQ]
            } else {
                &[MOMENTUM_BUFFER]
            };
            if !known.contains(slot) {
                return Err(OptimError::state(
                    &full(slot),
                    "does not belong to this optimiser (OPTIMIZER.OPTIM_METHOD changed?)",
                ));
            }
        }
        if slots.is_empty() {
            return Ok(Self::Fresh);
        }
        if !adam {
            return Ok(Self::Momentum(tensor(MOMENTUM_BUFFER)?));
        }
        let step_t = get(STEP)
            .ok_or_else(|| OptimError::state(&full(STEP), "missing from the checkpoint"))?;
        if step_t.numel() != 1 {
            return Err(OptimError::state(
                &full(STEP),
                format!("has shape {:?}, expected one value", step_t.size()),
            ));
        }
        let step = step_t
            .to_device(Device::Cpu)
            .to_kind(Kind::Int64)
            .reshape([1]) // (1,): one value whatever its stored shape
            .int64_value(&[0]);
        let step = u64::try_from(step)
            .map_err(|_| OptimError::state(&full(STEP), format!("is negative ({step})")))?;
        Ok(Self::Adam {
            step,
            exp_avg: tensor(EXP_AVG)?,
            exp_avg_sq: tensor(EXP_AVG_SQ)?,
        })
    }
}
