//! The two containers `torch.save` writes, read from one open file handle: the zip archive
//! (PyTorch 1.6 and later) and the legacy stream (`_use_new_zipfile_serialization=False` and
//! older releases). Both end up as the unpickled root value plus, for every storage the
//! pickle names, where its bytes lie in the file, already checked against the file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

use super::scan::scan;
use super::unpickle::unpickle;
use super::value::{Dtype, Storage, TensorRef, Value};
use super::zip;
use super::MAX_PICKLE_BYTES;

/// torch's legacy magic number 0x1950a86a20f9469cfc6c as a pickled `LONG1` holds it.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// A legacy file holds five pickles before its storages: magic, protocol, system info, the
/// object, the storage keys.
const LEGACY_PICKLES: usize = 5;

/// Where a storage's bytes are: file offset, length, and the CRC-32 to check (zip only).
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub start: u64,
    pub len: u64,
    pub crc32: Option<u32>,
}

/// A parsed checkpoint: its root value and where each named storage lies.
pub struct Loaded {
    pub root: Value,
    pub regions: HashMap<String, Region>,
}

/// Reads and checks the container, scans every pickle, then unpickles.
pub fn load(file: &mut File, file_len: u64) -> Result<Loaded, String> {
    let mut head = Vec::with_capacity(64);
    file.by_ref()
        .take(64)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        load_zip(file, file_len)
    } else if head.windows(LEGACY_MAGIC.len()).any(|w| w == LEGACY_MAGIC) {
        load_legacy(file, file_len)
    } else {
        Err("not a torch.save checkpoint (neither a zip archive nor a legacy torch file)".into())
    }
}

fn load_zip(file: &mut File, file_len: u64) -> Result<Loaded, String> {
    let entries = zip::read_directory(file, file_len)?;
    let mut pickles = entries.iter().filter(|e| {
        e.name
            .strip_suffix("data.pkl")
            .is_some_and(|root| root.is_empty() || root.ends_with('/'))
    });
    let pickle = pickles
        .next()
        .ok_or("the zip archive has no data.pkl: not a torch.save file")?;
    if pickles.next().is_some() {
        return Err("the zip archive holds more than one data.pkl".to_string());
    }
    let root = pickle.name.strip_suffix("data.pkl").unwrap_or_default();
    let by_name: HashMap<&str, &zip::Entry> =
        entries.iter().map(|e| (e.name.as_str(), e)).collect();
    if let Some(order) = by_name.get(format!("{root}byteorder").as_str()) {
        let order = zip::read_entry(file, order, 16)?;
        if order.trim_ascii() != b"little" {
            return Err("the checkpoint was saved big-endian, which is not supported".into());
        }
    }

    let data = zip::read_entry(file, pickle, MAX_PICKLE_BYTES)?;
    let name = &pickle.name;
    let end = scan(&data).map_err(|e| format!("{name} {e}"))?;
    if end != data.len() {
        return Err(format!(
            "{name} has {} bytes after its end",
            data.len() - end
        ));
    }
    let mut regions = HashMap::new();
    let mut resolve = |s: &Storage| -> Result<(), String> {
        let entry_name = format!("{root}data/{}", s.key);
        let entry = by_name
            .get(entry_name.as_str())
            .ok_or_else(|| format!("storage {} has no zip entry {entry_name}", s.key))?;
        let bytes = s.numel.checked_mul(s.dtype.size());
        if bytes != Some(entry.size) {
            return Err(format!(
                "storage {} declares {} {:?} elements but its zip entry holds {} bytes",
                s.key, s.numel, s.dtype, entry.size
            ));
        }
        regions.insert(
            s.key.clone(),
            Region {
                start: entry.data_start,
                len: entry.size,
                crc32: (entry.crc32 != 0).then_some(entry.crc32),
            },
        );
        Ok(())
    };
    let (root, _) = unpickle(&data, &mut resolve).map_err(|e| format!("{name} {e}"))?;
    Ok(Loaded { root, regions })
}

/// The header pickles of a legacy file (magic, protocol, system info, the object, the storage
/// keys), each scanned before any is unpickled.
struct LegacyHeader {
    data: Vec<u8>,
    /// Where each pickle ends in `data`: the storages follow the last one.
    ends: Vec<usize>,
}

impl LegacyHeader {
    /// Reads no more than the pickle limit: the header pickles precede the storages.
    fn read(file: &mut File, file_len: u64) -> Result<Self, String> {
        let mut data = Vec::new();
        file.rewind().map_err(|e| format!("cannot read: {e}"))?;
        file.by_ref()
            .take(MAX_PICKLE_BYTES.min(file_len))
            .read_to_end(&mut data)
            .map_err(|e| format!("cannot read: {e}"))?;
        let mut ends = Vec::with_capacity(LEGACY_PICKLES);
        let mut at = 0;
        for i in 0..LEGACY_PICKLES {
            at += scan(&data[at..])
                .map_err(|e| format!("legacy pickle {} at byte {at}: {e}", i + 1))?;
            ends.push(at);
        }
        Ok(Self { data, ends })
    }

    /// Unpickles pickle `i` (from 0).
    fn parse(
        &self,
        i: usize,
        resolve: &mut dyn FnMut(&Storage) -> Result<(), String>,
    ) -> Result<Value, String> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        unpickle(&self.data[start..self.ends[i]], resolve)
            .map(|(v, _)| v)
            .map_err(|e| format!("legacy pickle {} at byte {start}: {e}", i + 1))
    }

    /// The magic number (already seen by [`load`]), protocol 1001, and a little-endian
    /// system.
    fn check_preamble(&self) -> Result<(), String> {
        self.parse(0, &mut no_storage)?;
        if !matches!(self.parse(1, &mut no_storage)?, Value::Int(1001)) {
            return Err("legacy protocol version is not 1001".into());
        }
        if let Value::Dict(info) = self.parse(2, &mut no_storage)? {
            if matches!(info.get("little_endian"), Some(Value::Bool(false))) {
                return Err("the checkpoint was saved big-endian, which is not supported".into());
            }
        }
        Ok(())
    }

    /// The file offset of the first storage.
    fn storages_start(&self) -> u64 {
        self.ends[LEGACY_PICKLES - 1] as u64
    }
}

/// The resolver of the header pickles other than the object: none may name a storage.
fn no_storage(_: &Storage) -> Result<(), String> {
    Err("a legacy header pickle names a storage".into())
}

fn load_legacy(file: &mut File, file_len: u64) -> Result<Loaded, String> {
    let header = LegacyHeader::read(file, file_len)?;
    header.check_preamble()?;
    // Storage key -> (elements, bytes), as the object's persistent ids declare them.
    let mut declared: HashMap<String, (u64, u64)> = HashMap::new();
    let mut declare = |s: &Storage| -> Result<(), String> {
        let bytes = s
            .numel
            .checked_mul(s.dtype.size())
            .filter(|&b| b <= file_len)
            .ok_or_else(|| {
                format!(
                    "storage {} declares {} {:?} elements, more than the file holds",
                    s.key, s.numel, s.dtype
                )
            })?;
        declared.insert(s.key.clone(), (s.numel, bytes));
        Ok(())
    };
    let root = header.parse(3, &mut declare)?;
    let keys = match header.parse(4, &mut no_storage)? {
        Value::List(keys) => keys,
        other => {
            return Err(format!(
                "legacy storage key list is a {}",
                other.type_name()
            ))
        }
    };
    let regions = legacy_regions(file, file_len, header.storages_start(), &keys, &declared)?;
    Ok(Loaded { root, regions })
}

/// Each storage: its element count as an i64, then its bytes, in key-list order from
/// `offset`. Every listed storage must be declared, with that count, within the file, and
/// every declared one listed.
fn legacy_regions(
    file: &mut File,
    file_len: u64,
    mut offset: u64,
    keys: &[Value],
    declared: &HashMap<String, (u64, u64)>,
) -> Result<HashMap<String, Region>, String> {
    let mut regions = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err("legacy storage key is not a str".into());
        };
        let (numel, bytes) = *declared
            .get(&**key)
            .ok_or_else(|| format!("storage {key} is listed but never used"))?;
        let start = offset + 8;
        let end = start
            .checked_add(bytes)
            .filter(|&end| end <= file_len)
            .ok_or_else(|| {
                format!("storage {key} ({bytes} bytes) runs past the end of the file")
            })?;
        let mut count = [0u8; 8];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut count))
            .map_err(|e| format!("cannot read storage {key}: {e}"))?;
        if u64::from_le_bytes(count) != numel {
            return Err(format!(
                "storage {key} holds {} elements but the pickle declares {numel}",
                u64::from_le_bytes(count)
            ));
        }
        regions.insert(
            key.to_string(),
            Region {
                start,
                len: bytes,
                crc32: None,
            },
        );
        offset = end;
    }
    if let Some(key) = declared.keys().find(|k| !regions.contains_key(*k)) {
        return Err(format!("storage {key} is used but missing from the file"));
    }
    Ok(regions)
}

/// The tensor's bytes in row-major order (little-endian in the file, native here).
pub fn tensor_bytes(
    file: &mut File,
    t: &TensorRef,
    region: &Region,
    cache: &mut HashMap<String, Rc<Vec<u8>>>,
) -> Result<Vec<u8>, String> {
    let key = &t.storage.key;
    let storage = match cache.get(key) {
        Some(bytes) => bytes.clone(),
        None => {
            let mut bytes = vec![0u8; region.len as usize];
            file.seek(SeekFrom::Start(region.start))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(|e| format!("cannot read storage {key}: {e}"))?;
            if region.crc32.is_some_and(|crc| zip::crc32(&bytes) != crc) {
                return Err(format!("storage {key} fails its CRC-32 check"));
            }
            let bytes = Rc::new(bytes);
            cache.insert(key.clone(), bytes.clone());
            bytes
        }
    };
    let es = t.storage.dtype.size() as usize;
    // `extent` was checked against the storage's declared size, which equals the region;
    // checked again here so that no index below can leave the storage.
    if t.extent.saturating_mul(es as u64) > storage.len() as u64 {
        return Err(format!("the view reads past the end of storage {key}"));
    }
    let mut out = Vec::with_capacity(t.numel as usize * es);
    if is_contiguous(&t.shape, &t.stride) {
        let start = t.offset as usize * es;
        out.extend_from_slice(&storage[start..start + t.numel as usize * es]);
    } else {
        for i in 0..t.numel {
            let mut rest = i;
            let mut index = t.offset;
            for (&d, &s) in t.shape.iter().zip(&t.stride).rev() {
                index += (rest % d) * s;
                rest /= d;
            }
            let at = index as usize * es;
            out.extend_from_slice(&storage[at..at + es]);
        }
    }
    if cfg!(target_endian = "big") && es > 1 {
        out.chunks_exact_mut(es).for_each(<[u8]>::reverse);
    }
    if t.storage.dtype == Dtype::Bool {
        out.iter_mut().for_each(|b| *b = u8::from(*b != 0));
    }
    Ok(out)
}

fn is_contiguous(shape: &[u64], stride: &[u64]) -> bool {
    let mut expected = 1u64;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d > 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}
