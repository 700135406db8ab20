//! Container files through FFmpeg (`ffmpeg-next` over the system's libav*).
//!
//! Frame `i` of a file is the `i`-th frame in presentation order, counted from the first frame
//! that decodes. Two ways find it:
//!
//! - **By timestamp** (the fast path): frame `i` is shown at `start + i / fps`, `start` being the
//!   stream's first timestamp (not 0: files cut with `-c copy` or muxed with an offset start
//!   late). The demuxer seeks to the key frame before the first wanted frame and decoding goes
//!   forward only as far as the last. This holds for constant-rate files, and each read checks
//!   it: every packet's time lies on that frame grid, the first decoded frame does not lie past
//!   the first wanted one, every frame from there to the last wanted one has exactly one packet,
//!   and every wanted frame comes out.
//! - **By position** (the fallback): decode from the start and count. Taken when that check
//!   fails (a wrong rate, a seek that lands late or past the end), for streams whose average
//!   rate differs from the rate their timestamps step by (variable frame rate) and for streams
//!   without timestamps (raw H.264).
//!
//! The frame count is the container's (its frame count, or duration x rate) as long as decoding
//! agrees. When the container has none, or decoding ends before a frame the count promised, the
//! frames are counted by decoding to the end and the clip is chosen again from that count; no
//! count is kept between reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use ff::format::context::Input;
use ff::util::frame::video::Video as VideoFrame;
use ffmpeg_next as ff;

use super::convert::{undecodable, Converter};
use super::{DecodeError, Frames, Resize, VideoInfo};

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Errors are reported per file; FFmpeg's own stderr chatter would interleave with the
        // progress bars of a loader decoding many files at once.
        ff::util::log::set_level(ff::util::log::Level::Quiet);
        let _ = ff::init();
    });
}

/// An opened file with its chosen video stream and a fresh decoder: one decoding pass.
struct Opened {
    input: Input,
    stream: usize,
    /// Seconds per timestamp unit of the stream.
    time_base: f64,
    /// The stream's first timestamp, in stream units (none in raw bitstreams).
    start: Option<i64>,
    /// Frames per second by which timestamps step, when the stream looks constant-rate.
    step_fps: Option<f64>,
    info: VideoInfo,
    decoder: ff::decoder::Video,
}

fn rate(r: ff::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

fn open(path: &Path) -> Result<Opened, DecodeError> {
    init();
    // ffmpeg-next unwraps the path as UTF-8 (a panic on any other name): refuse it here.
    if path.to_str().is_none() {
        return Err(undecodable(
            path,
            "its name is not UTF-8, which FFmpeg cannot open",
        ));
    }
    let input = ff::format::input(path).map_err(|e| undecodable(path, e))?;
    // FFmpeg happily reads a lone still image as a one-frame stream; in a video dataset that is
    // a misnamed file, not a clip.
    let format = input.format().name().to_string();
    if format == "image2" || format.ends_with("_pipe") {
        return Err(DecodeError::NotAVideo {
            path: path.to_path_buf(),
            format,
        });
    }
    let stream = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| DecodeError::NoVideoStream {
            path: path.to_path_buf(),
        })?;
    let params = stream.parameters();
    let ctx =
        ff::codec::context::Context::from_parameters(params).map_err(|e| undecodable(path, e))?;
    let decoder = ctx.decoder().video().map_err(|e| undecodable(path, e))?;
    let (fps, step_fps) = rates(&stream, path)?;
    let time_base = rate(stream.time_base())
        .ok_or_else(|| undecodable(path, "the video stream has no time base"))?;
    let start = Some(stream.start_time()).filter(|&ts| ts != ff::ffi::AV_NOPTS_VALUE);
    let frames = frame_count_guess(&input, &stream, time_base, fps);
    if decoder.width() == 0 || decoder.height() == 0 {
        return Err(undecodable(path, "the video stream has no frame size"));
    }
    let info = VideoInfo {
        frames,
        fps,
        width: decoder.width(),
        height: decoder.height(),
        codec: decoder
            .codec()
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| format!("{:?}", decoder.id())),
    };
    let index = stream.index();
    Ok(Opened {
        input,
        stream: index,
        time_base,
        start,
        step_fps,
        info,
        decoder,
    })
}

/// The stream's frame rate, and the rate its timestamps step by when it looks constant-rate.
fn rates(stream: &ff::Stream, path: &Path) -> Result<(f64, Option<f64>), DecodeError> {
    let (avg, base) = (rate(stream.avg_frame_rate()), rate(stream.rate()));
    let fps = avg
        .or(base)
        .ok_or_else(|| undecodable(path, "the video stream has no frame rate"))?;
    // FFmpeg's base rate is read off the timestamps, the average is frames over duration: a
    // variable-rate file (MP4) shows as the two disagreeing, and then only counting finds a
    // frame. The base rate is the exact step of a constant-rate stream.
    let step_fps = match (avg, base) {
        (Some(a), Some(b)) => ((a / b - 1.0).abs() < 0.01).then_some(b),
        (a, b) => a.or(b),
    };
    Ok((fps, step_fps))
}

/// A first guess at the frame count, checked while decoding: WebM/Matroska store no frame
/// count, piped files and raw bitstreams no duration either (0: count by decoding).
fn frame_count_guess(input: &Input, stream: &ff::Stream, time_base: f64, fps: f64) -> usize {
    if stream.frames() > 0 {
        return stream.frames() as usize;
    }
    let secs = if stream.duration() > 0 {
        stream.duration() as f64 * time_base
    } else if input.duration() > 0 {
        input.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    (secs * fps).round() as usize
}

/// Decoded frames as packed RGB24, one buffer each.
type RgbFrames = Vec<Vec<u8>>;

/// The distinct indices of a request, ascending: each frame is decoded once.
fn distinct(indices: &[usize]) -> Vec<usize> {
    let mut w = indices.to_vec();
    w.sort_unstable();
    w.dedup();
    w
}

/// Opens `path`, lets `choose` pick the frame indices from what the file says about itself,
/// and decodes them; when decoding shows the file's count was wrong, `choose` picks again from
/// the counted frames.
pub fn read_with(
    path: &Path,
    resize: Resize,
    mut choose: impl FnMut(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    let opened = open(path)?;
    let mut info = opened.info.clone();
    let (out_h, out_w) = resize.apply(info.height, info.width);
    let mut conv = Converter::new(out_h, out_w);
    let mut decoded = 0;
    if info.frames > 0 {
        let indices = choose(&info)?;
        let wanted = distinct(&indices);
        if wanted.is_empty() {
            return Ok(gather(&conv, Vec::new(), &indices, &wanted, decoded));
        }
        let (unique, n) = by_timestamp(opened, path, &wanted, &mut conv)?;
        decoded += n;
        if let Some(unique) = unique {
            return Ok(gather(&conv, unique, &indices, &wanted, decoded));
        }
        let (found, n) = by_position(open(path)?, path, &wanted, &mut conv)?;
        decoded += n;
        match found {
            Positioned::All(unique) => {
                return Ok(gather(&conv, unique, &indices, &wanted, decoded))
            }
            Positioned::Ended { frames } => info.frames = frames,
        }
    } else {
        let (found, n) = by_position(opened, path, &[], &mut conv)?;
        decoded += n;
        if let Positioned::Ended { frames } = found {
            info.frames = frames;
        }
    }
    if info.frames == 0 {
        return Err(undecodable(path, "no frame of the video stream decodes"));
    }
    // The count is now the decoded one: choose again from it.
    let indices = choose(&info)?;
    let wanted = distinct(&indices);
    let Some(&last) = wanted.last() else {
        return Ok(gather(&conv, Vec::new(), &indices, &wanted, decoded));
    };
    let truncated = DecodeError::Truncated {
        path: path.to_path_buf(),
        wanted: last,
        decoded: info.frames,
    };
    if last >= info.frames {
        return Err(truncated);
    }
    let (found, n) = by_position(open(path)?, path, &wanted, &mut conv)?;
    match found {
        Positioned::All(unique) => Ok(gather(&conv, unique, &indices, &wanted, decoded + n)),
        // The file changed between two reads.
        Positioned::Ended { .. } => Err(truncated),
    }
}

/// The request's frames from the distinct ones decoded (`unique[k]` is frame `wanted[k]`).
fn gather(
    conv: &Converter,
    unique: RgbFrames,
    indices: &[usize],
    wanted: &[usize],
    decoded: usize,
) -> Frames {
    let (h, w) = conv.size();
    let order: Vec<usize> = indices
        .iter()
        .map(|i| wanted.binary_search(i).unwrap_or_default())
        .collect();
    Frames::gather(&unique, &order, h as usize, w as usize, decoded)
}

fn is_again(e: &ff::Error) -> bool {
    matches!(e, ff::Error::Other { errno } if *errno == ff::util::error::EAGAIN)
}

/// The next packet of the chosen stream, `None` at the end. Data the demuxer cannot parse is
/// skipped (it resyncs after it) and reported to `bad`.
fn next_packet(
    o: &mut Opened,
    path: &Path,
    bad: &mut impl FnMut(ff::Error),
) -> Result<Option<ff::Packet>, DecodeError> {
    loop {
        let mut packet = ff::Packet::empty();
        match packet.read(&mut o.input) {
            Ok(()) if packet.stream() == o.stream => return Ok(Some(packet)),
            Ok(()) => {}
            Err(ff::Error::Eof) => return Ok(None),
            Err(e @ ff::Error::InvalidData) => bad(e),
            // An I/O error is latched by FFmpeg: every later read fails the same way.
            Err(e) => return Err(undecodable(path, e)),
        }
    }
}

/// The frame grid of a constant-rate stream: frame `i` is shown at `start + i / fps`.
#[derive(Clone, Copy)]
struct Grid {
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

/// Frames `wanted` (distinct, ascending) found by their timestamps after a seek, or `None` when
/// the file's timestamps turn out not to give frame positions; with the frames decoded.
fn by_timestamp(
    mut o: Opened,
    path: &Path,
    wanted: &[usize],
    conv: &mut Converter,
) -> Result<(Option<RgbFrames>, usize), DecodeError> {
    let (Some(start), Some(step_fps)) = (o.start, o.step_fps) else {
        return Ok((None, 0));
    };
    let grid = Grid {
        start,
        time_base: o.time_base,
        frame_secs: 1.0 / step_fps,
    };
    if wanted[0] > 0 {
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
        let packet = next_packet(&mut o, path, &mut |_| {})?;
        match &packet {
            Some(p) => {
                if !pass.send(&mut o.decoder, p) {
                    return Ok((None, pass.produced));
                }
            }
            None => {
                let _ = o.decoder.send_eof();
            }
        }
        match pass.drain(&mut o.decoder, &mut frame, path, conv)? {
            Drained::OffGrid => return Ok((None, pass.produced)),
            Drained::PastLast => break,
            Drained::OnGrid if packet.is_none() => break,
            Drained::OnGrid => {}
        }
    }
    let produced = pass.produced;
    Ok((pass.finish(), produced))
}

/// What decoding by position found.
enum Positioned {
    /// Every wanted frame, ascending.
    All(RgbFrames),
    /// The file ended after `frames` frames, before the last wanted one (with nothing wanted:
    /// the frame count).
    Ended { frames: usize },
}

/// Where decoding first failed. A failure before the first frame is no damage (a cut file may
/// open with frames whose references were cut off); one after which no packet decodes is a file
/// cut short; one followed by frames from later packets is damage inside the file.
#[derive(Default)]
struct Damage {
    /// Frames decoded before the first failure, and its reason.
    first: Option<(usize, String)>,
    /// A packet after the failure was accepted by the decoder.
    resumed: bool,
}

impl Damage {
    fn note(&mut self, decoded: usize, e: ff::Error) {
        if self.first.is_none() && decoded > 0 {
            self.first = Some((decoded, e.to_string()));
        }
    }

    fn accepted(&mut self) {
        self.resumed = self.first.is_some();
    }
}

/// Frames `wanted` (distinct, ascending) by position, decoding from the start; with nothing
/// wanted, counts the frames. With the frames decoded.
fn by_position(
    mut o: Opened,
    path: &Path,
    wanted: &[usize],
    conv: &mut Converter,
) -> Result<(Positioned, usize), DecodeError> {
    let last = wanted.last().copied();
    let mut got = Vec::with_capacity(wanted.len());
    let mut damage = Damage::default();
    let mut n = 0usize;
    let mut frame = VideoFrame::empty();
    'packets: loop {
        let packet = next_packet(&mut o, path, &mut |e| damage.note(n, e))?;
        match &packet {
            Some(p) => match o.decoder.send_packet(p) {
                Ok(()) => damage.accepted(),
                Err(e) => damage.note(n, e),
            },
            None => {
                let _ = o.decoder.send_eof();
            }
        }
        loop {
            match o.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    if damage.resumed {
                        if let Some((at, reason)) = damage.first.take() {
                            return Err(DecodeError::Corrupt {
                                path: path.to_path_buf(),
                                frame: at,
                                reason,
                            });
                        }
                    }
                    let pos = n;
                    n += 1;
                    if last.is_some_and(|l| pos > l) {
                        break 'packets;
                    }
                    if wanted.get(got.len()) == Some(&pos) {
                        got.push(conv.convert(path, &frame)?);
                    }
                }
                Err(e) if is_again(&e) || e == ff::Error::Eof => break,
                Err(e) => {
                    damage.note(n, e);
                    break;
                }
            }
        }
        if packet.is_none() {
            break;
        }
    }
    let found = if last.is_some() && got.len() == wanted.len() {
        Positioned::All(got)
    } else {
        Positioned::Ended { frames: n }
    };
    Ok((found, n))
}
