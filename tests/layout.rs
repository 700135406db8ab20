//! The shape the code keeps (docs/architecture.md): short functions, a thin binary, and a
//! repository that explains itself — no citation of spec files it does not hold, nothing read
//! from a `shared/` folder beside the clone.

use std::path::{Path, PathBuf};

/// Longest non-test function allowed, in lines from its `fn` line to its closing brace.
const MAX_FN_LINES: usize = 80;
/// Longest `src/main.rs` allowed.
const MAX_MAIN_LINES: usize = 150;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Files that only `#[cfg(test)]` modules include.
fn is_test_file(p: &Path) -> bool {
    let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    name == "tests"
        || name.ends_with("_tests")
        || matches!(name, "test_support" | "test_util" | "update_reference")
}

/// `(name, lines)` of every function of a rustfmt'd file before its first `#[cfg(test)]`.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    let mut out = Vec::new();
    for (i, line) in lines[..end].iter().enumerate() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let rest = [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "unsafe ",
            "async ",
        ]
        .iter()
        .fold(body, |b, p| b.strip_prefix(p).unwrap_or(b));
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        let len = if line.trim_end().ends_with('}') {
            1
        } else {
            lines[i..end]
                .iter()
                .position(|l| *l == close)
                .map_or(end - i, |j| j + 1)
        };
        out.push((name, len));
    }
    out
}

#[test]
fn no_function_is_longer_than_a_screen() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("augment/src"), &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut long = Vec::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let text = std::fs::read_to_string(f).unwrap();
        for (name, len) in function_lengths(&text) {
            if len > MAX_FN_LINES {
                long.push(format!("{} {name}: {len} lines", f.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn function_lengths_are_measured_to_the_closing_brace() {
    let text = "fn a() {\n    1;\n}\n\nimpl X {\n    pub fn b(&self) -> u8 {\n        \
                if c {\n        }\n        2\n    }\n    fn d(&self);\n}\n";
    assert_eq!(
        function_lengths(text),
        [("a".to_string(), 3), ("b".to_string(), 5)]
    );
}

#[test]
fn the_binary_is_thin() {
    let main = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    let n = main.lines().count();
    assert!(n <= MAX_MAIN_LINES, "src/main.rs has {n} lines");
}

#[test]
fn the_repository_explains_itself() {
    let specs = [
        "TRAINING",
        "BACKBONES",
        "MOSI",
        "PARAMCROP",
        "TADACONV",
        "RESULTS",
    ]
    .map(|s| format!("{s}.md"));
    let shared = ["..", "shared"].join("/");
    let mut files = Vec::new();
    for dir in ["src", "augment/src", "augment/tests", "tests", "benches"] {
        rust_files(&root().join(dir), &mut files);
    }
    let this = root().join("tests/layout.rs");
    let mut found = Vec::new();
    for f in files.iter().filter(|f| **f != this) {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if specs.iter().any(|s| line.contains(s.as_str())) || line.contains(&shared) {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "cites files the repository lacks:\n{}",
        found.join("\n")
    );
}
