//! Reading annotation text: a UTF-8 BOM, CRLF line ends and blank lines are tolerated; every
//! line keeps its 1-based number for error messages.

use std::path::Path;

use crate::data::dataset::DatasetError;

pub fn read(path: &Path) -> Result<String, DatasetError> {
    let s = std::fs::read_to_string(path).map_err(|e| DatasetError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(s.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(s))
}

/// Non-blank lines, trimmed, with their 1-based numbers.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

pub fn parse_err(path: &Path, line: usize, reason: impl Into<String>) -> DatasetError {
    DatasetError::Parse {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}
