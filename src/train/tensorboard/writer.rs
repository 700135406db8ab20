//! Writing TensorBoard event files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use image::codecs::png::{PngDecoder, PngEncoder};
use image::{ColorType, ExtendedColorType, ImageDecoder, ImageEncoder};
use prost::Message;

use super::proto::event::What;
use super::proto::summary::{self, value::Value};
use super::proto::{Event, Summary};
use super::{io_err, record, Error, Result};

/// Version string TensorBoard expects in the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// Appends scalar and image summaries to a new event file in a log directory.
///
/// Writes are buffered; call [`flush`](Self::flush) to make them visible to a
/// running TensorBoard and to observe write errors. Dropping the writer also
/// flushes, but any error at that point is lost.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `logdir` if needed and starts a new event file in it named
    /// `events.out.tfevents.{unix_secs}.{hostname}.{pid}.tada`.
    ///
    /// An existing file is never overwritten: if the name is taken (two
    /// writers in one process within the same second), `.1`, `.2`, ... is
    /// appended. TensorBoard still picks these up, as it matches on
    /// `tfevents` in the name.
    pub fn new(logdir: impl AsRef<Path>) -> Result<Self> {
        let logdir = logdir.as_ref();
        fs::create_dir_all(logdir).map_err(io_err(logdir))?;
        let base = format!(
            "events.out.tfevents.{}.{}.{}.tada",
            now().as_secs(),
            hostname(),
            std::process::id()
        );
        let (path, file) = create_unique(logdir, &base)?;
        let mut writer = Self {
            path,
            out: BufWriter::new(file),
        };
        writer.write_event(0, What::FileVersion(FILE_VERSION.to_owned()))?;
        // Flushed right away so TensorBoard can recognise the file (and the
        // run shows up) before the first buffer fills.
        writer.flush()?;
        Ok(writer)
    }

    /// Path of the event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a scalar `value` for series `tag` at `step`.
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64) -> Result<()> {
        self.write_value(tag, Value::SimpleValue(value), step)
    }

    /// Records an RGB image for `tag` at `step`.
    ///
    /// `rgb` is `height` rows of `width` pixels, each pixel 3 bytes (R, G,
    /// B), row-major: the byte for channel `c` of the pixel at row `y`,
    /// column `x` is `rgb[(y * width + x) * 3 + c]`.
    pub fn add_image(
        &mut self,
        tag: &str,
        rgb: &[u8],
        height: u32,
        width: u32,
        step: i64,
    ) -> Result<()> {
        let expected = (height as usize)
            .checked_mul(width as usize)
            .and_then(|n| n.checked_mul(3));
        if expected != Some(rgb.len()) {
            return Err(invalid(
                tag,
                format!(
                    "RGB buffer has {} bytes, expected height {height} x width {width} x 3",
                    rgb.len()
                ),
            ));
        }
        let mut png = Vec::new();
        PngEncoder::new(&mut png)
            .write_image(rgb, width, height, ExtendedColorType::Rgb8)
            .map_err(|source| image_err(tag, source))?;
        self.write_png(tag, png, height, width, step)
    }

    /// Records an already encoded PNG for `tag` at `step`.
    ///
    /// The PNG header is checked against `height` and `width`, because
    /// TensorBoard lays out the image from these proto fields; the colorspace
    /// is taken from the header.
    pub fn add_png(
        &mut self,
        tag: &str,
        png: &[u8],
        height: u32,
        width: u32,
        step: i64,
    ) -> Result<()> {
        self.write_png(tag, png.to_vec(), height, width, step)
    }

    /// Pushes buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(io_err(&self.path))
    }

    fn write_png(
        &mut self,
        tag: &str,
        png: Vec<u8>,
        height: u32,
        width: u32,
        step: i64,
    ) -> Result<()> {
        let decoder = PngDecoder::new(Cursor::new(png.as_slice()))
            .map_err(|source| image_err(tag, source))?;
        let (png_width, png_height) = decoder.dimensions();
        if (png_width, png_height) != (width, height) {
            return Err(invalid(
                tag,
                format!(
                    "PNG is {png_width} wide x {png_height} high, \
                     but width {width} x height {height} was given"
                ),
            ));
        }
        let colorspace = match decoder.color_type() {
            ColorType::L8 | ColorType::L16 => 1,
            ColorType::La8 | ColorType::La16 => 2,
            ColorType::Rgb8 | ColorType::Rgb16 => 3,
            ColorType::Rgba8 | ColorType::Rgba16 => 4,
            other => {
                return Err(invalid(
                    tag,
                    format!("unsupported PNG color type {other:?}"),
                ))
            }
        };
        let (Ok(height), Ok(width)) = (i32::try_from(height), i32::try_from(width)) else {
            return Err(invalid(tag, "dimensions do not fit in int32".to_owned()));
        };
        let image = summary::Image {
            height,
            width,
            colorspace,
            encoded_image_string: png,
        };
        self.write_value(tag, Value::Image(image), step)
    }

    fn write_value(&mut self, tag: &str, value: Value, step: i64) -> Result<()> {
        let summary = Summary {
            value: vec![summary::Value {
                tag: tag.to_owned(),
                value: Some(value),
            }],
        };
        self.write_event(step, What::Summary(summary))
    }

    fn write_event(&mut self, step: i64, what: What) -> Result<()> {
        let event = Event {
            wall_time: now().as_secs_f64(),
            step,
            what: Some(what),
        };
        record::write_record(&mut self.out, &event.encode_to_vec()).map_err(io_err(&self.path))
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        // Drop cannot report failure; callers who care call `flush` first.
        let _ = self.out.flush();
    }
}

/// Time since the Unix epoch; a clock set before 1970 yields zero rather
/// than failing a training run over a log timestamp.
fn now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Host name for the file name, read from procfs to avoid a libc/FFI
/// dependency.
fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        // A separator would turn the name into a path.
        .filter(|h| !h.is_empty() && !h.contains(['/', '\\']))
        .unwrap_or_else(|| "localhost".to_owned())
}

fn create_unique(dir: &Path, base: &str) -> Result<(PathBuf, File)> {
    let mut n = 0u32;
    loop {
        let path = if n == 0 {
            dir.join(base)
        } else {
            dir.join(format!("{base}.{n}"))
        };
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
}

fn invalid(tag: &str, reason: String) -> Error {
    Error::InvalidImage {
        tag: tag.to_owned(),
        reason,
    }
}

fn image_err(tag: &str, source: image::ImageError) -> Error {
    Error::Image {
        tag: tag.to_owned(),
        source,
    }
}
