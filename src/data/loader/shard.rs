//! A rank's share of a dataset for inference (`tada test` across ranks): every world-th sample
//! from its rank on, without padding, since nothing waits for equal counts and a padded
//! duplicate would count twice in the multi-view fusion.

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use super::{Sample, SampleError, SampleSource};

pub struct Strided {
    inner: Arc<dyn SampleSource>,
    rank: usize,
    world: usize,
}

impl Strided {
    pub fn new(inner: Arc<dyn SampleSource>, rank: usize, world: usize) -> Self {
        Self {
            inner,
            rank,
            world: world.max(1),
        }
    }
}

impl SampleSource for Strided {
    fn len(&self) -> usize {
        let n = self.inner.len();
        n / self.world + usize::from(self.rank < n % self.world)
    }

    /// The inner sample `rank + index · world`; its `source` (the video) is the inner one's.
    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        self.inner.get(self.rank + index * self.world, rng)
    }
}
