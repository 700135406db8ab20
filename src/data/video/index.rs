//! A key-frame index per video file, built once by reading the file's packets (demuxing only,
//! nothing decoded) and cached on disk, so that a read of several clips knows where the key
//! frames are: it seeks to the key frame before each stretch of wanted frames instead of
//! decoding through frames nobody asked for (`ffmpeg.rs`).
//!
//! The cache lives in a cache folder, never beside the dataset: a folder such as
//! `Class1/.tada-index/` inside a dataset could be listed as a video or a class. It is
//! `$TADA_INDEX_DIR`, else `$XDG_CACHE_HOME/tada/index`, else `$HOME/.cache/tada/index`, else
//! `<temp>/tada-index`. One file per video, named by a hash of its canonical path, holding the
//! path, size and modification time it was built from and a checksum: an index whose file has
//! changed (stale) or that does not parse or check (corrupt, cut short) is rebuilt, never
//! trusted. Files are written atomically (`atomic_write.rs`). When the folder cannot be written
//! the index is built and used in memory only. An index only ever saves work: every read still
//! checks the frames it decodes (`ffmpeg.rs`), so even a wrong index cannot change a frame.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Format tag on the first line of an index file; a file of another version is rebuilt.
const MAGIC: &str = "tada-keyframe-index 1";

/// Indices kept in memory at most; beyond it the memory cache starts afresh (each entry is a
/// few numbers, so this bounds it to a few MB).
const MEMORY_ENTRIES: usize = 200_000;

/// Where the key frames of one file's video stream are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyframeIndex {
    /// The stream indexed (FFmpeg's stream number).
    pub stream: usize,
    /// Presentation timestamps of its key frames, in stream units, ascending.
    pub keyframes: Vec<i64>,
    /// Packets of the stream (about its frame count; informative only).
    pub packets: usize,
}

/// What identifies the file an index was built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileKey {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
}

impl FileKey {
    fn of(path: &Path) -> Option<Self> {
        let path = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        let mtime = meta.modified().ok()?;
        let mtime_ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Some(Self {
            path,
            size: meta.len(),
            mtime_ns,
        })
    }
}

/// FNV-1a, 64 bits: names cache files and checks their contents (not a security boundary:
/// the index is only a hint, see the module comment).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The folder set by [`set_cache_dir`], which wins over the environment.
static CHOSEN_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Keeps this process's index files in `dir` (the first call wins): what tests use so that
/// indices of their temporary videos stay out of the user's cache, without touching the
/// environment of a running process.
pub fn set_cache_dir(dir: PathBuf) {
    let _ = CHOSEN_DIR.set(dir);
}

/// The folder index files go to.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = CHOSEN_DIR.get() {
        return d.clone();
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("TADA_INDEX_DIR") {
        return d;
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return d.join("tada").join("index");
    }
    if let Some(d) = env("HOME") {
        return d.join(".cache").join("tada").join("index");
    }
    std::env::temp_dir().join("tada-index")
}

/// The index file of `key` in `dir`.
fn file_for(dir: &Path, key: &FileKey) -> PathBuf {
    let name = key
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The name helps a person browsing the folder; the hash makes it unique.
    let short: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .take(32)
        .collect();
    let hash = fnv(key.path.to_string_lossy().as_bytes());
    dir.join(format!("{hash:016x}-{short}.kfi"))
}

fn serialise(key: &FileKey, index: &KeyframeIndex) -> String {
    let kf: Vec<String> = index.keyframes.iter().map(i64::to_string).collect();
    let body = format!(
        "{MAGIC}\npath {}\nsize {}\nmtime_ns {}\nstream {}\npackets {}\nkeyframes {}\n",
        key.path.to_string_lossy(),
        key.size,
        key.mtime_ns,
        index.stream,
        index.packets,
        kf.join(" ")
    );
    let check = fnv(body.as_bytes());
    format!("{body}check {check:016x}\n")
}

/// The index in `text` if it parses, checks, and was built from `key`'s file as it is now.
fn parse(text: &str, key: &FileKey) -> Option<KeyframeIndex> {
    let (body, check) = text.strip_suffix('\n')?.rsplit_once('\n')?;
    let body = format!("{body}\n");
    let check = u64::from_str_radix(check.strip_prefix("check ")?, 16).ok()?;
    if check != fnv(body.as_bytes()) {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ');
    let path = field("path")?;
    let size = field("size")?.parse().ok()?;
    let mtime_ns = field("mtime_ns")?.parse().ok()?;
    let built_from = FileKey {
        path: PathBuf::from(path),
        size,
        mtime_ns,
    };
    if built_from != *key {
        return None;
    }
    let stream = field("stream")?.parse().ok()?;
    let packets = field("packets")?.parse().ok()?;
    let keyframes: Vec<i64> = field("keyframes")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    keyframes.windows(2).all(|w| w[0] < w[1]).then_some(())?;
    Some(KeyframeIndex {
        stream,
        keyframes,
        packets,
    })
}

/// How an index was obtained (tests and `tada data check --index` report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Kept in memory from an earlier read in this process.
    Memory,
    /// Read from its cache file.
    Disk,
    /// Built now (none cached, or the cached one was stale or corrupt); `saved` says whether
    /// the cache file could be written.
    Built { saved: bool },
}

type Memory = Mutex<HashMap<FileKey, Arc<KeyframeIndex>>>;

fn memory() -> &'static Memory {
    static MEMORY: std::sync::OnceLock<Memory> = std::sync::OnceLock::new();
    MEMORY.get_or_init(Default::default)
}

/// Serialises writes of index files within this process: [`crate::atomic_write`]'s temporary
/// name is per process, so two threads indexing one file must not write at once.
static WRITING: Mutex<()> = Mutex::new(());

/// The key-frame index of `path`'s stream `stream`: from memory, from the cache folder, or
/// built by `build` (and then cached). `None` when the file cannot be identified (gone) or
/// `build` fails: the read then goes on without an index.
pub fn keyframes(
    path: &Path,
    stream: usize,
    build: impl FnOnce() -> Option<KeyframeIndex>,
) -> Option<(Arc<KeyframeIndex>, Found)> {
    keyframes_in(&cache_dir(), path, stream, build)
}

/// [`keyframes`] with its cache folder `dir`.
pub fn keyframes_in(
    dir: &Path,
    path: &Path,
    stream: usize,
    build: impl FnOnce() -> Option<KeyframeIndex>,
) -> Option<(Arc<KeyframeIndex>, Found)> {
    let key = FileKey::of(path)?;
    let kept = memory().lock().ok().and_then(|m| m.get(&key).cloned());
    if let Some(index) = kept.filter(|i| i.stream == stream) {
        return Some((index, Found::Memory));
    }
    let file = file_for(dir, &key);
    let cached = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| parse(&text, &key))
        .filter(|i| i.stream == stream);
    let (index, found) = match cached {
        Some(index) => (index, Found::Disk),
        None => {
            let index = build()?;
            let saved = save(dir, &file, &key, &index);
            (index, Found::Built { saved })
        }
    };
    let index = Arc::new(index);
    if let Ok(mut m) = memory().lock() {
        if m.len() >= MEMORY_ENTRIES {
            m.clear();
        }
        m.insert(key, index.clone());
    }
    Some((index, found))
}

fn save(dir: &Path, file: &Path, key: &FileKey, index: &KeyframeIndex) -> bool {
    let text = serialise(key, index);
    let _guard = WRITING.lock();
    std::fs::create_dir_all(dir).is_ok()
        && crate::atomic_write::write(file, text.as_bytes()).is_ok()
}

/// Forgets the indices kept in memory (tests: the next read goes to the cache folder).
pub fn forget_in_memory() {
    if let Ok(mut m) = memory().lock() {
        m.clear();
    }
}

/// The file `path`'s index is (or would be) kept in, in the cache folder `dir`.
pub fn index_file(dir: &Path, path: &Path) -> Option<PathBuf> {
    FileKey::of(path).map(|k| file_for(dir, &k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FileKey {
        FileKey {
            path: "/data/v.mp4".into(),
            size: 1234,
            mtime_ns: 99,
        }
    }

    fn index() -> KeyframeIndex {
        KeyframeIndex {
            stream: 0,
            keyframes: vec![0, 12800, 92672],
            packets: 250,
        }
    }

    #[test]
    fn an_index_reads_back_only_for_its_own_file_and_intact() {
        let text = serialise(&key(), &index());
        assert_eq!(parse(&text, &key()), Some(index()));
        // Stale: the file changed size or time since.
        let bigger = FileKey {
            size: 1235,
            ..key()
        };
        assert_eq!(parse(&text, &bigger), None);
        let touched = FileKey {
            mtime_ns: 100,
            ..key()
        };
        assert_eq!(parse(&text, &touched), None);
        // Corrupt: any byte changed, or cut short.
        let flipped = text.replacen("12800", "12801", 1);
        assert_eq!(parse(&flipped, &key()), None);
        assert_eq!(parse(&text[..text.len() - 5], &key()), None);
        assert_eq!(parse("", &key()), None);
    }
}
