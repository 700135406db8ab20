//! A window's feature sequence from its clip files, as the reference's
//! `_transform_feature_scale`: feature rows sit at global centre times (k·I + I − 1) / FPS; the
//! rows whose centre falls inside the window are kept (padded or cut to the window's
//! round(length / stride) rows) and linearly resized, corners aligned, to TEMPORAL_SCALE
//! positions.

use tch::{Kind, Tensor};

use super::index::FEATURE_STRIDE;

/// Where feature rows sit in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Centres {
    /// DATA.CLIP_INTERVAL: frames between rows.
    pub interval: usize,
    /// DATA.TARGET_FPS.
    pub fps: f64,
}

impl Centres {
    /// Centre times (float32, as the reference's `torch.arange`) of every row from the video's
    /// start up to `until` seconds.
    pub fn up_to(&self, until: f64) -> Vec<f32> {
        let (first, step) = (self.interval as f64 - 1.0, self.interval as f64);
        let end = until * self.fps;
        let count = ((end - first) / step).ceil().max(0.0) as usize;
        (0..count)
            .map(|k| (first + step * k as f64) as f32 / self.fps as f32)
            .collect()
    }
}

/// A window's assembled input.
#[derive(Debug)]
pub struct Assembled {
    /// (C, T)
    pub features: Tensor,
    /// Rows inside the window before padding (the reference's `feature_len`).
    pub rows: usize,
    /// Over every global centre up to the clips' end: whether it lies in the window.
    pub in_window: Vec<bool>,
}

/// Which rows of the clips' concatenated features lie inside the window, and the global mask.
///
/// Returns `Err` with the expected row count when the clips hold neither that many rows nor
/// one more (which the reference drops).
pub fn select_rows(
    centres: &Centres,
    rows: usize,
    window: (f64, f64),
    clips: (f64, f64),
) -> Result<(Vec<usize>, Vec<bool>), usize> {
    let (w0, w1) = (window.0 as f32, window.1 as f32);
    let (c0, c1) = (clips.0 as f32, clips.1 as f32);
    let all = centres.up_to(clips.1);
    let in_window: Vec<bool> = all.iter().map(|&c| c >= w0 && c <= w1 && c <= c1).collect();
    let in_clips: Vec<f32> = all.into_iter().filter(|&c| c >= c0 && c <= c1).collect();
    if rows != in_clips.len() && rows != in_clips.len() + 1 {
        return Err(in_clips.len());
    }
    let keep = in_clips
        .iter()
        .enumerate()
        .filter(|(_, &c)| c >= w0 && c <= w1 && c <= c1)
        .map(|(i, _)| i)
        .collect();
    Ok((keep, in_window))
}

/// The window's (C, T) input from the clips' concatenated rows (R, C).
///
/// # Shapes
/// rows (R, C) -> (C, tscale).
pub fn assemble(
    rows: &Tensor,
    keep: &[usize],
    window: (f64, f64),
    tscale: usize,
    channels: usize,
) -> Tensor {
    let n = keep.len();
    let index = Tensor::from_slice(&keep.iter().map(|&i| i as i64).collect::<Vec<_>>());
    // (n, C) -> (1, C, n)
    let picked = rows
        .to_kind(Kind::Float)
        .index_select(0, &index)
        .transpose(0, 1)
        .unsqueeze(0);
    let want = ((window.1 - window.0) / FEATURE_STRIDE).round() as i64;
    let c = rows.size()[1];
    let fitted = if n as i64 != want {
        let padded = Tensor::zeros([1, c, want], (Kind::Float, tch::Device::Cpu));
        let take = (n as i64).min(want);
        padded.narrow(2, 0, take).copy_(&picked.narrow(2, 0, take));
        padded
    } else {
        picked
    };
    let fitted = if n == 0 {
        Tensor::zeros([1, channels as i64, 1], (Kind::Float, tch::Device::Cpu))
    } else {
        fitted
    };
    fitted
        .upsample_linear1d([tscale as i64], true, None)
        .squeeze_dim(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bmn_epic's rows: every 8 frames at 60 fps, the first at 7/60 s; a 5-second clip holds
    /// 37 of them, the next 38.
    #[test]
    fn centres_fall_every_eight_frames() {
        let c = Centres {
            interval: 8,
            fps: 60.0,
        };
        let all = c.up_to(10.0);
        assert_eq!(all.len(), 75);
        assert!((all[0] - 7.0 / 60.0).abs() < 1e-7);
        let first = all.iter().filter(|&&t| t <= 5.0).count();
        assert_eq!((first, all.len() - first), (37, 38));
    }

    #[test]
    fn rows_outside_the_window_are_dropped_and_a_wrong_count_is_named() {
        let c = Centres {
            interval: 8,
            fps: 60.0,
        };
        let (keep, mask) = select_rows(&c, 75, (2.0, 7.0), (0.0, 10.0)).unwrap();
        assert_eq!(keep.first(), Some(&15)); // (8·15 + 7) / 60 = 2.117 s
        assert_eq!(keep.len(), mask.iter().filter(|&&m| m).count());
        // One extra row is the reference's tolerated overhang; two are an error.
        assert!(select_rows(&c, 76, (2.0, 7.0), (0.0, 10.0)).is_ok());
        assert_eq!(
            select_rows(&c, 77, (2.0, 7.0), (0.0, 10.0)).unwrap_err(),
            75
        );
    }

    #[test]
    fn short_windows_are_padded_with_zeros_before_resizing() {
        // 3 rows of 2 channels, 5 expected (0.6667 s / 0.1333 s), resized to 5 positions.
        let rows = Tensor::from_slice(&[1f32, 10., 2., 20., 3., 30.]).reshape([3, 2]);
        let out = assemble(&rows, &[0, 1, 2], (0.0, 0.666_666_65), 5, 2);
        let v: Vec<f32> = Vec::try_from(out.flatten(0, -1)).unwrap();
        assert_eq!(v, [1., 2., 3., 0., 0., 10., 20., 30., 0., 0.]);
    }
}
