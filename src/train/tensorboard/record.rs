//! TFRecord framing.
//!
//! Each record is laid out as
//!
//! ```text
//! u64 length (little endian)
//! u32 masked_crc32c(length bytes)
//! [u8; length] data
//! u32 masked_crc32c(data)
//! ```
//!
//! All integers are little endian. The CRC is CRC-32C (Castagnoli), masked
//! as described at [`mask_crc`].

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{Error, Result};

const MASK_DELTA: u32 = 0xa282_ead8;
const HEADER_LEN: usize = 12;

/// Masks a CRC the way TFRecord does.
///
/// TFRecord stores `((crc >> 15) | (crc << 17)) + 0xa282ead8` rather than the
/// raw CRC because computing the CRC of a string that itself contains
/// embedded CRCs is problematic.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask_crc`].
pub fn unmask_crc(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// Masked CRC-32C of `data`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask_crc(crc32c::crc32c(data))
}

/// Writes one framed record. The caller owns buffering and flushing.
pub fn write_record<W: Write>(out: &mut W, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&len);
    header[8..].copy_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.write_all(&header)?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

/// Which CRC of a record failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcField {
    /// The CRC over the 8 length bytes.
    Length,
    /// The CRC over the payload.
    Data,
}

impl fmt::Display for CrcField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CrcField::Length => "length",
            CrcField::Data => "data",
        })
    }
}

/// One record as read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the record's first header byte.
    pub offset: u64,
    /// The verified payload.
    pub data: Vec<u8>,
}

/// Reads records sequentially, verifying both CRCs of each.
///
/// `path` is used only to label errors, so in-memory sources work too.
pub struct RecordReader<R> {
    inner: R,
    path: PathBuf,
    pos: u64,
}

impl<R: Read> RecordReader<R> {
    /// Wraps `inner`, which should be buffered for efficiency.
    pub fn new(inner: R, path: &Path) -> Self {
        Self {
            inner,
            path: path.to_path_buf(),
            pos: 0,
        }
    }

    /// Returns the next record, `Ok(None)` at a clean end of file, or an
    /// error if the record is truncated or fails a CRC check.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        let offset = self.pos;

        let mut header = [0u8; HEADER_LEN];
        let got = self.read_full(&mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(self.truncated(offset, "header"));
        }
        let (len_bytes, len_crc) = header.split_at(8);
        self.check_crc(offset, CrcField::Length, len_bytes, len_crc)?;
        let len = u64::from_le_bytes(to_array(len_bytes));

        // `take` + `read_to_end` grows the buffer as bytes actually arrive,
        // so a (CRC-valid but) absurd length on a short file cannot trigger
        // a huge up-front allocation.
        let mut data = Vec::new();
        let got = (&mut self.inner)
            .take(len)
            .read_to_end(&mut data)
            .map_err(|e| self.io(e))?;
        self.pos += got as u64;
        if (got as u64) < len {
            return Err(self.truncated(offset, "data"));
        }

        let mut data_crc = [0u8; 4];
        if self.read_full(&mut data_crc)? < data_crc.len() {
            return Err(self.truncated(offset, "data CRC"));
        }
        self.check_crc(offset, CrcField::Data, &data, &data_crc)?;

        Ok(Some(Record { offset, data }))
    }

    /// Like `read_exact`, but reports how much was read at EOF instead of
    /// failing, so callers can tell a clean end from a truncated record.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        self.pos += filled as u64;
        Ok(filled)
    }

    fn check_crc(&self, offset: u64, field: CrcField, bytes: &[u8], stored: &[u8]) -> Result<()> {
        let stored = u32::from_le_bytes(to_array(stored));
        let computed = masked_crc32c(bytes);
        if stored == computed {
            return Ok(());
        }
        Err(Error::CrcMismatch {
            path: self.path.clone(),
            offset,
            field,
            stored,
            computed,
        })
    }

    fn truncated(&self, offset: u64, part: &'static str) -> Error {
        Error::Truncated {
            path: self.path.clone(),
            offset,
            eof: self.pos,
            part,
        }
    }

    fn io(&self, source: io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// Copies a slice whose length the caller has already fixed into an array.
fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEM: &str = "<memory>";

    fn frame(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            write_record(&mut out, r).unwrap();
        }
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>> {
        let mut reader = RecordReader::new(bytes, Path::new(MEM));
        let mut out = Vec::new();
        while let Some(r) = reader.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn mask_round_trips_and_matches_formula() {
        for crc in [0u32, 1, 0xE306_9283, 0xFFFF_FFFF, 0x8000_0000, 0x1234_5678] {
            // Spelled out as in the TFRecord spec to check `rotate_right`.
            #[allow(clippy::manual_rotate)]
            let formula = ((crc >> 15) | (crc << 17)).wrapping_add(MASK_DELTA);
            assert_eq!(mask_crc(crc), formula);
            assert_eq!(unmask_crc(mask_crc(crc)), crc);
        }
        // Value from tensorboard's Python `masked_crc32c(b"123456789")`.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    /// Bytes produced by tensorboard's Python `RecordWriter` for the same
    /// payload: an independent implementation of the framing.
    #[test]
    fn matches_tensorboard_python_record_writer() {
        let golden: [u8; 26] = [
            0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xae, 0xa3, 0xbf, 0x3a, b'h', b'e',
            b'l', b'l', b'o', b' ', b't', b'a', b'd', b'a', 0x23, 0xfe, 0x8e, 0xa2,
        ];
        assert_eq!(frame(&[b"hello tada"]), golden);
    }

    #[test]
    fn round_trip_with_offsets() {
        let bytes = frame(&[b"first", b"", b"third record"]);
        let recs = read_all(&bytes).unwrap();
        let got: Vec<(u64, &[u8])> = recs.iter().map(|r| (r.offset, &r.data[..])).collect();
        assert_eq!(
            got,
            vec![
                (0, &b"first"[..]),
                (21, &b""[..]),
                (37, &b"third record"[..])
            ]
        );
        assert!(read_all(&[]).unwrap().is_empty());
    }

    #[test]
    fn every_single_byte_flip_is_a_crc_error() {
        let bytes = frame(&[b"abc", b"payload"]);
        let second = 12 + 3 + 4;
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let start = if i < second { 0 } else { second };
            let want_field = if i - start < 12 {
                CrcField::Length
            } else {
                CrcField::Data
            };
            let want_offset = start as u64;
            match read_all(&bad) {
                Err(Error::CrcMismatch { offset, field, .. }) => {
                    assert_eq!((offset, field), (want_offset, want_field), "byte {i}");
                }
                other => panic!("byte {i}: expected CRC error, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_truncation_is_reported() {
        let bytes = frame(&[b"abc", b"payload"]);
        let second = 12 + 3 + 4;
        for cut in 1..bytes.len() {
            if cut == second {
                continue; // a record boundary is a clean end of file
            }
            let want_offset = if cut < second { 0 } else { second as u64 };
            match read_all(&bytes[..cut]) {
                Err(Error::Truncated { offset, eof, .. }) => {
                    assert_eq!((offset, eof), (want_offset, cut as u64), "cut {cut}");
                }
                other => panic!("cut {cut}: expected truncation, got {other:?}"),
            }
        }
    }
}
