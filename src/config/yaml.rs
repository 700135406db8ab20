//! YAML read the way the reference reads it: PyYAML's YAML 1.1 resolution of plain scalars
//! (docs/config.md#yaml), built from the parser's events rather than a YAML 1.2 deserialiser.
//!
//! The differences that matter for configs: a plain `y`, `n` or `x` is a string (only the
//! `yes/no/true/false/on/off` families are booleans), `1e-4` is a string (a float needs a dot),
//! `010` is octal, and a key given twice keeps its last value. Quoted and block scalars are
//! always strings. Anchors, aliases and `<<` merge keys work as in PyYAML.

use std::borrow::Cow;
use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// A key that a mapping gives twice: PyYAML keeps the last value without a word; tada keeps it
/// too and says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// Dotted path of the key (`TRAIN.BATCH_SIZE`).
    pub key: String,
    /// 1-based lines of the first and the kept occurrence.
    pub first_line: usize,
    pub line: usize,
}

/// A YAML document that cannot be read, with the line it fails at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// Parses one YAML document into JSON values; an empty document is `Null`.
pub fn parse(text: &str) -> Result<(Value, Vec<Duplicate>), YamlError> {
    let mut r = Reader {
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        duplicates: Vec::new(),
        line: 1,
    };
    let mut value = Value::Null;
    let mut documents = 0;
    loop {
        match r.next()? {
            (Event::StreamEnd, _) => break,
            (Event::DocumentStart(..), _) => {
                documents += 1;
                if documents > 1 {
                    return Err(r.error("a config holds one YAML document; found a second `---`"));
                }
                let (event, _) = r.next()?;
                value = match event {
                    Event::DocumentEnd => Value::Null,
                    event => {
                        let v = r.node(event, "")?;
                        r.expect_document_end()?;
                        v
                    }
                };
            }
            _ => {}
        }
    }
    Ok((value, r.duplicates))
}

struct Reader<'a> {
    events: Parser<'a, granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Value>,
    duplicates: Vec<Duplicate>,
    /// Line of the last event, for errors.
    line: usize,
}

impl<'a> Reader<'a> {
    /// The next node-level event (comments and anchor metadata skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        loop {
            let (event, span) = match self.events.next_event() {
                None => (Event::StreamEnd, Span::default()),
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    let message = e.to_string();
                    // The scanner's text ends with its own "at line L column C".
                    let message = message.split(" at line ").next().unwrap_or(&message);
                    return Err(YamlError {
                        line: e.marker().line(),
                        message: message.to_string(),
                    });
                }
            };
            self.line = span.start.line().max(1);
            // Comments (a parser feature) and anchor metadata are not nodes.
            match event {
                Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::SequenceEnd
                | Event::MappingStart(..)
                | Event::MappingEnd
                | Event::Alias(..)
                | Event::DocumentStart(..)
                | Event::DocumentEnd
                | Event::StreamEnd => return Ok((event, span)),
                _ => {}
            }
        }
    }

    fn error(&self, message: impl Into<String>) -> YamlError {
        YamlError {
            line: self.line,
            message: message.into(),
        }
    }

    fn expect_document_end(&mut self) -> Result<(), YamlError> {
        match self.next()?.0 {
            Event::DocumentEnd => Ok(()),
            _ => Err(self.error("unexpected content after the document")),
        }
    }

    /// The value of the node that `event` starts; `path` names it in warnings.
    fn node(&mut self, event: Event<'a>, path: &str) -> Result<Value, YamlError> {
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => (self.scalar(&text, style, tag)?, anchor),
            Event::SequenceStart(_, anchor, tag) => {
                self.collection_tag(tag.as_deref(), "seq")?;
                (self.sequence(path)?, anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                self.collection_tag(tag.as_deref(), "map")?;
                (self.mapping(path)?, anchor)
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(v) => (v.clone(), 0),
                None => return Err(self.error("an alias names no anchor before it")),
            },
            other => return Err(self.error(format!("unexpected YAML event {other:?}"))),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    fn sequence(&mut self, path: &str) -> Result<Value, YamlError> {
        let mut items = Vec::new();
        loop {
            match self.next()? {
                (Event::SequenceEnd, _) => return Ok(Value::Array(items)),
                (e, _) => items.push(self.node(e, &format!("{path}[{}]", items.len()))?),
            }
        }
    }

    fn mapping(&mut self, path: &str) -> Result<Value, YamlError> {
        let mut map = Map::new();
        let mut lines: HashMap<String, usize> = HashMap::new();
        // `<<` sources, in order: the first one to give a key wins, and explicit keys win
        // over all of them.
        let mut merged = Vec::new();
        loop {
            let (key, plain) = match self.next()?.0 {
                Event::MappingEnd => break,
                Event::Scalar(text, style, _, _) => {
                    (text.into_owned(), style == ScalarStyle::Plain)
                }
                Event::Alias(id) => match self.anchors.get(&id) {
                    Some(Value::String(s)) => (s.clone(), false),
                    Some(v) if !v.is_object() && !v.is_array() => (v.to_string(), false),
                    _ => return Err(self.error("a mapping key must be a scalar")),
                },
                _ => return Err(self.error("a mapping key must be a scalar")),
            };
            let line = self.line;
            let child = join(path, &key);
            let (event, _) = self.next()?;
            let value = self.node(event, &child)?;
            if plain && key == "<<" {
                self.merge_sources(value, &mut merged)?;
                continue;
            }
            if let Some(first_line) = lines.insert(key.clone(), line) {
                self.duplicates.push(Duplicate {
                    key: child,
                    first_line,
                    line,
                });
            }
            map.insert(key, value);
        }
        for source in merged {
            for (k, v) in source {
                map.entry(k).or_insert(v);
            }
        }
        Ok(Value::Object(map))
    }

    /// The mappings a `<<` value merges: one mapping, or a list of them.
    fn merge_sources(
        &self,
        value: Value,
        out: &mut Vec<Map<String, Value>>,
    ) -> Result<(), YamlError> {
        match value {
            Value::Object(m) => out.push(m),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(m) => out.push(m),
                        _ => return Err(self.error("`<<` merges mappings only")),
                    }
                }
            }
            _ => return Err(self.error("`<<` merges mappings only")),
        }
        Ok(())
    }

    fn scalar(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<Cow<'_, Tag>>,
    ) -> Result<Value, YamlError> {
        let Some(tag) = tag else {
            return Ok(match style {
                ScalarStyle::Plain => resolve_plain(text),
                _ => Value::String(text.to_string()),
            });
        };
        // `! x` is the non-specific tag: a string.
        if tag.handle() == "!" && tag.suffix().is_empty() {
            return Ok(Value::String(text.to_string()));
        }
        let core = (tag.handle() == "tag:yaml.org,2002:").then(|| tag.suffix());
        let resolved = resolve_plain(text);
        let bad = || self.error(format!("`{text}` is not a valid !!{}", tag.suffix()));
        match core {
            Some("str") => Ok(Value::String(text.to_string())),
            Some("null") if resolved.is_null() => Ok(Value::Null),
            Some("bool") if resolved.is_boolean() => Ok(resolved),
            Some("int") => int(text).ok_or_else(bad),
            Some("float") => float(text)
                .or_else(|| int(text).and_then(|v| v.as_f64()).map(number))
                .ok_or_else(bad),
            Some("null" | "bool") => Err(bad()),
            _ => Err(self.error(format!(
                "tag {}{} is not supported (configs hold plain values)",
                tag.handle(),
                tag.suffix()
            ))),
        }
    }

    fn collection_tag(&self, tag: Option<&Tag>, kind: &str) -> Result<(), YamlError> {
        match tag {
            None => Ok(()),
            Some(t) if t.handle() == "tag:yaml.org,2002:" && t.suffix() == kind => Ok(()),
            Some(t) if t.handle() == "!" && t.suffix().is_empty() => Ok(()),
            Some(t) => Err(self.error(format!(
                "tag {}{} is not supported (configs hold plain values)",
                t.handle(),
                t.suffix()
            ))),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A plain scalar as PyYAML's resolver reads it: null, bool, float, int, else a string.
pub fn resolve_plain(s: &str) -> Value {
    if matches!(s, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    match s {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    float(s)
        .or_else(|| int(s))
        .unwrap_or_else(|| Value::String(s.to_string()))
}

/// `[-+]?` and the rest.
fn split_sign(s: &str) -> (f64, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    }
}

fn all(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    s.bytes().all(ok)
}

fn digits_(s: &str) -> bool {
    all(s, |b| b.is_ascii_digit() || b == b'_')
}

/// `:[0-5]?[0-9]` groups after a sexagesimal head.
fn base60_parts(parts: &[&str]) -> bool {
    parts.iter().all(|p| {
        let b = p.as_bytes();
        match b.len() {
            1 => b[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
            _ => false,
        }
    })
}

fn base60(head: &str, parts: &[&str]) -> f64 {
    let mut v: f64 = head.replace('_', "").parse().unwrap_or(0.0);
    for p in parts {
        v = v * 60.0 + p.parse::<f64>().unwrap_or(0.0);
    }
    v
}

fn number(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        // JSON has no infinity or NaN: kept as PyYAML's spelling, which the config's number
        // coercion reads.
        None => Value::String(if v.is_nan() {
            ".nan".into()
        } else if v > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        }),
    }
}

/// PyYAML's int: `0b…`, `0…` (octal), decimal, `0x…`, and sexagesimal `1:30`, with `_`.
fn int(s: &str) -> Option<Value> {
    let (sign, body) = split_sign(s);
    let clean = body.replace('_', "");
    let radix = |digits: &str, radix: u32| i128::from_str_radix(digits, radix).ok();
    let magnitude = if let Some(b) = body.strip_prefix("0b") {
        (!b.is_empty() && all(b, |c| c == b'0' || c == b'1' || c == b'_'))
            .then(|| radix(&b.replace('_', ""), 2))??
    } else if let Some(h) = body.strip_prefix("0x") {
        (!h.is_empty() && all(h, |c| c.is_ascii_hexdigit() || c == b'_'))
            .then(|| radix(&h.replace('_', ""), 16))??
    } else if body.len() > 1 && body.starts_with('0') {
        all(&body[1..], |c| (b'0'..=b'7').contains(&c) || c == b'_').then(|| radix(&clean, 8))??
    } else if body.contains(':') {
        let mut it = body.split(':');
        let head = it.next()?;
        let parts: Vec<&str> = it.collect();
        let ok = head.starts_with(|c: char| ('1'..='9').contains(&c)) && digits_(head);
        if !(ok && base60_parts(&parts)) {
            return None;
        }
        return Some(Value::from((sign * base60(head, &parts)) as i64));
    } else {
        let ok =
            body == "0" || (body.starts_with(|c: char| ('1'..='9').contains(&c)) && digits_(body));
        ok.then(|| clean.parse::<i128>().ok())??
    };
    let v = if sign < 0.0 { -magnitude } else { magnitude };
    Some(match (i64::try_from(v), u64::try_from(v)) {
        (Ok(i), _) => Value::from(i),
        (_, Ok(u)) => Value::from(u),
        _ => number(v as f64),
    })
}

/// PyYAML's float: a dot is required (`1.`, `1.5`, `.5`), an exponent needs its sign
/// (`1.0e-4`; `1e-4` and `1.0e4` are strings), sexagesimal `1:30.5`, `.inf`, `.nan`.
fn float(s: &str) -> Option<Value> {
    let (sign, body) = split_sign(s);
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(number(sign * f64::INFINITY));
    }
    if s == body && matches!(body, ".nan" | ".NaN" | ".NAN") {
        return Some(number(f64::NAN));
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(e) = exponent {
        let ok = matches!(e.as_bytes().first(), Some(b'-' | b'+'))
            && e.len() > 1
            && all(&e[1..], |c| c.is_ascii_digit());
        if !ok {
            return None;
        }
    }
    let (int_part, frac) = mantissa.split_once('.')?;
    if int_part.contains(':') {
        if exponent.is_some() || !digits_(frac) {
            return None;
        }
        let mut it = int_part.split(':');
        let head = it.next()?;
        let parts: Vec<&str> = it.collect();
        let ok = head.starts_with(|c: char| c.is_ascii_digit()) && digits_(head);
        if !(ok && base60_parts(&parts)) {
            return None;
        }
        let frac: f64 = format!("0.{}", frac.replace('_', ""))
            .parse()
            .unwrap_or(0.0);
        return Some(number(sign * (base60(head, &parts) + frac)));
    }
    let ok = if int_part.is_empty() {
        // `\.[0-9][0-9_]*`, unsigned only.
        s == body && frac.starts_with(|c: char| c.is_ascii_digit()) && digits_(frac)
    } else {
        int_part.starts_with(|c: char| c.is_ascii_digit()) && digits_(int_part) && digits_(frac)
    };
    if !ok {
        return None;
    }
    let text = format!(
        "{}.{}{}",
        int_part.replace('_', ""),
        frac.replace('_', ""),
        exponent.map_or(String::new(), |e| format!("e{e}"))
    );
    let text = if text.starts_with('.') {
        format!("0{text}")
    } else {
        text
    };
    text.parse::<f64>().ok().map(|v| number(sign * v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of(scalar: &str) -> Value {
        let (v, _) = parse(&format!("k: {scalar}\n")).unwrap();
        v["k"].clone()
    }

    /// Every spelling of tests/data/yaml/pyyaml_scalars.json (written by
    /// tests/python/pyyaml_scalars.py with PyYAML 6) resolves as PyYAML resolves it.
    #[test]
    fn plain_scalars_resolve_as_pyyaml_resolves_them() {
        let table: Value =
            serde_json::from_str(include_str!("../../tests/data/yaml/pyyaml_scalars.json"))
                .unwrap();
        let rows = table["table"].as_array().unwrap();
        assert!(rows.len() > 80);
        let mut wrong = Vec::new();
        for row in rows {
            let yaml = row["yaml"].as_str().unwrap();
            let want = &row["pyyaml"];
            let got = value_of(yaml);
            let text = want["value"].as_str().unwrap_or_default();
            let ok = match want["type"].as_str().unwrap() {
                "null" => got.is_null(),
                "bool" => got == want["value"],
                "int" => (got.is_i64() || got.is_u64()) && got.to_string().as_str() == text,
                "float" => match text {
                    "inf" => got == ".inf",
                    "-inf" => got == "-.inf",
                    "nan" => got == ".nan",
                    _ => got.as_f64() == text.parse::<f64>().ok() && !got.is_i64(),
                },
                _ => got == Value::String(text.to_string()),
            };
            if !ok {
                wrong.push(format!("{yaml}: PyYAML {want}, tada {got}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn quoted_and_block_scalars_are_strings_and_tags_apply() {
        let (v, _) =
            parse("a: 'y'\nb: \"1.5\"\nc: |\n  7\nd: !!str 7\ne: !!float 2\nf: !!int '3'\n")
                .unwrap();
        assert_eq!(v["a"], "y");
        assert_eq!(v["b"], "1.5");
        assert_eq!(v["c"], "7\n");
        assert_eq!(v["d"], "7");
        assert_eq!(v["e"], 2.0);
        assert_eq!(v["f"], 3);
        let e = parse("a: !!python/object:os.system ls\n").unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
        assert!(parse("a: !!int x\n")
            .unwrap_err()
            .to_string()
            .contains("!!int"));
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_and_is_reported_with_both_lines() {
        let (v, dups) = parse("A:\n  B: 1\n  C: 2\n  B: 3\nD: 4\n").unwrap();
        assert_eq!(v["A"]["B"], 3);
        assert_eq!(
            dups,
            [Duplicate {
                key: "A.B".into(),
                first_line: 2,
                line: 4
            }]
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys_work_as_in_pyyaml() {
        let text =
            "base: &b {X: 1, Y: 2}\nother: &o {Z: 5}\nrun:\n  <<: [*b, *o]\n  Y: 3\nlist: [*b]\n";
        let (v, _) = parse(text).unwrap();
        assert_eq!(v["run"], serde_json::json!({"Y": 3, "X": 1, "Z": 5}));
        assert_eq!(v["list"][0]["X"], 1);
        assert!(parse("a: *nothing\n").is_err());
        assert!(parse("a: 1\n---\nb: 2\n")
            .unwrap_err()
            .to_string()
            .contains("one YAML document"));
        assert!(parse("? [1, 2]\n: x\n")
            .unwrap_err()
            .to_string()
            .contains("scalar"));
        assert_eq!(parse("").unwrap().0, Value::Null);
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line >= 1 && !e.message.is_empty(), "{e:?}");
    }
}
