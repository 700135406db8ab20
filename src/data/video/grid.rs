//! Reading frames by their timestamps (the fast path of `ffmpeg.rs`): frame `i` of a
//! constant-rate stream is shown at `start + i / fps`, so a read seeks to the key frame before
//! the first wanted frame and decodes forward only as far as the last, checking as it goes that
//! the timestamps really are that grid.
//!
//! With a key-frame index (`index.rs`) the wanted frames are cut into runs: a new run starts at
//! a wanted frame whose key frame lies after the previous wanted frame. Seeking there skips the
//! frames in between, which decoding on would have had to decode; within a run, seeking would
//! only land on the same key frame again. The frames come out the same either way (each run is
//! checked like a whole read); only the work differs.

use std::collections::BTreeMap;
use std::path::Path;

use ff::util::frame::video::Video as VideoFrame;
use ffmpeg_next as ff;

use super::convert::Converter;
use super::ffmpeg::{next_packet, Opened, RgbFrames};
use super::index::KeyframeIndex;
use super::DecodeError;

/// The frame grid of a constant-rate stream: frame `i` is shown at `start + i / fps`.
#[derive(Clone, Copy)]
pub(super) struct Grid {
    /// The stream's first timestamp, in stream units.
    start: i64,
    /// Seconds per timestamp unit.
    time_base: f64,
    /// Seconds per frame.
    frame_secs: f64,
}

impl Grid {
    /// The frame shown at `ts`; none off the frame grid (by more than a quarter frame:
    /// timestamps rounded to a millisecond stay far within it) or before the first frame.
    fn index(self, ts: i64) -> Option<usize> {
        let x = (ts - self.start) as f64 * self.time_base / self.frame_secs;
        let i = x.round();
        (i >= 0.0 && (x - i).abs() <= 0.25).then_some(i as usize)
    }

    /// Frame `i`'s time in container units (AV_TIME_BASE), to seek by.
    fn seek_target(self, i: usize) -> i64 {
        let secs = i as f64 * self.frame_secs + self.start as f64 * self.time_base;
        (secs * f64::from(ff::ffi::AV_TIME_BASE)) as i64
    }
}

/// What a pass by timestamp has seen, and the wanted frames it has kept.
struct GridPass<'w> {
    grid: Grid,
    /// Distinct, ascending.
    wanted: &'w [usize],
    /// Packets per frame index up to the last wanted: exactly one each, or the timestamps do
    /// not step by one frame (variable rate, a wrong rate).
    packets_at: BTreeMap<usize, u32>,
    got: BTreeMap<usize, Vec<u8>>,
    /// The index of the first frame that came out of the decoder.
    first_out: Option<usize>,
    /// Frames decoded.
    produced: usize,
}

/// What draining the decoder found.
enum Drained {
    /// Every frame came out on the grid, none past the last wanted.
    OnGrid,
    /// A frame past the last wanted came out: nothing more to decode.
    PastLast,
    /// The timestamps do not give frame positions.
    OffGrid,
}

impl GridPass<'_> {
    fn first(&self) -> usize {
        self.wanted[0]
    }

    fn last(&self) -> usize {
        self.wanted[self.wanted.len() - 1]
    }

    /// Counts a packet at its frame and sends it to the decoder; false when its timestamp is
    /// off the grid or a second packet lands on one frame.
    fn send(&mut self, decoder: &mut ff::decoder::Video, p: &ff::Packet) -> bool {
        let Some(i) = p.pts().and_then(|ts| self.grid.index(ts)) else {
            return false;
        };
        if i <= self.last() {
            let n = self.packets_at.entry(i).or_default();
            *n += 1;
            if *n > 1 {
                return false;
            }
        }
        // A frame nobody asked for that no other frame references need not be decoded at all
        // (B-frames mostly).
        decoder.skip_frame(if self.wanted.binary_search(&i).is_ok() {
            ff::Discard::Default
        } else {
            ff::Discard::NonReference
        });
        // A packet that does not decode shows as a missing frame in `finish`.
        let _ = decoder.send_packet(p);
        true
    }

    /// Whether every frame from the first one after the seek to the last wanted one has had
    /// its packet: then no later packet is needed, and the decoder is drained at once rather
    /// than fed (and made to decode) packets past the last wanted frame.
    fn all_sent(&self) -> bool {
        let Some((&from, _)) = self.packets_at.first_key_value() else {
            return false;
        };
        from <= self.first() && self.packets_at.len() == self.last() + 1 - from
    }

    /// Takes every frame the decoder has ready, keeping the wanted ones.
    fn drain(
        &mut self,
        decoder: &mut ff::decoder::Video,
        frame: &mut VideoFrame,
        path: &Path,
        conv: &mut Converter,
    ) -> Result<Drained, DecodeError> {
        while decoder.receive_frame(frame).is_ok() {
            self.produced += 1;
            let Some(i) = frame
                .timestamp()
                .or(frame.pts())
                .and_then(|ts| self.grid.index(ts))
            else {
                return Ok(Drained::OffGrid);
            };
            if *self.first_out.get_or_insert(i) > self.first() {
                // The seek landed after the wanted frame (a file with a poor index).
                return Ok(Drained::OffGrid);
            }
            if i > self.last() {
                return Ok(Drained::PastLast);
            }
            if self.wanted.binary_search(&i).is_ok() && !self.got.contains_key(&i) {
                self.got.insert(i, conv.convert(path, frame)?);
            }
        }
        Ok(Drained::OnGrid)
    }

    /// The wanted frames, if every frame from the first decoded to the last wanted had
    /// exactly one packet and every wanted frame came out.
    fn finish(self) -> Option<RgbFrames> {
        let from = self.first_out.unwrap_or(self.first());
        let regular = (from..=self.last()).all(|i| self.packets_at.get(&i) == Some(&1));
        (regular && self.got.len() == self.wanted.len()).then(|| self.got.into_values().collect())
    }
}

/// The wanted frames (distinct, ascending) cut into runs that each start with a seek: a run
/// ends where the next wanted frame's key frame lies after it. `keyframes`: frame indices of
/// key frames, ascending; empty gives one run.
pub(super) fn runs<'w>(wanted: &'w [usize], keyframes: &[usize]) -> Vec<&'w [usize]> {
    let key_before = |f: usize| {
        let n = keyframes.partition_point(|&k| k <= f);
        n.checked_sub(1).map(|i| keyframes[i])
    };
    let mut out = Vec::new();
    let mut from = 0;
    for j in 1..wanted.len() {
        if key_before(wanted[j]).is_some_and(|k| k > wanted[j - 1]) {
            out.push(&wanted[from..j]);
            from = j;
        }
    }
    if from < wanted.len() {
        out.push(&wanted[from..]);
    }
    out
}

/// Frames `wanted` (distinct, ascending) found by their timestamps, one seek per run (see the
/// module comment), or `None` when the file's timestamps turn out not to give frame
/// positions; with the frames decoded.
pub(super) fn by_timestamp(
    mut o: Opened,
    path: &Path,
    wanted: &[usize],
    conv: &mut Converter,
    index: Option<&KeyframeIndex>,
) -> Result<(Option<RgbFrames>, usize), DecodeError> {
    let (Some(start), Some(step_fps)) = (o.start, o.step_fps) else {
        return Ok((None, 0));
    };
    let grid = Grid {
        start,
        time_base: o.time_base,
        frame_secs: 1.0 / step_fps,
    };
    // Key frames off the grid are left out: fewer runs, never a wrong one.
    let keyframes: Vec<usize> = index
        .filter(|i| i.stream == o.stream)
        .map(|i| {
            i.keyframes
                .iter()
                .filter_map(|&ts| grid.index(ts))
                .collect()
        })
        .unwrap_or_default();
    let (mut got, mut produced) = (Vec::with_capacity(wanted.len()), 0);
    for (r, run) in runs(wanted, &keyframes).into_iter().enumerate() {
        if r > 0 {
            // Frames the decoder still holds belong to the previous run's position.
            o.decoder.flush();
        }
        let (frames, n) = run_by_timestamp(&mut o, path, grid, run, conv, r > 0)?;
        produced += n;
        match frames {
            Some(f) => got.extend(f),
            None => return Ok((None, produced)),
        }
    }
    Ok((Some(got), produced))
}

/// One run: seek (always after the first run; for the first only when it does not start at
/// frame 0) and decode forward to the run's last frame.
fn run_by_timestamp(
    o: &mut Opened,
    path: &Path,
    grid: Grid,
    wanted: &[usize],
    conv: &mut Converter,
    must_seek: bool,
) -> Result<(Option<RgbFrames>, usize), DecodeError> {
    if must_seek || wanted[0] > 0 {
        // Seek by container time to at most the wanted frame's time; the demuxer moves to the
        // key frame at or before it.
        let ts = grid.seek_target(wanted[0]);
        if o.input.seek(ts, ..ts).is_err() {
            return Ok((None, 0));
        }
    }
    let mut pass = GridPass {
        grid,
        wanted,
        packets_at: BTreeMap::new(),
        got: BTreeMap::new(),
        first_out: None,
        produced: 0,
    };
    let mut frame = VideoFrame::empty();
    loop {
        let packet = next_packet(o, path, &mut |_| {})?;
        if let Some(p) = &packet {
            if !pass.send(&mut o.decoder, p) {
                return Ok((None, pass.produced));
            }
        }
        let last_sent = packet.is_none() || pass.all_sent();
        if last_sent {
            let _ = o.decoder.send_eof();
        }
        match pass.drain(&mut o.decoder, &mut frame, path, conv)? {
            Drained::OffGrid => return Ok((None, pass.produced)),
            Drained::PastLast => break,
            Drained::OnGrid if last_sent => break,
            Drained::OnGrid => {}
        }
    }
    let produced = pass.produced;
    Ok((pass.finish(), produced))
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn runs_split_where_a_key_frame_lies_between_wanted_frames() {
        let wanted = [3, 5, 9, 30, 31, 60];
        // Key frames at 0, 25, 50: 30 and 60 start runs; 9 -> 30 crosses the key frame 25.
        assert_eq!(
            runs(&wanted, &[0, 25, 50]),
            vec![&[3, 5, 9][..], &[30, 31], &[60]]
        );
        // No index: one run, as a read without one.
        assert_eq!(runs(&wanted, &[]), vec![&wanted[..]]);
        // A key frame on a wanted frame starts a run there; one before the first changes nothing.
        assert_eq!(runs(&[4, 9, 10], &[0, 9]), vec![&[4][..], &[9, 10]]);
        // Wanted frames in one group of pictures stay one run.
        assert_eq!(runs(&[26, 40, 49], &[0, 25, 50]), vec![&[26, 40, 49][..]]);
    }
}
