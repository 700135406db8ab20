//! A strict reader of the zip directory `torch.save` writes: every entry stored (never
//! compressed), no encryption, no archive comment, no multi-disk, no duplicate names, and
//! every size and offset checked against the file before anything is sized by it.
//!
//! Being stricter than a general zip reader is deliberate: an archive this accepts has only
//! one reasonable reading, so the pickle scanned here is the one the tensor reader parses.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// One stored entry: its name, size and where its bytes start.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub crc32: u32,
    pub data_start: u64,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
/// Central directories larger than this are refused (about a million entries).
const MAX_DIRECTORY: u64 = 64 << 20;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn read_at(file: &mut File, offset: u64, len: usize, what: &str) -> Result<Vec<u8>, String> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("cannot seek to the {what}: {e}"))?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)
        .map_err(|e| format!("cannot read the {what}: {e}"))?;
    Ok(buf)
}

/// Where the central directory is: (offset, size, entry count), and where it must end.
fn locate_directory(file: &mut File, file_len: u64) -> Result<(u64, u64, u64), String> {
    if file_len < 22 {
        return Err("zip archive is truncated (no end-of-directory record)".to_string());
    }
    let eocd_at = file_len - 22;
    let eocd = read_at(file, eocd_at, 22, "end-of-directory record")?;
    if u32_at(&eocd, 0) != EOCD_SIG {
        return Err(
            "zip archive is truncated or has trailing data (no end-of-directory record at its end)"
                .to_string(),
        );
    }
    if u16_at(&eocd, 20) != 0 {
        return Err("zip archive has a comment, which torch.save never writes".to_string());
    }
    if u16_at(&eocd, 4) != 0 || u16_at(&eocd, 6) != 0 {
        return Err("multi-disk zip archives are not supported".to_string());
    }
    let mut entries = u64::from(u16_at(&eocd, 10));
    let mut size = u64::from(u32_at(&eocd, 12));
    let mut offset = u64::from(u32_at(&eocd, 16));
    let mut dir_end = eocd_at;
    // torch.save always writes the zip64 records (a locator right before the classic record);
    // they are required when a classic field overflowed.
    let overflowed = entries == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF;
    let locator = match eocd_at.checked_sub(20) {
        Some(at) => Some((at, read_at(file, at, 20, "zip64 locator")?)),
        None => None,
    }
    .filter(|(_, locator)| u32_at(locator, 0) == ZIP64_LOCATOR_SIG);
    if overflowed && locator.is_none() {
        return Err("zip64 end-of-directory locator is missing".to_string());
    }
    if let Some((locator_at, locator)) = locator {
        let record_at = u64_at(&locator, 8);
        if record_at.checked_add(56) != Some(locator_at) {
            return Err("zip64 end-of-directory record is not where its locator says".to_string());
        }
        let record = read_at(file, record_at, 56, "zip64 end-of-directory record")?;
        if u32_at(&record, 0) != ZIP64_EOCD_SIG || u64_at(&record, 4) != 44 {
            return Err("zip64 end-of-directory record is corrupt".to_string());
        }
        if u32_at(&record, 16) != 0 || u32_at(&record, 20) != 0 {
            return Err("multi-disk zip archives are not supported".to_string());
        }
        let wide = (
            u64_at(&record, 32),
            u64_at(&record, 40),
            u64_at(&record, 48),
        );
        if !overflowed && wide != (entries, size, offset) {
            return Err("the zip64 and classic end-of-directory records disagree".to_string());
        }
        (entries, size, offset) = wide;
        dir_end = record_at;
    }
    if offset.checked_add(size) != Some(dir_end) {
        return Err(format!(
            "zip central directory ({size} bytes at {offset}) does not end where the \
             end-of-directory record starts ({dir_end})"
        ));
    }
    if size > MAX_DIRECTORY {
        return Err(format!(
            "zip central directory of {size} bytes is above the {MAX_DIRECTORY} byte limit"
        ));
    }
    if entries > size / 46 {
        return Err(format!(
            "zip directory claims {entries} entries in {size} bytes"
        ));
    }
    Ok((offset, size, entries))
}

/// A central-directory record, with any zip64 sizes and offset already in place.
struct Central {
    name: String,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed: u64,
    size: u64,
    disk: u16,
    local_at: u64,
    /// Where the next record starts in the directory.
    next: usize,
}

impl Central {
    /// Parses the record at `at`; its name, extra field and comment must lie within `dir`.
    fn parse(dir: &[u8], at: usize) -> Result<Self, String> {
        if at + 46 > dir.len() || u32_at(dir, at) != CENTRAL_SIG {
            return Err("zip central directory is corrupt".to_string());
        }
        let name_len = usize::from(u16_at(dir, at + 28));
        let extra_len = usize::from(u16_at(dir, at + 30));
        let comment_len = usize::from(u16_at(dir, at + 32));
        let name_at = at + 46;
        let extra_at = name_at + name_len;
        let next = extra_at + extra_len + comment_len;
        if next > dir.len() {
            return Err("zip central directory is corrupt".to_string());
        }
        let name = std::str::from_utf8(&dir[name_at..extra_at])
            .map_err(|_| "zip entry name is not UTF-8".to_string())?
            .to_string();
        let mut record = Self {
            name,
            flags: u16_at(dir, at + 8),
            method: u16_at(dir, at + 10),
            crc32: u32_at(dir, at + 16),
            compressed: u64::from(u32_at(dir, at + 20)),
            size: u64::from(u32_at(dir, at + 24)),
            disk: u16_at(dir, at + 34),
            local_at: u64::from(u32_at(dir, at + 42)),
            next,
        };
        record.widen(&dir[extra_at..extra_at + extra_len])?;
        Ok(record)
    }

    /// Takes the zip64 sizes and offset, in this order, for the fields that overflowed.
    fn widen(&mut self, mut extra: &[u8]) -> Result<(), String> {
        let name = &self.name;
        while extra.len() >= 4 {
            let id = u16_at(extra, 0);
            let len = usize::from(u16_at(extra, 2));
            let body = extra
                .get(4..4 + len)
                .ok_or_else(|| format!("zip entry {name}: corrupt extra field"))?;
            if id == 0x0001 {
                let mut fields = body.chunks_exact(8).map(|c| u64_at(c, 0));
                let mut wide = |v: &mut u64| -> Result<(), String> {
                    if *v == 0xFFFF_FFFF {
                        *v = fields
                            .next()
                            .ok_or_else(|| format!("zip entry {name}: short zip64 field"))?;
                    }
                    Ok(())
                };
                wide(&mut self.size)?;
                wide(&mut self.compressed)?;
                wide(&mut self.local_at)?;
            }
            extra = &extra[4 + len..];
        }
        Ok(())
    }

    /// Refuses what `torch.save` never writes: encryption, compression, other disks.
    fn check_stored(&self) -> Result<(), String> {
        let name = &self.name;
        if self.flags & 0x41 != 0 {
            return Err(format!("zip entry {name} is encrypted"));
        }
        if self.method != 0 {
            return Err(format!(
                "zip entry {name} is compressed (method {}); torch.save stores every entry \
                 uncompressed",
                self.method
            ));
        }
        if self.compressed != self.size {
            return Err(format!(
                "zip entry {name} declares {} bytes but stores {}",
                self.size, self.compressed
            ));
        }
        if self.disk != 0 && self.disk != 0xFFFF {
            return Err("multi-disk zip archives are not supported".to_string());
        }
        Ok(())
    }

    /// Where the entry's data starts: after its local header, which must lie before the
    /// directory (at `dir_at`) and name the same entry; it may carry its own (alignment)
    /// extra field.
    fn data_start(&self, file: &mut File, dir_at: u64) -> Result<u64, String> {
        let name = &self.name;
        let name_len = name.len();
        if self
            .local_at
            .checked_add(30 + name_len as u64)
            .is_none_or(|end| end > dir_at)
        {
            return Err(format!(
                "zip entry {name}: local header lies outside the archive"
            ));
        }
        let local = read_at(file, self.local_at, 30 + name_len, "zip local header")?;
        if u32_at(&local, 0) != LOCAL_SIG {
            return Err(format!("zip entry {name}: corrupt local header"));
        }
        let local_name_len = u64::from(u16_at(&local, 26));
        let local_extra_len = u64::from(u16_at(&local, 28));
        let data_start = self.local_at + 30 + local_name_len + local_extra_len;
        if local_name_len != name_len as u64 || &local[30..] != name.as_bytes() {
            return Err(format!(
                "zip entry {name}: local header names a different entry"
            ));
        }
        Ok(data_start)
    }
}

/// Reads and checks the whole directory; every entry's data lies before the directory.
pub fn read_directory(file: &mut File, file_len: u64) -> Result<Vec<Entry>, String> {
    let (dir_at, dir_size, count) = locate_directory(file, file_len)?;
    let dir = read_at(file, dir_at, dir_size as usize, "zip central directory")?;
    let mut entries = Vec::with_capacity(count.min(4096) as usize);
    let mut names = HashSet::new();
    let mut at = 0usize;
    for _ in 0..count {
        let record = Central::parse(&dir, at)?;
        record.check_stored()?;
        let name = &record.name;
        if !names.insert(name.clone()) {
            return Err(format!("zip entry {name} appears twice"));
        }
        let data_start = record.data_start(file, dir_at)?;
        let size = record.size;
        if data_start.checked_add(size).is_none_or(|end| end > dir_at) {
            return Err(format!(
                "zip entry {name} claims {size} bytes, more than the archive holds"
            ));
        }
        at = record.next;
        entries.push(Entry {
            name: record.name,
            size,
            crc32: record.crc32,
            data_start,
        });
    }
    if at != dir.len() {
        return Err("zip central directory has trailing bytes".to_string());
    }
    Ok(entries)
}

/// Reads a whole entry (at most `max` bytes) and checks its CRC when one was recorded.
pub fn read_entry(file: &mut File, entry: &Entry, max: u64) -> Result<Vec<u8>, String> {
    if entry.size > max {
        return Err(format!(
            "zip entry {} is {} bytes, above the {max} byte limit",
            entry.name, entry.size
        ));
    }
    let bytes = read_at(file, entry.data_start, entry.size as usize, &entry.name)?;
    // torch.save(..., compute_crc32=False) records 0: no checksum to check.
    if entry.crc32 != 0 && crc32(&bytes) != entry.crc32 {
        return Err(format!("zip entry {} fails its CRC-32 check", entry.name));
    }
    Ok(bytes)
}

/// CRC-32 (IEEE) lookup table.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE), as zip records it.
pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
