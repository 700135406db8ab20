//! Hostile and malformed checkpoints: each is refused with a clear error, never a panic,
//! and nothing in them is executed.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};
use tempfile::TempDir;

use crate::import::{arange, assert_same, data, import, import_err, raw, reference_pyth};

// ---------------------------------------------------------------------------------------------
// Hand-built zips and pickles
// ---------------------------------------------------------------------------------------------

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// One zip entry; `method` and `declared` (size in the directory) may lie.
struct Entry {
    name: String,
    data: Vec<u8>,
    method: u16,
    declared: Option<u32>,
}

fn entry(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.to_string(),
        data: data.to_vec(),
        method: 0,
        declared: None,
    }
}

/// A zip archive as torch.save writes it (stored entries, CRCs, no comment).
fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let size = e.declared.unwrap_or(e.data.len() as u32);
        let header = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend(20u16.to_le_bytes());
            }
            h.extend(20u16.to_le_bytes());
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(e.method.to_le_bytes());
            h.extend([0u8; 4]); // time, date
            h.extend(crc32(&e.data).to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend((e.name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend([0u8; 10]); // comment length, disk, attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(e.name.as_bytes());
            h
        };
        central.extend(header(0x0201_4b50, true));
        out.extend(header(0x0403_4b50, false));
        out.extend(&e.data);
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A torch-like archive: `archive/data.pkl`, `archive/byteorder`, and `archive/data/<key>`.
pub(crate) fn torch_zip(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut entries = vec![
        entry("archive/data.pkl", pickle),
        entry("archive/byteorder", b"little"),
    ];
    for (key, bytes) in storages {
        entries.push(entry(&format!("archive/data/{key}"), bytes));
    }
    entries.push(entry("archive/version", b"3\n"));
    zip(&entries)
}

/// The entries of a stored zip (read through its central directory).
fn unzip(bytes: &[u8]) -> Vec<Entry> {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let eocd = bytes.len() - 22;
    let (count, mut at) = (u16_at(eocd + 10), u32_at(eocd + 16));
    let mut entries = Vec::new();
    for _ in 0..count {
        let size = u32_at(at + 24);
        let (n, x, c) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let name = String::from_utf8(bytes[at + 46..at + 46 + n].to_vec()).unwrap();
        let local = u32_at(at + 42);
        let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        entries.push(entry(&name, &bytes[start..start + size]));
        at += 46 + n + x + c;
    }
    entries
}

/// Protocol-2 pickle pieces.
fn unicode(s: &str) -> Vec<u8> {
    let mut p = vec![b'X'];
    p.extend((s.len() as u32).to_le_bytes());
    p.extend(s.as_bytes());
    p
}

fn int(i: u64) -> Vec<u8> {
    if i < 256 {
        vec![b'K', i as u8]
    } else if i < 1 << 31 {
        let mut p = vec![b'J'];
        p.extend((i as u32).to_le_bytes());
        p
    } else {
        let mut p = vec![0x8a, 8];
        p.extend(i.to_le_bytes());
        p
    }
}

fn global(module: &str, name: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n").into_bytes()
}

fn ints(values: &[u64]) -> Vec<u8> {
    let mut p = vec![b'('];
    for &v in values {
        p.extend(int(v));
    }
    p.push(b't');
    p
}

/// `_rebuild_tensor_v2(storage(FloatStorage, key, numel), offset, shape, stride, False, OrderedDict())`
pub(crate) fn tensor(key: &str, numel: u64, offset: u64, shape: &[u64], stride: &[u64]) -> Vec<u8> {
    let mut p = global("torch._utils", "_rebuild_tensor_v2");
    p.extend(b"((");
    p.extend(unicode("storage"));
    p.extend(global("torch", "FloatStorage"));
    p.extend(unicode(key));
    p.extend(unicode("cpu"));
    p.extend(int(numel));
    p.extend(b"tQ");
    p.extend(int(offset));
    p.extend(ints(shape));
    p.extend(ints(stride));
    p.push(0x89);
    p.extend(global("collections", "OrderedDict"));
    p.extend(b")R");
    p.extend(b"tR");
    p
}

/// An OrderedDict state dict pickle from (name, value ops) pairs.
pub(crate) fn state_dict(items: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut p = b"\x80\x02".to_vec();
    p.extend(global("collections", "OrderedDict"));
    p.extend(b")R");
    for (name, value) in items {
        p.extend(unicode(name));
        p.extend(value);
        p.push(b's');
    }
    p.push(b'.');
    p
}

pub(crate) fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn hand_built_baseline_imports() {
    // Proves the builders above make valid checkpoints, so the hostile variants below fail
    // for the reason they target.
    let d = TempDir::new().unwrap();
    let pickle = state_dict(&[
        ("w", tensor("0", 4, 0, &[4], &[1])),
        ("t", tensor("1", 6, 0, &[3, 2], &[1, 3])),
    ]);
    let path = write(
        d.path(),
        "ok.pth",
        &torch_zip(
            &pickle,
            &[
                ("0", &floats(&[1.0, 2.0, 3.0, 4.0])),
                ("1", &floats(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])),
            ],
        ),
    );
    let ck = import(&path).unwrap();
    assert_same(
        "w",
        &ck.tensors[0].1,
        &Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]),
    );
    let t = arange(6, Kind::Float).reshape([2, 3]).tr().contiguous();
    assert_same("t", &ck.tensors[1].1, &t);
}

/// Hostile pickles that would run a command in Python; each must be refused by name, and
/// the command must not have run.
#[test]
fn foreign_globals_are_refused_by_name_and_never_run() {
    let d = TempDir::new().unwrap();
    let marker = d.path().join("executed");
    let cmd = format!("touch {}", marker.display());
    let w = ("w", tensor("0", 4, 0, &[4], &[1]));
    let storage: &[(&str, &[u8])] = &[("0", &[0u8; 16])];

    // GLOBAL os.system + REDUCE: os.system("touch …").
    let mut os_system = b"\x80\x02".to_vec();
    os_system.extend(global("os", "system"));
    os_system.extend(unicode(&cmd));
    os_system.extend(b"\x85R.");
    // STACK_GLOBAL builtins.eval (protocol 4).
    let expr = format!("__import__('os').system('{cmd}')");
    let mut eval = b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93".to_vec();
    eval.extend(unicode(&expr));
    eval.extend(b"\x85R.");
    // A REDUCE on subprocess.Popen hidden inside an otherwise valid state dict.
    let mut popen = global("subprocess", "Popen");
    popen.push(b'(');
    popen.extend(unicode("touch"));
    popen.extend(unicode(&marker.display().to_string()));
    popen.extend(b"l\x85R");
    let hidden = state_dict(&[w.clone(), ("x", popen)]);
    // INST names a global too.
    let mut inst = b"\x80\x02(".to_vec();
    inst.extend(b"iposix\nsystem\n");
    inst.push(b'.');
    // A torch global that is not a tensor rebuilder.
    let mut torch_load = b"\x80\x02".to_vec();
    torch_load.extend(global("torch", "load"));
    torch_load.push(b'.');

    for (case, pickle, needle) in [
        ("os_system", os_system, "forbidden global os.system"),
        ("eval", eval, "forbidden global builtins.eval"),
        ("popen", hidden, "forbidden global subprocess.Popen"),
        ("inst", inst, "forbidden global posix.system"),
        ("torch_load", torch_load, "forbidden global torch.load"),
    ] {
        let path = write(
            d.path(),
            &format!("{case}.pth"),
            &torch_zip(&pickle, storage),
        );
        let e = import_err(&path);
        assert!(e.contains(needle), "{case}: {e}");
        assert!(!marker.exists(), "{case}: the payload ran");
    }
}

#[test]
fn object_building_without_a_named_global_is_refused() {
    let d = TempDir::new().unwrap();
    let cases: &[(&str, &[u8], &str)] = &[
        // STACK_GLOBAL operands that the scan cannot see as literals (DUP then POP).
        (
            "dup",
            b"\x80\x04\x8c\x02os\x8c\x06system2\x30\x93.",
            "not string literals",
        ),
        (
            "newobj",
            b"\x80\x02ccollections\nOrderedDict\n)\x81.",
            "NEWOBJ",
        ),
        ("ext", b"\x80\x02\x82\x01.", "EXT1"),
        ("persid", b"\x80\x02P0\n.", "PERSID"),
        ("buffer", b"\x80\x05\x97.", "NEXT_BUFFER"),
    ];
    for (case, pickle, needle) in cases {
        let path = write(d.path(), &format!("{case}.pth"), &torch_zip(pickle, &[]));
        let e = import_err(&path);
        assert!(e.contains(needle), "{case}: {e}");
    }
}

#[test]
fn sizes_are_checked_against_the_file() {
    let d = TempDir::new().unwrap();
    let four = floats(&[1.0, 2.0, 3.0, 4.0]);
    let big = vec![0u8; 4000];
    let many: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("v{i}"), tensor("0", 1000, 0, &[1000], &[1])))
        .collect();
    let many: Vec<(&str, Vec<u8>)> = many.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let cases: Vec<(&str, Vec<u8>, &[u8], &str)> = vec![
        (
            "absurd_storage",
            state_dict(&[("w", tensor("0", 1_000_000_000_000_000, 0, &[4], &[1]))]),
            &four,
            "declares 1000000000000000 F32 elements but its zip entry holds 16 bytes",
        ),
        (
            "absurd_tensor",
            state_dict(&[("w", tensor("0", 4, 0, &[1 << 50], &[1]))]),
            &four,
            "which holds 4",
        ),
        (
            "shape_past_storage",
            state_dict(&[("w", tensor("0", 4, 0, &[5], &[1]))]),
            &four,
            "reads 5 elements of storage 0, which holds 4",
        ),
        (
            "offset_past_storage",
            state_dict(&[("w", tensor("0", 4, 2, &[3], &[1]))]),
            &four,
            "reads 5 elements",
        ),
        (
            "stride_past_storage",
            state_dict(&[("w", tensor("0", 4, 0, &[2, 2], &[3, 1]))]),
            &four,
            "reads 5 elements",
        ),
        (
            "overflow",
            state_dict(&[("w", tensor("0", 4, 0, &[1 << 40, 1 << 40], &[0, 0]))]),
            &four,
            "overflows",
        ),
        (
            "broadcast_bomb",
            state_dict(&[("w", tensor("0", 4, 0, &[1 << 30], &[0]))]),
            &four,
            "more than the whole file",
        ),
        (
            "many_views",
            state_dict(&many),
            &big,
            "more than 4 times the file's size",
        ),
        (
            "missing_storage",
            state_dict(&[("w", tensor("7", 4, 0, &[4], &[1]))]),
            &four,
            "storage 7 has no zip entry archive/data/7",
        ),
    ];
    for (case, pickle, bytes, needle) in cases {
        let path = write(
            d.path(),
            &format!("{case}.pth"),
            &torch_zip(&pickle, &[("0", bytes)]),
        );
        let e = import_err(&path);
        assert!(e.contains(needle), "{case}: {e}");
    }
}

#[test]
fn zip_bombs_and_lying_directories_are_refused() {
    let d = TempDir::new().unwrap();
    let pickle = state_dict(&[("w", tensor("0", 4, 0, &[4], &[1]))]);
    let four = floats(&[1.0, 2.0, 3.0, 4.0]);
    let with = |declared: Option<u32>, method: u16| {
        zip(&[
            entry("archive/data.pkl", &pickle),
            Entry {
                name: "archive/data/0".into(),
                data: four.clone(),
                method,
                declared,
            },
        ])
    };
    let mut trailing = torch_zip(&pickle, &[("0", &four)]);
    trailing.extend(b"junk");
    let mut duplicate = vec![entry("archive/data.pkl", &pickle)];
    duplicate.push(entry("archive/data/0", &four));
    duplicate.push(entry("archive/data/0", &four));
    let mut two_pickles = vec![entry("archive/data.pkl", &pickle)];
    two_pickles.push(entry("data.pkl", &pickle));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge_declared",
            with(Some(u32::MAX - 1), 0),
            "more than the archive holds",
        ),
        ("deflate", with(None, 8), "is compressed (method 8)"),
        (
            "trailing",
            trailing,
            "no end-of-directory record at its end",
        ),
        ("duplicate", zip(&duplicate), "appears twice"),
        ("two_pickles", zip(&two_pickles), "more than one data.pkl"),
        ("no_pickle", zip(&[entry("archive/x", b"")]), "no data.pkl"),
        (
            "not_torch",
            b"just some text".to_vec(),
            "not a torch.save checkpoint",
        ),
        ("empty", Vec::new(), "not a torch.save checkpoint"),
    ];
    for (case, bytes, needle) in cases {
        let path = write(d.path(), &format!("{case}.pth"), &bytes);
        let e = import_err(&path);
        assert!(e.contains(needle), "{case}: {e}");
    }
}

#[test]
fn deep_nesting_and_memo_bombs_are_bounded() {
    let d = TempDir::new().unwrap();
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(std::iter::repeat_n(b'a', 99_999));
    deep.push(b'.');
    let mut bomb = b"\x80\x02(".to_vec();
    bomb.extend(std::iter::repeat_n(b'N', 10_000));
    bomb.extend(b"lq\x00");
    for _ in 0..10_000 {
        bomb.extend(b"h\x00Na0");
    }
    bomb.push(b'.');
    for (case, pickle, needle) in [
        ("deep", deep, "nest deeper than 100"),
        ("bomb", bomb, "copies of shared containers exceed"),
    ] {
        let path = write(d.path(), &format!("{case}.pth"), &torch_zip(&pickle, &[]));
        let e = import_err(&path);
        assert!(e.contains(needle), "{case}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged files: truncations and byte flips
// ---------------------------------------------------------------------------------------------

/// xorshift64*: a fixed, dependency-free stream of positions and values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn truncated_reference_checkpoint_fails_cleanly() {
    let bytes = std::fs::read(reference_pyth()).unwrap();
    let len = bytes.len();
    let d = TempDir::new().unwrap();
    let mut cuts: Vec<usize> = (0..64).map(|i| len * i / 64).collect();
    cuts.extend([
        len - 1,
        len - 2,
        len - 21,
        len - 22,
        len - 23,
        len - 100,
        len - 5000,
    ]);
    for cut in cuts {
        let path = write(d.path(), "cut.pyth", &bytes[..cut]);
        import_err(&path);
    }
}

#[test]
fn truncated_small_files_fail_cleanly_at_every_offset() {
    let d = TempDir::new().unwrap();
    for name in ["plain_state_dict.pth", "legacy_state_dict.pth"] {
        let bytes = std::fs::read(data(name)).unwrap();
        for cut in 0..bytes.len() {
            let path = write(d.path(), name, &bytes[..cut]);
            import_err(&path);
        }
    }
    // The pickle itself cut short inside an otherwise valid archive (CRCs recomputed).
    let entries = unzip(&std::fs::read(data("plain_state_dict.pth")).unwrap());
    let pickle = entries[0].data.clone();
    assert!(entries[0].name.ends_with("data.pkl"));
    for cut in 0..pickle.len() {
        let mut e = unzip(&std::fs::read(data("plain_state_dict.pth")).unwrap());
        e[0].data.truncate(cut);
        let path = write(d.path(), "cut_pickle.pth", &zip(&e));
        import_err(&path);
    }
}

/// A few hundred seeded byte flips in the reference checkpoint: each must fail cleanly or, if
/// it hit bytes that carry no meaning (padding, unused optimiser state), import unchanged.
#[test]
fn byte_flips_in_the_reference_checkpoint_fail_cleanly_or_change_nothing() {
    let original = import(&reference_pyth()).unwrap();
    let bytes = std::fs::read(reference_pyth()).unwrap();
    let len = bytes.len() as u64;
    let d = TempDir::new().unwrap();
    let path = write(d.path(), "flip.pyth", &bytes);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let pickle_end = 43_087 + 200; // data.pkl is the first entry
    let mut rng = Rng(0x7ada_5eed);
    let (mut failed, mut unchanged) = (0, 0);
    for i in 0..300u64 {
        let pos = match i % 3 {
            0 => rng.below(len),
            1 => rng.below(pickle_end),
            _ => len - 1 - rng.below(40_000),
        };
        let old = bytes[pos as usize];
        let new = old ^ (1 + rng.below(255) as u8);
        file.write_all_at(&[new], pos).unwrap();
        match import(&path) {
            Err(e) => {
                let m = e.to_string();
                assert!(!m.contains('\n') && m.contains("flip.pyth"), "{m}");
                failed += 1;
            }
            Ok(ck) => {
                assert_eq!(ck.tensors.len(), original.tensors.len(), "flip at {pos}");
                for ((n1, t1), (n2, t2)) in ck.tensors.iter().zip(&original.tensors) {
                    assert_eq!(n1, n2, "flip at {pos}");
                    assert!(raw(t1) == raw(t2), "flip at {pos} changed {n1}");
                }
                assert_eq!((ck.epoch, &ck.cfg), (original.epoch, &original.cfg));
                unchanged += 1;
            }
        }
        file.write_all_at(&[old], pos).unwrap();
    }
    assert!(
        failed > 100,
        "only {failed} of 300 flips were caught ({unchanged} harmless)"
    );
}

/// Every byte of a real pickle flipped, with the archive's CRC recomputed so that the flip
/// reaches the pickle reader: never a panic; errors are one line naming the file.
#[test]
fn byte_flips_inside_a_pickle_never_panic() {
    let d = TempDir::new().unwrap();
    let mut rng = Rng(42);
    for name in ["plain_state_dict.pth", "protocol4_state_dict.pth"] {
        let entries = unzip(&std::fs::read(data(name)).unwrap());
        for (pos, &byte) in entries[0].data.iter().enumerate() {
            for value in [byte ^ 0xFF, rng.next() as u8] {
                let mut e = unzip(&std::fs::read(data(name)).unwrap());
                e[0].data[pos] = value;
                let path = write(d.path(), name, &zip(&e));
                if let Err(e) = import(&path) {
                    let m = e.to_string();
                    assert!(!m.contains('\n') && m.contains(name), "{m}");
                }
            }
        }
    }
}
