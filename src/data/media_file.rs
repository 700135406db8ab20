//! Opening the files a dataset names, as a long unattended run needs: only regular files, and
//! never more bytes than a bound.
//!
//! A dataset folder can hold anything a user's tools left there: a FIFO named `frame_0001.jpg`
//! (opening it blocks forever, deaf to SIGINT), a symlink to `/dev/zero` named `.jpg` (reading
//! it never ends and fills memory), a socket or a directory with a media extension. Every read of
//! dataset media goes through [`check_regular`] or [`read_bounded`], which refuse those with a
//! one-line reason instead of hanging, and cap what is read even if a file grows while it is read.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest image file read into memory (a 16k x 16k PNG is about 1 GiB raw; compressed files of a
/// dataset are far below this).
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;

/// Why a dataset file was not opened.
#[derive(Debug, thiserror::Error)]
pub enum MediaFileError {
    #[error("{}: missing", path.display())]
    Missing { path: PathBuf },
    #[error("{}: is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: {size} bytes, more than the {max} bytes a media file may have", path.display())]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl MediaFileError {
    pub fn path(&self) -> &Path {
        match self {
            Self::Missing { path }
            | Self::NotRegular { path, .. }
            | Self::TooLarge { path, .. }
            | Self::Io { path, .. } => path,
        }
    }
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Opens `path` for reading if it is (or links to) a regular file of at most `max_bytes` bytes;
/// returns the file and its size. Opening never blocks: a FIFO is opened non-blocking and then
/// refused.
pub fn open_regular(path: &Path, max_bytes: Option<u64>) -> Result<(File, u64), MediaFileError> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => MediaFileError::Missing {
            path: path.to_path_buf(),
        },
        _ => MediaFileError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    // Refuse by type before opening: opening some devices has effects of its own.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(MediaFileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    // The path may have been swapped between the two looks; the open handle is what counts.
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(MediaFileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    let size = meta.len();
    if let Some(max) = max_bytes.filter(|&m| size > m) {
        return Err(MediaFileError::TooLarge {
            path: path.to_path_buf(),
            size,
            max,
        });
    }
    Ok((file, size))
}

/// Checks that `path` is (or links to) a regular file of at most `max_bytes` bytes, for readers
/// that open the file themselves (FFmpeg). Returns its size.
pub fn check_regular(path: &Path, max_bytes: Option<u64>) -> Result<u64, MediaFileError> {
    open_regular(path, max_bytes).map(|(_, size)| size)
}

/// Reads the whole of `path` if it is a regular file of at most `max_bytes` bytes; a file that
/// grows past the bound while being read is refused too.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, MediaFileError> {
    let (file, size) = open_regular(path, Some(max_bytes))?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| MediaFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(MediaFileError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max: max_bytes,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_bounded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jpg");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        let e = read_bounded(&p, 4).unwrap_err();
        assert!(matches!(e, MediaFileError::TooLarge { size: 5, .. }), "{e}");
        assert!(matches!(
            read_bounded(&d.path().join("none.jpg"), 9).unwrap_err(),
            MediaFileError::Missing { .. }
        ));
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("frame_0001.jpg");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = read_bounded(&fifo, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let zero = d.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_bounded(&zero, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let dir = d.path().join("dir.jpg");
        std::fs::create_dir(&dir).unwrap();
        assert!(check_regular(&dir, None)
            .unwrap_err()
            .to_string()
            .contains("directory"));
    }
}
