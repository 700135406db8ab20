//! Optimisation: parameter groups, SGD / Adam / AdamW / LARS with exportable state, the
//! learning-rate schedule and gradient clipping (reference: docs/training.md#optimisation).
//!
//! The optimisers are written here on plain tensors rather than through tch's `COptimizer`:
//! libtorch's C++ optimisers do take per-group learning rates and weight decays, but tch exposes
//! no way to read or write their state (so a resumed run could not continue exactly), and the C++
//! Adam updates its first moment with `mul_`/`add_` where PyTorch's Python Adam uses `lerp_`.
//!
//! A training step with these pieces:
//! ```text
//! opt.set_lr(schedule.lr_at(fractional_epoch(epoch, iter, iters, folds)));
//! opt.zero_grad(); loss.backward();
//! if let Some(max) = clip { opt.clip_grad_norm(max)?; }   // Err: non-finite norm, stop the run
//! opt.step();
//! ```

mod adam;
mod arith;
mod clip;
mod groups;
mod hyper;
mod layerwise;
mod optimizer;
mod schedule;
mod sgd;
mod state;

pub use clip::{clip_grad_norm, clip_threshold};
pub use groups::{build_groups, trainable_parameters, GroupRules, ParamGroup};
pub use hyper::Hyper;
pub use optimizer::Optimizer;
pub use schedule::{fractional_epoch, LrSchedule};

#[cfg(test)]
mod groups_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod update_reference;
#[cfg(test)]
mod update_tests;

/// Why an optimiser or schedule could not be built, stepped or restored. Config errors name the
/// dotted config key at fault; state errors name the optimiser tensor.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error(transparent)]
    Key(#[from] crate::config::KeyError),
    /// Something the reference has but tada does not build; the message names the key.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    #[error("optimiser state {name}: {message}")]
    State { name: String, message: String },
    /// The global gradient norm is NaN or infinite; the gradients were left untouched.
    #[error("the gradient norm is {0} (not finite): the loss or a gradient has diverged")]
    NonFiniteGradNorm(f64),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl OptimError {
    pub(crate) fn missing(key: &str, needed_by: &str) -> Self {
        Self::Key(crate::config::KeyError::missing(key, needed_by))
    }

    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Key(crate::config::KeyError::invalid(key, message))
    }

    pub(crate) fn state(name: &str, message: impl Into<String>) -> Self {
        Self::State {
            name: name.into(),
            message: message.into(),
        }
    }

    /// The config key at fault, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Key(k) => Some(&k.key),
            _ => None,
        }
    }
}
