//! Container files through FFmpeg (`ffmpeg-next` over the system's libav*): open, find the best
//! video stream, seek to the key frame before the first wanted frame, decode forward only as far
//! as the last wanted frame, and convert to RGB24 (resized on the way when asked).
//!
//! Frame `i` is the frame whose presentation time is `start + i / fps`: the index comes from the
//! frame's own timestamp, so a seek that lands on an earlier key frame costs decoding time but
//! never shifts the clip.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use ff::format::context::Input;
use ff::software::scaling;
use ff::util::frame::video::Video as VideoFrame;
use ffmpeg_next as ff;

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

fn undecodable(path: &Path, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Undecodable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// An opened file with its chosen video stream.
struct Opened {
    input: Input,
    stream: usize,
    /// Seconds per timestamp unit of the stream.
    time_base: f64,
    /// Timestamp of the first frame, in stream units.
    start: i64,
    info: VideoInfo,
    /// The stream's opened decoder, taken by the one decode pass an `Opened` serves.
    decoder: Option<ff::decoder::Video>,
}

fn rate(r: ff::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

fn open(path: &Path) -> Result<Opened, DecodeError> {
    init();
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
    let fps = rate(stream.avg_frame_rate())
        .or_else(|| rate(stream.rate()))
        .ok_or_else(|| undecodable(path, "the video stream has no frame rate"))?;
    let time_base = rate(stream.time_base())
        .ok_or_else(|| undecodable(path, "the video stream has no time base"))?;
    let start = match stream.start_time() {
        ts if ts == ff::ffi::AV_NOPTS_VALUE => 0,
        ts => ts,
    };
    let frames = if stream.frames() > 0 {
        stream.frames() as usize
    } else {
        // WebM/Matroska store no frame count: estimate from the stream (or container) duration.
        let secs = if stream.duration() > 0 {
            stream.duration() as f64 * time_base
        } else if input.duration() > 0 {
            input.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE)
        } else {
            0.0
        };
        (secs * fps).round() as usize
    };
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
        info,
        decoder: Some(decoder),
    })
}

pub fn probe(path: &Path) -> Result<VideoInfo, DecodeError> {
    open(path).map(|o| o.info)
}

/// RGB24 conversion of decoded frames into tightly packed rows.
struct Converter {
    scaler: Option<(scaling::Context, ff::format::Pixel, u32, u32)>,
    out_h: u32,
    out_w: u32,
    rgb: VideoFrame,
}

impl Converter {
    fn new(out_h: u32, out_w: u32) -> Self {
        Self {
            scaler: None,
            out_h,
            out_w,
            rgb: VideoFrame::empty(),
        }
    }

    /// Bicubic is the CLI's default, so a same-size conversion gives frames byte-equal to
    /// `ffmpeg -pix_fmt rgb24` (tested); a resize on decode is bilinear like the reference's
    /// `interpolate(mode="bilinear")` that it replaces.
    fn flags(&self, in_w: u32, in_h: u32) -> scaling::Flags {
        if (in_w, in_h) == (self.out_w, self.out_h) {
            scaling::Flags::BICUBIC
        } else {
            scaling::Flags::BILINEAR
        }
    }

    fn convert(&mut self, path: &Path, frame: &VideoFrame) -> Result<Vec<u8>, DecodeError> {
        let key = (frame.format(), frame.width(), frame.height());
        let stale = !matches!(&self.scaler, Some((_, f, w, h)) if (*f, *w, *h) == key);
        if stale {
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                ff::format::Pixel::RGB24,
                self.out_w,
                self.out_h,
                self.flags(key.1, key.2),
            )
            .map_err(|e| undecodable(path, e))?;
            self.scaler = Some((ctx, key.0, key.1, key.2));
        }
        let (ctx, ..) = self.scaler.as_mut().expect("scaler set above");
        ctx.run(frame, &mut self.rgb)
            .map_err(|e| undecodable(path, e))?;
        // swscale pads rows to its alignment; copy row by row into a packed buffer.
        let row = self.out_w as usize * 3;
        let stride = self.rgb.stride(0);
        let plane = self.rgb.data(0);
        let mut out = Vec::with_capacity(row * self.out_h as usize);
        for y in 0..self.out_h as usize {
            out.extend_from_slice(&plane[y * stride..y * stride + row]);
        }
        Ok(out)
    }
}

/// Opens `path` once, lets `choose` pick the frame indices from what the file says about
/// itself, and decodes them.
pub fn read_with(
    path: &Path,
    resize: Resize,
    choose: impl FnOnce(&VideoInfo) -> Result<Vec<usize>, DecodeError>,
) -> Result<Frames, DecodeError> {
    let mut o = open(path)?;
    let indices = choose(&o.info)?;
    read_opened(&mut o, path, &indices, resize)
}

fn read_opened(
    o: &mut Opened,
    path: &Path,
    indices: &[usize],
    resize: Resize,
) -> Result<Frames, DecodeError> {
    let (out_h, out_w) = resize.apply(o.info.height, o.info.width);
    // Decode each distinct frame once, in increasing order; `order` maps the request onto them.
    let wanted: Vec<usize> = {
        let mut w = indices.to_vec();
        w.sort_unstable();
        w.dedup();
        w
    };
    let Some((&first, &last)) = wanted.first().zip(wanted.last()) else {
        return Ok(Frames {
            data: Vec::new(),
            t: 0,
            height: out_h as usize,
            width: out_w as usize,
            decoded: 0,
        });
    };
    let (mut got, mut decoded) = decode_range(o, path, first, last, &wanted, out_h, out_w, true)?;
    if !got.contains_key(&first) && first > 0 {
        // The seek landed after the wanted frame (a file with a poor index): decode from the start.
        let mut fresh = open(path)?;
        let (again, n) = decode_range(&mut fresh, path, first, last, &wanted, out_h, out_w, false)?;
        got = again;
        decoded += n;
    }
    let decoded_max = got.keys().next_back().copied();
    let mut unique = Vec::with_capacity(wanted.len());
    for &w in &wanted {
        match got.remove(&w) {
            Some(f) => unique.push(f),
            None => {
                return Err(DecodeError::Truncated {
                    path: path.to_path_buf(),
                    wanted: w,
                    decoded: decoded_max.map_or(0, |m| m + 1),
                })
            }
        }
    }
    let order: Vec<usize> = indices
        .iter()
        .map(|i| wanted.binary_search(i).expect("every index is in `wanted`"))
        .collect();
    Ok(Frames::gather(
        &unique,
        &order,
        out_h as usize,
        out_w as usize,
        decoded,
    ))
}

/// Decodes frames `first..=last` (keeping those in `wanted`), seeking first when `seek`;
/// otherwise `o` must be freshly opened.
#[allow(clippy::too_many_arguments)]
fn decode_range(
    o: &mut Opened,
    path: &Path,
    first: usize,
    last: usize,
    wanted: &[usize],
    out_h: u32,
    out_w: u32,
    seek: bool,
) -> Result<(BTreeMap<usize, Vec<u8>>, usize), DecodeError> {
    let secs_per_frame = 1.0 / o.info.fps;
    // Seek by container time (AV_TIME_BASE units) to at most the wanted frame's time; the demuxer
    // moves to the key frame at or before it.
    let target_secs = first as f64 * secs_per_frame + o.start as f64 * o.time_base;
    // Without a seek a freshly opened file reads from its first packet.
    if seek && first > 0 {
        let ts = (target_secs * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        if o.input.seek(ts, ..ts).is_err() {
            let mut fresh = open(path)?;
            std::mem::swap(o, &mut fresh);
        }
    }
    let mut decoder = o
        .decoder
        .take()
        .expect("decode_range gets a freshly opened file, whose decoder is unused");
    let (start, time_base) = (o.start, o.time_base);
    let to_index = |ts: i64| -> usize {
        let secs = (ts - start) as f64 * time_base;
        (secs / secs_per_frame).round().max(0.0) as usize
    };
    let mut conv = Converter::new(out_h, out_w);
    let mut got = BTreeMap::new();
    let mut frame = VideoFrame::empty();
    let mut counter: Option<usize> = None;
    let mut produced = 0usize;
    let mut done = false;
    let mut receive = |decoder: &mut ff::decoder::Video,
                       got: &mut BTreeMap<usize, Vec<u8>>,
                       counter: &mut Option<usize>,
                       produced: &mut usize|
     -> Result<bool, DecodeError> {
        while decoder.receive_frame(&mut frame).is_ok() {
            *produced += 1;
            let idx = match frame.timestamp().or(frame.pts()) {
                Some(ts) => to_index(ts),
                // No timestamps at all: count frames (only correct from the start).
                None => counter.map_or(0, |c| c + 1),
            };
            *counter = Some(idx);
            if idx > last {
                return Ok(true);
            }
            if wanted.binary_search(&idx).is_ok() && !got.contains_key(&idx) {
                got.insert(idx, conv.convert(path, &frame)?);
            }
        }
        Ok(false)
    };
    for (s, packet) in o.input.packets() {
        if s.index() != o.stream {
            continue;
        }
        // A frame nobody asked for that no other frame references need not be decoded at all
        // (B-frames mostly); the packet's timestamp says which frame it holds.
        let needed = packet
            .pts()
            .is_none_or(|ts| wanted.binary_search(&to_index(ts)).is_ok());
        decoder.skip_frame(if needed {
            ff::Discard::Default
        } else {
            ff::Discard::NonReference
        });
        if decoder.send_packet(&packet).is_err() {
            // A corrupt packet: keep what decodes, the caller reports missing frames.
            continue;
        }
        if receive(&mut decoder, &mut got, &mut counter, &mut produced)? {
            done = true;
            break;
        }
    }
    if !done {
        let _ = decoder.send_eof();
        receive(&mut decoder, &mut got, &mut counter, &mut produced)?;
    }
    Ok((got, produced))
}
