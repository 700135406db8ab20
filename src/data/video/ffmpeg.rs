//! Container files through FFmpeg (`ffmpeg-next` over the system's libav*).
//!
//! Frame `i` of a file is the `i`-th frame in presentation order, counted from the first frame
//! that decodes. Two ways find it:
//!
//! - **By timestamp** (the fast path, `grid.rs`): frame `i` is shown at `start + i / fps`,
//!   `start` being the stream's first timestamp (not 0: files cut with `-c copy` or muxed with
//!   an offset start late). The demuxer seeks to the key frame before the first wanted frame and
//!   decoding goes forward only as far as the last; with the file's key-frame index
//!   (`index.rs`) it seeks again wherever a key frame lies between two wanted frames. This holds
//!   for constant-rate files, and each read checks it: every packet's time lies on that frame
//!   grid, the first decoded frame does not lie past the first wanted one, every frame from
//!   there to the last wanted one has exactly one packet, and every wanted frame comes out.
//! - **By position** (the fallback): decode from the start and count. Taken when that check
//!   fails (a wrong rate, a seek that lands late or past the end), for streams whose average
//!   rate differs from the rate their timestamps step by (variable frame rate) and for streams
//!   without timestamps (raw H.264).
//!
//! The frame count is the container's (its frame count, or duration x rate) as long as decoding
//! agrees. When the container has none, or decoding ends before a frame the count promised, the
//! frames are counted by decoding to the end and the clip is chosen again from that count; no
//! count is kept between reads.

use std::path::Path;
use std::sync::Once;

use ff::format::context::Input;
use ff::util::frame::video::Video as VideoFrame;
use ffmpeg_next as ff;

use super::convert::{undecodable, Converter};
use super::grid::by_timestamp;
use super::index::{self, KeyframeIndex};
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
pub(super) struct Opened {
    pub(super) input: Input,
    pub(super) stream: usize,
    /// Seconds per timestamp unit of the stream.
    pub(super) time_base: f64,
    /// The stream's first timestamp, in stream units (none in raw bitstreams).
    pub(super) start: Option<i64>,
    /// Frames per second by which timestamps step, when the stream looks constant-rate.
    pub(super) step_fps: Option<f64>,
    info: VideoInfo,
    pub(super) decoder: ff::decoder::Video,
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
pub(super) type RgbFrames = Vec<Vec<u8>>;

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
        // Only a read that could seek past a key frame needs to know where they are.
        let index = (wanted.len() > 1)
            .then(|| keyframe_index(path, opened.stream))
            .flatten();
        let (unique, n) = by_timestamp(opened, path, &wanted, &mut conv, index.as_deref())?;
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
pub(super) fn next_packet(
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

/// The key-frame index of `path`'s stream `stream`, cached (`index.rs`) or built now by
/// reading every packet of the file once (no decoding).
fn keyframe_index(path: &Path, stream: usize) -> Option<std::sync::Arc<KeyframeIndex>> {
    index::keyframes(path, stream, || build_index(path, stream).ok()).map(|(index, _)| index)
}

/// Reads the packets of `path`'s stream `stream` and notes the key frames' timestamps.
pub(super) fn build_index(path: &Path, stream: usize) -> Result<KeyframeIndex, DecodeError> {
    init();
    let mut input = ff::format::input(path).map_err(|e| undecodable(path, e))?;
    let (mut keyframes, mut packets) = (Vec::new(), 0usize);
    let mut packet = ff::Packet::empty();
    loop {
        match packet.read(&mut input) {
            Ok(()) if packet.stream() == stream => {
                packets += 1;
                if packet.is_key() {
                    keyframes.extend(packet.pts().or(packet.dts()));
                }
            }
            Ok(()) | Err(ff::Error::InvalidData) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => return Err(undecodable(path, e)),
        }
    }
    keyframes.sort_unstable();
    keyframes.dedup();
    Ok(KeyframeIndex {
        stream,
        keyframes,
        packets,
    })
}

/// The key-frame index of the video stream of `path`, from the cache or built now, and how it
/// was found (`tada data check --index`).
pub fn index_keyframes(
    path: &Path,
) -> Result<(std::sync::Arc<KeyframeIndex>, index::Found), DecodeError> {
    let stream = open(path)?.stream;
    index::keyframes(path, stream, || build_index(path, stream).ok()).ok_or_else(|| {
        undecodable(
            path,
            "its packets could not be read to index its key frames",
        )
    })
}
