//! `tada bench data` for a MoSI config: pseudo-motion generation alone, on synthetic 240x320
//! images, on one thread, so the figure is per core.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tada_augment::mosi::{MosiGenerator, Split};

use crate::config::Config;
use crate::data::sources::synthetic_images::synthetic_image;
use crate::tasks::mosi::generator_config;
use crate::tasks::mosi::preview::PreviewError;

/// Result of a generation benchmark.
#[derive(Debug, Clone)]
pub struct GenerationRate {
    pub images: usize,
    pub clips: usize,
    pub seconds: f64,
    pub clip_shape: Vec<i64>,
}

impl GenerationRate {
    pub fn clips_per_second(&self) -> f64 {
        self.clips as f64 / self.seconds
    }
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds
    }
}

/// Generates MoSI samples from distinct synthetic 240x320 images for about `budget` (train
/// split: random starts, jitter, flip, colour, mask as configured). Image synthesis is done
/// before timing starts so only generation is measured.
pub fn mosi_generation(
    cfg: &Config,
    budget: Duration,
    seed: u64,
) -> Result<GenerationRate, PreviewError> {
    tch::set_num_threads(1);
    let gen = MosiGenerator::new(generator_config(cfg)?)?;
    let pool: Vec<_> = (0..8).map(|i| synthetic_image(seed, i, 240, 320)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // One warm-up sample so allocator and kernel first-use costs are not timed.
    let warm = gen.generate(&pool[0], Split::Train, &mut rng)?;
    let clip_shape = warm.clips.size()[1..].to_vec();
    let (mut images, mut clips) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < budget || images == 0 {
        let s = gen.generate(&pool[images % pool.len()], Split::Train, &mut rng)?;
        clips += s.clips.size()[0] as usize;
        images += 1;
    }
    Ok(GenerationRate {
        images,
        clips,
        seconds: start.elapsed().as_secs_f64(),
        clip_shape,
    })
}
