//! Reading event files back, with CRC verification of every record.
//!
//! This reader shares no code with [`super::writer`] beyond the record
//! framing and proto definitions, which makes it usable as an independent
//! check of what the writer produced.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use prost::Message;

use super::proto::event::What;
use super::proto::summary::value::Value;
use super::proto::Event;
use super::record::RecordReader;
use super::{io_err, Error, Result};

/// A scalar read back from a file: `(tag, step, value)`.
pub type ScalarEntry = (String, i64, f32);

/// An image read back from a file: `(tag, step, height, width, png_bytes)`.
pub type ImageEntry = (String, i64, i32, i32, Vec<u8>);

/// Reads and decodes every event in `path`, in file order.
///
/// Fails on the first truncated record, CRC mismatch or malformed protobuf;
/// the error names the file and the record's byte offset.
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(io_err(path))?;
    let mut records = RecordReader::new(BufReader::new(file), path);
    let mut events = Vec::new();
    while let Some(rec) = records.next_record()? {
        let event = Event::decode(rec.data.as_slice()).map_err(|source| Error::Decode {
            path: path.to_path_buf(),
            offset: rec.offset,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// All scalar summary values in `path`, in file order.
pub fn scalars(path: impl AsRef<Path>) -> Result<Vec<ScalarEntry>> {
    let mut out = Vec::new();
    for_each_value(path, |tag, step, value| {
        if let Value::SimpleValue(v) = value {
            out.push((tag.to_owned(), step, *v));
        }
    })?;
    Ok(out)
}

/// All image summary values in `path`, in file order.
pub fn images(path: impl AsRef<Path>) -> Result<Vec<ImageEntry>> {
    let mut out = Vec::new();
    for_each_value(path, |tag, step, value| {
        if let Value::Image(img) = value {
            out.push((
                tag.to_owned(),
                step,
                img.height,
                img.width,
                img.encoded_image_string.clone(),
            ));
        }
    })?;
    Ok(out)
}

fn for_each_value(path: impl AsRef<Path>, mut f: impl FnMut(&str, i64, &Value)) -> Result<()> {
    for event in read_events(path)? {
        let Some(What::Summary(summary)) = &event.what else {
            continue;
        };
        for v in &summary.value {
            if let Some(value) = &v.value {
                f(&v.tag, event.step, value);
            }
        }
    }
    Ok(())
}
