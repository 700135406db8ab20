//! Checks of a command's output path, made before anything is read or computed, so that a
//! long run never ends in "cannot write" and an output never replaces its own input, a
//! symbolic link or a device node (the atomic writer renames over whatever the path names).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why an output path is refused.
#[derive(Debug, thiserror::Error)]
pub enum OutputPathError {
    #[error("refusing to write {output}: it is the input {input}; choose another output path")]
    SameAsInput { output: PathBuf, input: PathBuf },
    #[error(
        "refusing to write {path}: it is a symbolic link; name the file itself or another path"
    )]
    Symlink { path: PathBuf },
    #[error("refusing to write {path}: it is {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("cannot write {path}: {dir} is not a folder")]
    NotAFolder { path: PathBuf, dir: PathBuf },
    #[error("cannot write {path}: folder {dir} does not exist")]
    NoFolder { path: PathBuf, dir: PathBuf },
    #[error("cannot write {path}: folder {dir} is not writable: {source}")]
    NotWritable {
        path: PathBuf,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("cannot check output {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// What an existing path is, in words, when it is not a regular file.
fn kind_of(ft: &fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        None
    } else if ft.is_symlink() {
        Some("a symbolic link")
    } else if ft.is_dir() {
        Some("a folder")
    } else if ft.is_char_device() || ft.is_block_device() {
        Some("a device")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// The folder a file path lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks that the file `output` may be written: it is absent or a regular file that is none
/// of `inputs` (compared by device and inode, so links and other spellings count), and its
/// folder exists and takes a new file (a probe file is created and removed there, as the
/// atomic writer will).
pub fn check_output_file(output: &Path, inputs: &[&Path]) -> Result<(), OutputPathError> {
    match fs::symlink_metadata(output) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(OutputPathError::Symlink {
                path: output.to_path_buf(),
            })
        }
        Ok(m) => {
            if let Some(kind) = kind_of(&m.file_type()) {
                return Err(OutputPathError::NotAFile {
                    path: output.to_path_buf(),
                    kind,
                });
            }
            for input in inputs {
                // An input that cannot be read fails later, where it is read.
                if let Ok(i) = fs::metadata(input) {
                    if (i.dev(), i.ino()) == (m.dev(), m.ino()) {
                        return Err(OutputPathError::SameAsInput {
                            output: output.to_path_buf(),
                            input: input.to_path_buf(),
                        });
                    }
                }
            }
        }
        // Under a file rather than a folder: said below, about the folder.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) => {}
        Err(source) => {
            return Err(OutputPathError::Io {
                path: output.to_path_buf(),
                source,
            })
        }
    }
    let dir = parent_of(output);
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => probe(output, &dir),
        Ok(_) => Err(OutputPathError::NotAFolder {
            path: output.to_path_buf(),
            dir,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(OutputPathError::NoFolder {
            path: output.to_path_buf(),
            dir,
        }),
        Err(source) => Err(OutputPathError::Io { path: dir, source }),
    }
}

/// Checks that files can be written into the folder `dir`: it is a folder (a link to one is
/// fine: writing into it replaces nothing) that takes a new file, or it does not exist yet and
/// its nearest existing ancestor is such a folder. `files` are names the command writes there,
/// each checked like [`check_output_file`] against `inputs` when the folder exists.
pub fn check_output_dir(
    dir: &Path,
    files: &[&str],
    inputs: &[&Path],
) -> Result<(), OutputPathError> {
    let mut probe_dir = dir.to_path_buf();
    loop {
        match fs::metadata(&probe_dir) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(OutputPathError::NotAFolder {
                    path: dir.to_path_buf(),
                    dir: probe_dir,
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                // A dangling link stays a link: creating the folder would fail on it later.
                if fs::symlink_metadata(&probe_dir).is_ok() {
                    return Err(OutputPathError::Symlink { path: probe_dir });
                }
                probe_dir = parent_of(&probe_dir);
            }
            Err(source) => {
                return Err(OutputPathError::Io {
                    path: probe_dir,
                    source,
                })
            }
        }
    }
    if probe_dir != dir {
        return probe(dir, &probe_dir);
    }
    for name in files {
        check_output_file(&dir.join(name), inputs)?;
    }
    probe(dir, dir)
}

/// Creates and removes a probe file in `dir`: permission bits say little for root or on
/// read-only mounts, an actual create says it all.
fn probe(path: &Path, dir: &Path) -> Result<(), OutputPathError> {
    let probe = dir.join(format!(".tada-write-probe-{}", std::process::id()));
    let not_writable = |source| OutputPathError::NotWritable {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    };
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(not_writable)?;
    fs::remove_file(&probe).map_err(not_writable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_links_devices_and_missing_folders_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.pth");
        fs::write(&input, b"x").unwrap();
        let out = d.path().join("out.safetensors");
        check_output_file(&out, &[&input]).unwrap();
        fs::write(&out, b"old").unwrap();
        check_output_file(&out, &[&input]).unwrap();

        let e = check_output_file(&input, &[&input]).unwrap_err();
        assert!(matches!(e, OutputPathError::SameAsInput { .. }), "{e}");
        // The same file under another name.
        let alias = d.path().join(".").join("in.pth");
        let e = check_output_file(&alias, &[&input]).unwrap_err();
        assert!(matches!(e, OutputPathError::SameAsInput { .. }), "{e}");
        let hard = d.path().join("hard.pth");
        fs::hard_link(&input, &hard).unwrap();
        assert!(check_output_file(&hard, &[&input]).is_err());

        let link = d.path().join("link");
        std::os::unix::fs::symlink(&out, &link).unwrap();
        let e = check_output_file(&link, &[]).unwrap_err();
        assert!(matches!(e, OutputPathError::Symlink { .. }), "{e}");

        let e = check_output_file(d.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        let e = check_output_file(Path::new("/dev/null"), &[]).unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");

        let e = check_output_file(&d.path().join("no/such/x"), &[]).unwrap_err();
        assert!(matches!(e, OutputPathError::NoFolder { .. }), "{e}");
        let e = check_output_file(&input.join("x"), &[]).unwrap_err();
        assert!(matches!(e, OutputPathError::NotAFolder { .. }), "{e}");
        // No probe file is left behind.
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn output_folders_may_be_new_but_not_files() {
        let d = tempfile::tempdir().unwrap();
        check_output_dir(d.path(), &[], &[]).unwrap();
        check_output_dir(&d.path().join("a/b/c"), &["crops.json"], &[]).unwrap();
        let f = d.path().join("f");
        fs::write(&f, b"x").unwrap();
        let e = check_output_dir(&f, &[], &[]).unwrap_err();
        assert!(matches!(e, OutputPathError::NotAFolder { .. }), "{e}");
        assert!(check_output_dir(&f.join("sub"), &[], &[]).is_err());
        // An input the command would overwrite in the folder.
        let e = check_output_dir(d.path(), &["f"], &[&f]).unwrap_err();
        assert!(matches!(e, OutputPathError::SameAsInput { .. }), "{e}");
        check_output_dir(d.path(), &["g"], &[&f]).unwrap();
    }
}
