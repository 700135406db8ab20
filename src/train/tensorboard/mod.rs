//! TensorBoard event files: a writer for scalars and images, and a reader
//! that verifies every CRC.
//!
//! An event file is a sequence of TFRecords (see [`record`]), each holding a
//! protobuf-encoded [`Event`]. The first event carries
//! `file_version = "brain.Event:2"`; TensorBoard uses it to recognise the
//! file. Later events carry a [`Summary`] with one or more tagged values.
//!
//! Only the subset of TensorFlow's `event.proto` / `summary.proto` needed for
//! scalars and images is modelled (see [`proto`]); unknown fields in files
//! produced by other writers are skipped when decoding.
//!
//! ```no_run
//! # fn main() -> Result<(), tada::train::tensorboard::Error> {
//! # let rgb_hwc = vec![0u8; 24 * 40 * 3];
//! use tada::train::tensorboard::EventWriter;
//!
//! let mut tb = EventWriter::new(std::path::Path::new("runs/exp1"))?;
//! tb.add_scalar("loss/train", 0.25, 100)?;
//! tb.add_image("samples/0", &rgb_hwc, 24, 40, 100)?; // 24 rows, 40 columns
//! tb.flush()?;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::path::PathBuf;

pub mod proto;
pub mod reader;
pub mod record;
pub mod writer;

#[cfg(test)]
mod tests;

pub use proto::Event;
pub use proto::Summary;
pub use reader::{images, read_events, scalars, ImageEntry, ScalarEntry};
pub use record::CrcField;
pub use writer::EventWriter;

/// Errors produced while writing or reading event files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory the operation was applied to.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },

    /// The file ends in the middle of a record.
    #[error(
        "{path}: truncated record at byte offset {offset}: \
         file ends at byte {eof} inside the record {part}"
    )]
    Truncated {
        /// File being read.
        path: PathBuf,
        /// Byte offset of the start of the incomplete record.
        offset: u64,
        /// Byte offset at which the data ran out.
        eof: u64,
        /// Which part of the record was incomplete.
        part: &'static str,
    },

    /// A stored CRC does not match the bytes it protects.
    #[error(
        "{path}: {field} CRC mismatch in record at byte offset {offset}: \
         stored {stored:#010x}, computed {computed:#010x}"
    )]
    CrcMismatch {
        /// File being read.
        path: PathBuf,
        /// Byte offset of the start of the corrupt record.
        offset: u64,
        /// Which of the two CRCs failed.
        field: CrcField,
        /// Masked CRC found in the file.
        stored: u32,
        /// Masked CRC computed from the file's bytes.
        computed: u32,
    },

    /// A record passed its CRC checks but is not a valid `Event` protobuf.
    #[error("{path}: invalid Event protobuf in record at byte offset {offset}: {source}")]
    Decode {
        /// File being read.
        path: PathBuf,
        /// Byte offset of the start of the record.
        offset: u64,
        /// Underlying protobuf error.
        #[source]
        source: prost::DecodeError,
    },

    /// PNG encoding or header parsing failed.
    #[error("image {tag:?}: {source}")]
    Image {
        /// Summary tag of the image.
        tag: String,
        /// Underlying codec error.
        #[source]
        source: image::ImageError,
    },

    /// Image arguments are inconsistent (buffer size, dimensions).
    #[error("image {tag:?}: {reason}")]
    InvalidImage {
        /// Summary tag of the image.
        tag: String,
        /// What was wrong.
        reason: String,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds a closure that attaches `path` to an [`io::Error`], for `map_err`.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
