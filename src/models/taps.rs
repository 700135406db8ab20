//! Named intermediate outputs of a forward pass, for comparing against the reference's
//! forward hooks (`__out_<module path>__` in the fixtures).

use tch::Tensor;

/// Collects module outputs under their full module path (e.g. `backbone.conv3`,
/// `head.out_joint`). A disabled collector records nothing and costs nothing.
#[derive(Debug, Default)]
pub struct Taps {
    enabled: bool,
    tensors: Vec<(String, Tensor)>,
}

impl Taps {
    /// A collector that keeps every recorded output.
    pub fn collecting() -> Self {
        Self {
            enabled: true,
            tensors: Vec::new(),
        }
    }

    /// A collector that drops everything (plain forward passes).
    pub fn off() -> Self {
        Self::default()
    }

    pub(crate) fn record(&mut self, path: &str, t: &Tensor) {
        if self.enabled {
            self.tensors.push((path.to_string(), t.shallow_clone()));
        }
    }

    /// The output recorded under `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == path).map(|(_, t)| t)
    }

    /// Recorded module paths, in the order the modules ran.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _)| n.as_str())
    }

    pub fn into_vec(self) -> Vec<(String, Tensor)> {
        self.tensors
    }
}

/// The dotted module path of `path` (what tch joins variable names with).
pub(crate) fn module_path(path: &tch::nn::Path) -> String {
    path.components().collect::<Vec<_>>().join(".")
}
