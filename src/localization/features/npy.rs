//! NumPy `.npy` / `.npz` files, read with their size checked against their header: a truncated
//! or padded file is an error naming it. (tch's `read_npy` hands the bytes it found to libtorch
//! whatever the header's shape says, so a truncated file is read past its end.)

use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

/// Largest `.npz` member read (a feature clip is a few MB).
const MAX_MEMBER_BYTES: u64 = 1 << 32;

/// The array of a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse(&bytes)
}

/// The named arrays of a `.npz` file (`np.savez` or `np.savez_compressed`), in file order.
pub fn read_npz(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = member.name().to_string();
        if member.size() > MAX_MEMBER_BYTES {
            return Err(format!("member {name} is {} bytes", member.size()));
        }
        let mut bytes = Vec::with_capacity(member.size() as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| format!("member {name}: {e}"))?;
        let array = parse(&bytes).map_err(|e| format!("member {name}: {e}"))?;
        out.push((name.trim_end_matches(".npy").to_string(), array));
    }
    Ok(out)
}

/// The dtypes feature files hold.
fn kind(descr: &str) -> Option<(Kind, usize)> {
    Some(match descr {
        "<f4" => (Kind::Float, 4),
        "<f8" => (Kind::Double, 8),
        "<f2" => (Kind::Half, 2),
        "<i8" => (Kind::Int64, 8),
        "<i4" => (Kind::Int, 4),
        "|u1" => (Kind::Uint8, 1),
        _ => return None,
    })
}

/// The value of `'key': value` in a header dict, up to the next top-level comma.
fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = match rest.starts_with('(') {
        true => rest.find(')')? + 1,
        false => rest.find([',', '}'])?,
    };
    Some(rest[..end].trim())
}

/// An array from `.npy` bytes.
fn parse(bytes: &[u8]) -> Result<Tensor, String> {
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .ok_or("not a .npy array (no \\x93NUMPY magic)")?;
    let (len, start) = match rest.first() {
        Some(1) if rest.len() >= 4 => (u16::from_le_bytes([rest[2], rest[3]]) as usize, 10),
        Some(2 | 3) if rest.len() >= 6 => (
            u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]) as usize,
            12,
        ),
        _ => return Err("unknown .npy version".into()),
    };
    let header = bytes
        .get(start..start + len)
        .ok_or("the header runs past the end of the file")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let descr = field(header, "descr").ok_or("the header has no descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (kind, size) = kind(descr).ok_or(format!("dtype {descr} is not read"))?;
    if field(header, "fortran_order") != Some("False") {
        return Err("Fortran-ordered arrays are not read".into());
    }
    let shape: Vec<i64> = field(header, "shape")
        .ok_or("the header has no shape")?
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>().map_err(|_| format!("shape entry {s}")))
        .collect::<Result<_, _>>()?;
    let data = &bytes[start + len..];
    let want = shape
        .iter()
        .try_fold(size as u64, |n, &d| n.checked_mul(u64::try_from(d).ok()?))
        .ok_or("the shape overflows")?;
    if data.len() as u64 != want {
        return Err(format!(
            "{} bytes of data, but its header's shape {shape:?} of {descr} needs {want} \
             (truncated or corrupt)",
            data.len()
        ));
    }
    Tensor::f_from_data_size(data, &shape, kind).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(t: &Tensor) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        t.write_npy(&p).unwrap();
        std::fs::read(&p).unwrap()
    }

    #[test]
    fn arrays_round_trip_and_truncation_is_named() {
        let t = Tensor::arange(12, (Kind::Float, tch::Device::Cpu)).reshape([3, 4]);
        let bytes = written(&t);
        assert!(parse(&bytes).unwrap().equal(&t));
        let e = parse(&bytes[..bytes.len() - 4]).unwrap_err();
        assert!(
            e.contains("44 bytes of data") && e.contains("needs 48"),
            "{e}"
        );
        let mut padded = bytes.clone();
        padded.extend([0u8; 4]);
        assert!(parse(&padded).is_err());
        assert!(parse(b"\x93NUMPY").is_err());
        assert!(parse(b"PK\x03\x04").unwrap_err().contains("magic"));
    }

    #[test]
    fn npz_members_are_read_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npz");
        let a = Tensor::arange(6, (Kind::Float, tch::Device::Cpu)).reshape([2, 3]);
        let b = Tensor::ones([2, 5], (Kind::Float, tch::Device::Cpu));
        Tensor::write_npz(&[("verb_class", &a), ("noun_class", &b)], &p).unwrap();
        let got = read_npz(&p).unwrap();
        assert_eq!(got[0].0, "verb_class");
        assert!(got[0].1.equal(&a) && got[1].1.equal(&b));
        // A cut archive is refused, not read past its end.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(read_npz(&p).is_err());
    }
}
