//! Decoded frames in one contiguous RGB24 buffer.

use tch::Tensor;

/// `t` frames of `height x width` RGB24 pixels, frame-major (`(T, H, W, 3)` row-major).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frames {
    pub data: Vec<u8>,
    pub t: usize,
    pub height: usize,
    pub width: usize,
    /// Frames the decoder produced to deliver these (after seeking); shows what seeking saved.
    pub decoded: usize,
}

impl Frames {
    pub fn frame_len(&self) -> usize {
        self.height * self.width * 3
    }

    /// Frame `i` as a `(H, W, 3)` byte slice.
    pub fn frame(&self, i: usize) -> &[u8] {
        let n = self.frame_len();
        &self.data[i * n..(i + 1) * n]
    }

    /// # Shapes
    /// -> `(T, H, W, 3)` uint8 on the CPU.
    pub fn to_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.data).view([
            self.t as i64,
            self.height as i64,
            self.width as i64,
            3,
        ])
    }

    /// The frames cut into consecutive clips of `lens` frames (which sum to `t`); the decode
    /// count stays with the first.
    pub fn split(self, lens: &[usize]) -> Vec<Frames> {
        let n = self.frame_len();
        let mut at = 0;
        lens.iter()
            .enumerate()
            .map(|(k, &len)| {
                let data = self.data[at * n..(at + len) * n].to_vec();
                at += len;
                Frames {
                    data,
                    t: len,
                    height: self.height,
                    width: self.width,
                    decoded: if k == 0 { self.decoded } else { 0 },
                }
            })
            .collect()
    }

    /// Gathers the frames for `order` (indices into `unique`, the sorted decoded set).
    // Only the FFmpeg decoder gathers; frame folders build their clips directly.
    #[cfg_attr(not(feature = "video"), allow(dead_code))]
    pub(crate) fn gather(
        unique: &[Vec<u8>],
        order: &[usize],
        height: usize,
        width: usize,
        decoded: usize,
    ) -> Self {
        let mut data = Vec::with_capacity(order.len() * height * width * 3);
        for &k in order {
            data.extend_from_slice(&unique[k]);
        }
        Self {
            data,
            t: order.len(),
            height,
            width,
            decoded,
        }
    }
}
