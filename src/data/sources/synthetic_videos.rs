//! Embedded labelled videos for the downstream stage (linear probe, fine-tune) with no data on
//! disk. The class is a *motion*: one main object crosses a textured background in the class's
//! direction, while 1-3 distractors drift in random directions. The object's colour, size and
//! position are random, so only motion tells the classes apart, which is what MoSI pretraining
//! learns to see.

use rand::{Rng, SeedableRng};
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use tada_augment::transforms::rand_augment::RandAugment;
use tada_augment::transforms::random_erasing::RandomErasing;
use tch::Tensor;

use crate::data::dataset::Split;
use crate::data::loader::{Sample, SampleError, SampleSource};

/// Classes are directions `2 pi k / num_classes`; more than 10 get too close to tell apart.
pub const MAX_CLASSES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Blob {
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
    r: f32,
    colour: [u8; 3],
    square: bool,
}

impl Blob {
    fn covers(&self, px: f32, py: f32, t: f32) -> bool {
        let (dx, dy) = (px - (self.x + self.vx * t), py - (self.y + self.vy * t));
        if self.square {
            dx.abs() <= self.r && dy.abs() <= self.r
        } else {
            dx * dx + dy * dy <= self.r * self.r
        }
    }
}

fn colour(rng: &mut ChaCha8Rng) -> [u8; 3] {
    [rng.random(), rng.random(), rng.random()]
}

/// Clip `index` of stream `seed`: `(frames, size, size, 3)` uint8 and its label
/// `index % num_classes`.
pub fn synthetic_video(
    seed: u64,
    index: u64,
    num_classes: usize,
    frames: usize,
    size: usize,
) -> Result<(Tensor, i64), String> {
    if !(2..=MAX_CLASSES).contains(&num_classes) {
        return Err(format!(
            "synthetic videos have 2 to {MAX_CLASSES} classes (motion directions), got {num_classes}"
        ));
    }
    let label = (index % num_classes as u64) as i64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    // The draws happen in a fixed order (objects, background, per-frame noise): the clip of
    // a seed and index never changes.
    let angle = std::f32::consts::TAU * label as f32 / num_classes as f32;
    let (main, distractors) = objects(&mut rng, angle, frames, size);
    let background = background(&mut rng, size);
    let data = render(&mut rng, &main, &distractors, &background, frames, size);
    // (T, H, W, 3) from frame-major bytes.
    let clip = Tensor::from_slice(&data).view([frames as i64, size as i64, size as i64, 3]);
    Ok((clip, label))
}

/// The main object, moving in direction `angle`, and its 1-3 distractors, on a `size` square
/// over `frames` frames.
fn objects(rng: &mut ChaCha8Rng, angle: f32, frames: usize, size: usize) -> (Blob, Vec<Blob>) {
    let s = size as f32;
    let t_len = frames.max(1) as f32;
    // The main object moves ~60% of the frame over the clip, whatever the clip length.
    let speed = 0.6 * s / t_len;
    let (vx, vy) = (speed * angle.cos(), speed * angle.sin());
    let r = s * rng.random_range(0.08..0.14);
    // Start so that the path's midpoint lands near the centre: always in view.
    let (cx, cy) = (
        s / 2.0 + rng.random_range(-0.1..0.1) * s,
        s / 2.0 + rng.random_range(-0.1..0.1) * s,
    );
    let main = Blob {
        x: cx - vx * t_len / 2.0,
        y: cy - vy * t_len / 2.0,
        vx,
        vy,
        r,
        colour: colour(rng),
        square: rng.random(),
    };
    let distractors: Vec<Blob> = (0..rng.random_range(1..=3))
        .map(|_| {
            let a = rng.random_range(0.0..std::f32::consts::TAU);
            let v = speed * rng.random_range(0.2..0.8);
            Blob {
                x: rng.random_range(0.0..s),
                y: rng.random_range(0.0..s),
                vx: v * a.cos(),
                vy: v * a.sin(),
                r: s * rng.random_range(0.03..0.07),
                colour: colour(rng),
                square: rng.random(),
            }
        })
        .collect();
    (main, distractors)
}

/// Background: two-colour gradient plus stripes, fixed over time (camera still), as
/// `(size, size, 3)` bytes.
fn background(rng: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let s = size as f32;
    let (c0, c1) = (colour(rng), colour(rng));
    let freq = rng.random_range(2.0..8.0f32);
    let mut background = vec![0u8; size * size * 3];
    for y in 0..size {
        for x in 0..size {
            let g = (x + y) as f32 / (2.0 * s);
            let stripe = 20.0 * ((x as f32 / s) * freq * std::f32::consts::TAU).sin();
            for c in 0..3 {
                let v = c0[c] as f32 * (1.0 - g) + c1[c] as f32 * g + stripe;
                background[(y * size + x) * 3 + c] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    background
}

/// The frames, `(frames, size, size, 3)` bytes: the first object covering a pixel (the main
/// one in front) or else the background, plus fresh noise each frame.
fn render(
    rng: &mut ChaCha8Rng,
    main: &Blob,
    distractors: &[Blob],
    background: &[u8],
    frames: usize,
    size: usize,
) -> Vec<u8> {
    let mut data = Vec::with_capacity(frames * size * size * 3);
    let mut noise = [0u8; 4096];
    for t in 0..frames {
        let tf = t as f32;
        rng.fill_bytes(&mut noise);
        for y in 0..size {
            for x in 0..size {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let blob = std::iter::once(main)
                    .chain(distractors)
                    .find(|b| b.covers(px, py, tf));
                let k = (y * size + x) * 3;
                let n = noise[k % noise.len()] as i32 / 32 - 4;
                for c in 0..3 {
                    let v = blob.map_or(background[k + c], |b| b.colour[c]) as i32 + n;
                    data.push(v.clamp(0, 255) as u8);
                }
            }
        }
    }
    data
}

/// The synthetic labelled videos as a loader source: normalised `(3, T, S, S)` clips. Training
/// and test splits are disjoint streams; there is no random flip (it would reverse x motion and
/// so the class), crop or colour jitter, but training clips go through the config's RandAugment
/// and random erasing, so a recipe's augmentations run on the embedded data too.
#[derive(Debug, Clone)]
pub struct SyntheticVideos {
    pub count: usize,
    pub num_classes: usize,
    pub frames: usize,
    pub size: usize,
    pub seed: u64,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// AUGMENTATION.AUTOAUGMENT of training clips, before normalising.
    pub rand_augment: Option<RandAugment>,
    /// AUGMENTATION.RANDOM_ERASING of training clips, after normalising.
    pub erasing: Option<RandomErasing>,
}

impl SyntheticVideos {
    pub fn new(split: Split, count: usize, num_classes: usize, frames: usize, size: usize) -> Self {
        Self {
            count,
            num_classes,
            frames,
            size,
            // Separate streams so no test clip is a training clip.
            seed: match split {
                Split::Train => 0x7ada_0001,
                Split::Val | Split::Test => 0x7ada_0002,
            },
            mean: [0.45; 3],
            std: [0.225; 3],
            rand_augment: None,
            erasing: None,
        }
    }
}

impl SampleSource for SyntheticVideos {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, index: usize, rng: &mut ChaCha8Rng) -> Result<Sample, SampleError> {
        let (frames, label) = synthetic_video(
            self.seed,
            index as u64,
            self.num_classes,
            self.frames,
            self.size,
        )
        .map_err(|what| SampleError {
            what,
            kind: "bad configuration",
        })?;
        let x = tada_augment::transforms::spatial::to_float_cthw(&frames);
        let x = match &self.rand_augment {
            Some(ra) => ra.augment(&x, rng).map_err(|e| SampleError {
                what: format!("synthetic video {index}: {e}"),
                kind: "augmentation",
            })?,
            None => x,
        };
        let x = tada_augment::transforms::spatial::normalize(&x, self.mean, self.std);
        let input = match &self.erasing {
            Some(e) => e.erase(x, rng),
            None => x,
        };
        Ok(Sample {
            input,
            label: Tensor::from(label),
            source: index,
            view: 0,
            decode_seconds: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn centroid_shift(clip: &Tensor, colour: [u8; 3]) -> (f64, f64) {
        // Mean position of pixels of exactly the main object's colour (noise aside) in the first
        // and last frame.
        let t = clip.size()[0];
        let pos = |f: i64| {
            let frame = Vec::<u8>::try_from(clip.get(f).flatten(0, -1)).unwrap();
            let size = (frame.len() / 3) as f64;
            let side = size.sqrt() as usize;
            let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0.0f64);
            for (i, px) in frame.chunks(3).enumerate() {
                if px
                    .iter()
                    .zip(colour)
                    .all(|(a, b)| (*a as i32 - b as i32).abs() <= 4)
                {
                    sx += (i % side) as f64;
                    sy += (i / side) as f64;
                    n += 1.0;
                }
            }
            (sx / n.max(1.0), sy / n.max(1.0))
        };
        let (a, b) = (pos(0), pos(t - 1));
        (b.0 - a.0, b.1 - a.1)
    }

    #[test]
    fn deterministic_and_varied() {
        let (a, la) = synthetic_video(1, 5, 4, 8, 32).unwrap();
        let (b, lb) = synthetic_video(1, 5, 4, 8, 32).unwrap();
        assert!(a.equal(&b) && la == lb);
        let (c, _) = synthetic_video(1, 6, 4, 8, 32).unwrap();
        assert!(!a.equal(&c));
        assert_eq!(a.size(), [8, 32, 32, 3]);
        let labels: Vec<i64> = (0..8)
            .map(|i| synthetic_video(1, i, 4, 2, 16).unwrap().1)
            .collect();
        assert_eq!(labels, [0, 1, 2, 3, 0, 1, 2, 3]);
        assert!(synthetic_video(1, 0, 11, 2, 16).is_err());
    }

    #[test]
    fn the_class_is_the_direction_of_motion() {
        // Rebuild the main object's colour the same way the generator draws it.
        for index in 0..8u64 {
            let (clip, label) = synthetic_video(3, index, 4, 16, 64).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            rng.set_stream(index);
            let _r: f32 = rng.random_range(0.08..0.14);
            let _cx: f32 = rng.random_range(-0.1..0.1);
            let _cy: f32 = rng.random_range(-0.1..0.1);
            let col = colour(&mut rng);
            let (dx, dy) = centroid_shift(&clip, col);
            let expected = std::f64::consts::TAU * label as f64 / 4.0;
            let got = dy.atan2(dx);
            let diff = (got - expected).rem_euclid(std::f64::consts::TAU);
            let err = diff.min(std::f64::consts::TAU - diff);
            assert!(
                err < 0.5 && (dx * dx + dy * dy).sqrt() > 15.0,
                "clip {index} (class {label}): moved ({dx:.1}, {dy:.1})"
            );
        }
    }
}
