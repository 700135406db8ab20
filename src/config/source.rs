//! Where each config value came from, so errors can name the file (or `--set`) at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The origin of one config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Override(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "the built-in defaults"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Override(arg) => write!(f, "--set {arg}"),
        }
    }
}

/// Dotted key path (e.g. `OPTIMIZER.BASE_LR`) -> origin of the value at that path.
#[derive(Debug, Clone, Default)]
pub struct Sources(BTreeMap<String, Source>);

impl Sources {
    /// Records that `key` (and everything under it) now comes from `source`.
    pub fn set(&mut self, key: &str, source: Source) {
        let prefix = format!("{key}.");
        self.0.retain(|k, _| !k.starts_with(&prefix));
        self.0.insert(key.to_string(), source);
    }

    /// Overlays `other` on `self`: other's entries win.
    pub fn overlay(&mut self, other: Sources) {
        for (k, v) in other.0 {
            self.set(&k, v);
        }
    }

    /// The origin of `key`, looking at its enclosing keys when the key itself was not recorded
    /// (a list element, or a section replaced as a whole).
    pub fn of(&self, key: &str) -> Source {
        // `DATA.MEAN[0]` (a list element) belongs to `DATA.MEAN`.
        let mut k = key.split('[').next().unwrap_or(key);
        loop {
            if let Some(s) = self.0.get(k) {
                return s.clone();
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => return Source::Default,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_of_nested_and_list_keys() {
        let mut s = Sources::default();
        s.set("DATA.MEAN", Source::File("a.yaml".into()));
        s.set("DATA", Source::File("b.yaml".into()));
        assert_eq!(
            s.of("DATA.MEAN[1]"),
            Source::File("b.yaml".into()),
            "a section replaced whole"
        );
        s.set("DATA.STD", Source::Override("DATA.STD=[1,1,1]".into()));
        assert_eq!(
            s.of("DATA.STD[0]"),
            Source::Override("DATA.STD=[1,1,1]".into())
        );
        assert_eq!(s.of("TRAIN.BATCH_SIZE"), Source::Default);
    }
}
