//! A strict pre-scan of a pickle's opcodes, run before anything is parsed into objects.
//!
//! The scan walks every opcode and its argument bytes without building anything, and rejects:
//! - any global (`GLOBAL`, `STACK_GLOBAL`, `INST`) that is not on [`ALLOWED_GLOBALS`], naming it;
//! - a `STACK_GLOBAL` whose module and name are not string literals it can see (so no global
//!   can be assembled out of sight);
//! - every opcode `torch.save` never writes for a state dict and that can create objects
//!   other than through an allowed global (`NEWOBJ`, `OBJ`, `INST`, the extension registry,
//!   out-of-band buffers, text persistent ids, sets);
//! - truncation anywhere, and lengths that reach past the data.
//!
//! Its memory use is a small map from memo slots to short string literals (offsets into the
//! data, never copies), so a hostile pickle cannot make the scan itself allocate much.

use std::collections::HashMap;
use std::fmt;

/// The callables and classes a `torch.save` of tensors and state dicts names, and nothing
/// else: the state dict's `OrderedDict`, the tensor and `nn.Parameter` rebuilders, and the
/// typed storage classes persistent ids name.
pub const ALLOWED_GLOBALS: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "DoubleStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "LongStorage"),
    ("torch", "IntStorage"),
    ("torch", "ShortStorage"),
    ("torch", "CharStorage"),
    ("torch", "ByteStorage"),
    ("torch", "BoolStorage"),
];

/// Longest text line (protocol 0 arguments, `GLOBAL` names) accepted.
const MAX_LINE: usize = 1024;
/// Longest string literal remembered for `STACK_GLOBAL` (longer ones cannot name a global here).
const MAX_NAME: usize = 256;

/// Why a pickle was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset of the offending opcode within the scanned data.
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}: {}", self.offset, self.message)
    }
}

fn is_allowed(module: &str, name: &str) -> bool {
    ALLOWED_GLOBALS
        .iter()
        .any(|&(m, n)| m == module && n == name)
}

/// A printable form of untrusted name bytes for error messages (one line, bounded).
fn printable(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_NAME)])
        .chars()
        .flat_map(char::escape_debug)
        .collect();
    if bytes.len() > MAX_NAME {
        format!("{text}...")
    } else {
        text
    }
}

fn global_check(module: &[u8], name: &[u8]) -> Result<(), String> {
    let ok = std::str::from_utf8(module)
        .ok()
        .zip(std::str::from_utf8(name).ok())
        .is_some_and(|(m, n)| is_allowed(m, n));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "forbidden global {}.{}: a checkpoint may only name the tensor and state-dict \
             rebuilders (collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
             torch._utils._rebuild_parameter, torch.*Storage)",
            printable(module),
            printable(name)
        ))
    }
}

/// A string literal inside the scanned data: (start, length).
type Literal = Option<(usize, usize)>;

struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
    /// Memo slots currently holding a short string literal.
    memo_strings: HashMap<u64, (usize, usize)>,
    /// `MEMOIZE` count (its implicit slot index); a pickle may not mix it with explicit `PUT`s.
    memoized: u64,
    explicit_puts: bool,
    /// The two topmost stack values when they are known string literals (`.1` is the top);
    /// reset by every opcode that is not a string push, a memo get or a memo put.
    top2: (Literal, Literal),
}

impl<'a> Scanner<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| format!("truncated {what}: needs {n} bytes"))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize, what: &str) -> Result<u64, String> {
        let bytes = self.take(n, what)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn length(&mut self, n: usize, what: &str) -> Result<usize, String> {
        let len = self.uint(n, what)?;
        usize::try_from(len).map_err(|_| format!("{what} length {len} does not fit in memory"))
    }

    fn line(&mut self, what: &str) -> Result<&'a [u8], String> {
        let rest = &self.data[self.pos..];
        let window = &rest[..rest.len().min(MAX_LINE + 1)];
        let Some(len) = window.iter().position(|&b| b == b'\n') else {
            return Err(if rest.len() <= MAX_LINE {
                format!("truncated {what}")
            } else {
                format!("{what} longer than {MAX_LINE} bytes")
            });
        };
        let line = &rest[..len];
        self.pos += len + 1;
        Ok(line)
    }

    /// Skips a length-prefixed payload whose length takes `n` bytes.
    fn payload(&mut self, n: usize, what: &str) -> Result<(usize, usize), String> {
        let len = self.length(n, what)?;
        let start = self.pos;
        self.take(len, what)?;
        Ok((start, len))
    }

    fn push_literal(&mut self, (start, len): (usize, usize)) {
        let lit = (len <= MAX_NAME).then_some((start, len));
        self.top2 = (self.top2.1, lit);
    }

    fn push_memo(&mut self, idx: u64) {
        let lit = self.memo_strings.get(&idx).copied();
        self.top2 = (self.top2.1, lit);
    }

    fn put(&mut self, idx: u64) {
        match self.top2.1 {
            Some(lit) => {
                self.memo_strings.insert(idx, lit);
            }
            None => {
                self.memo_strings.remove(&idx);
            }
        }
    }

    fn explicit_put(&mut self, idx: u64) -> Result<(), String> {
        if self.memoized > 0 {
            return Err("pickle mixes MEMOIZE with explicit memo indices".to_string());
        }
        self.explicit_puts = true;
        self.put(idx);
        Ok(())
    }

    fn index_line(&mut self, what: &str) -> Result<u64, String> {
        let line = self.line(what)?;
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("{what} is not a memo index: {}", printable(line)))
    }

    /// Processes one opcode. Returns true at `STOP`.
    fn step(&mut self) -> Result<bool, String> {
        let op = self.take(1, "opcode")?[0];
        // Opcodes that leave the top of the stack as it was, or push a string literal, keep
        // `top2` up to date themselves; every other opcode forgets it.
        let keeps_top = match op {
            b'.' => return Ok(true),
            0x80 => {
                let version = self.uint(1, "PROTO")?;
                if version > 5 {
                    return Err(format!("unknown pickle protocol {version}"));
                }
                false
            }
            0x95 => {
                self.uint(8, "FRAME")?;
                true
            }
            // Strings: the unicode ones may name a STACK_GLOBAL operand.
            b'X' | 0x8c | 0x8d => {
                let lit = match op {
                    b'X' => self.payload(4, "BINUNICODE")?,
                    0x8c => self.payload(1, "SHORT_BINUNICODE")?,
                    _ => self.payload(8, "BINUNICODE8")?,
                };
                self.push_literal(lit);
                true
            }
            b'p' | b'q' | b'r' | 0x94 => {
                self.memo_put(op)?;
                true
            }
            b'g' | b'h' | b'j' => {
                self.memo_get(op)?;
                true
            }
            // Globals: the whole point of the scan.
            b'c' | 0x93 | b'i' => {
                self.global(op)?;
                false
            }
            other => {
                self.skip(argument(other)?)?;
                false
            }
        };
        if !keeps_top {
            self.top2 = (None, None);
        }
        Ok(false)
    }

    /// PUT, BINPUT, LONG_BINPUT and MEMOIZE: the top is remembered under a memo index.
    fn memo_put(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'p' => {
                let idx = self.index_line("PUT")?;
                self.explicit_put(idx)
            }
            b'q' => {
                let idx = self.uint(1, "BINPUT")?;
                self.explicit_put(idx)
            }
            b'r' => {
                let idx = self.uint(4, "LONG_BINPUT")?;
                self.explicit_put(idx)
            }
            _ => {
                if self.explicit_puts {
                    return Err("pickle mixes MEMOIZE with explicit memo indices".to_string());
                }
                let idx = self.memoized;
                self.memoized += 1;
                self.put(idx);
                Ok(())
            }
        }
    }

    /// GET, BINGET and LONG_BINGET: a memo slot's value comes back on top.
    fn memo_get(&mut self, op: u8) -> Result<(), String> {
        let idx = match op {
            b'g' => self.index_line("GET")?,
            b'h' => self.uint(1, "BINGET")?,
            _ => self.uint(4, "LONG_BINGET")?,
        };
        self.push_memo(idx);
        Ok(())
    }

    /// GLOBAL, STACK_GLOBAL and INST: each must name an allowed global, and INST, which
    /// would also call it, is refused after naming it.
    fn global(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'c' => {
                let module = self.line("GLOBAL module")?;
                let name = self.line("GLOBAL name")?;
                global_check(module, name)
            }
            0x93 => {
                let (Some(module), Some(name)) = self.top2 else {
                    return Err(
                        "STACK_GLOBAL whose module and name are not string literals".to_string()
                    );
                };
                let slice = |(start, len): (usize, usize)| &self.data[start..start + len];
                global_check(slice(module), slice(name))
            }
            _ => {
                let module = self.line("INST module")?;
                let name = self.line("INST name")?;
                global_check(module, name)?;
                Err("unsupported opcode INST (torch.save never writes it)".to_string())
            }
        }
    }

    /// Steps over an opcode's argument bytes.
    fn skip(&mut self, argument: Argument) -> Result<(), String> {
        match argument {
            Argument::Nothing => {}
            Argument::Line(what) => {
                self.line(what)?;
            }
            Argument::Fixed(n, what) => {
                self.take(n, what)?;
            }
            Argument::Payload(n, what) => {
                self.payload(n, what)?;
            }
        }
        Ok(())
    }
}

/// The argument of an opcode the scan has nothing to check in, named for error messages.
enum Argument {
    Nothing,
    /// A newline-terminated text argument.
    Line(&'static str),
    /// This many bytes.
    Fixed(usize, &'static str),
    /// A payload whose length takes this many bytes.
    Payload(usize, &'static str),
}

/// The argument of every other opcode `torch.save` may write; an error naming any opcode that
/// can create objects other than through an allowed global, or that is no opcode at all.
fn argument(op: u8) -> Result<Argument, String> {
    use Argument::{Fixed, Line, Payload};
    Ok(match op {
        // Constants and numbers.
        b'N' | 0x88 | 0x89 => Argument::Nothing,
        b'I' => Line("INT"),
        b'L' => Line("LONG"),
        b'F' => Line("FLOAT"),
        b'J' => Fixed(4, "BININT"),
        b'K' => Fixed(1, "BININT1"),
        b'M' => Fixed(2, "BININT2"),
        b'G' => Fixed(8, "BINFLOAT"),
        0x8a => Payload(1, "LONG1"),
        0x8b => Payload(4, "LONG4"),
        // Strings that cannot name a global, and bytes.
        b'V' => Line("UNICODE"),
        b'T' => Payload(4, "BINSTRING"),
        b'U' => Payload(1, "SHORT_BINSTRING"),
        b'B' => Payload(4, "BINBYTES"),
        b'C' => Payload(1, "SHORT_BINBYTES"),
        0x8e => Payload(8, "BINBYTES8"),
        // Containers and stack manipulation.
        b'(' | b')' | b']' | b'}' | 0x85 | 0x86 | 0x87 | b't' | b'l' | b'd' | b'a' | b'e'
        | b's' | b'u' | b'0' | b'1' | b'2' => Argument::Nothing,
        // Calls: only reachable with allowed callables, since every callable is a global.
        b'R' | b'b' | b'Q' => Argument::Nothing,
        other => {
            let name = match other {
                b'P' => "PERSID",
                0x81 => "NEWOBJ",
                0x92 => "NEWOBJ_EX",
                b'o' => "OBJ",
                0x82 => "EXT1",
                0x83 => "EXT2",
                0x84 => "EXT4",
                0x8f => "EMPTY_SET",
                0x90 => "ADDITEMS",
                0x91 => "FROZENSET",
                0x96 => "BYTEARRAY8",
                0x97 => "NEXT_BUFFER",
                0x98 => "READONLY_BUFFER",
                _ => return Err(format!("invalid pickle opcode 0x{other:02x}")),
            };
            return Err(format!(
                "unsupported opcode {name} (torch.save never writes it for tensors)"
            ));
        }
    })
}

/// Scans one pickle at the start of `data`; returns the offset just past its `STOP`.
pub fn scan(data: &[u8]) -> Result<usize, ScanError> {
    let mut s = Scanner {
        data,
        pos: 0,
        memo_strings: HashMap::new(),
        memoized: 0,
        explicit_puts: false,
        top2: (None, None),
    };
    loop {
        let at = s.pos;
        match s.step() {
            Ok(true) => return Ok(s.pos),
            Ok(false) => {}
            Err(message) => {
                return Err(ScanError {
                    offset: at,
                    message,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(data: &[u8]) -> String {
        scan(data).unwrap_err().to_string()
    }

    #[test]
    fn accepts_an_allowed_global_and_reports_the_end() {
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)R.trailing";
        assert_eq!(scan(p).unwrap(), p.len() - "trailing".len());
    }

    #[test]
    fn names_a_forbidden_global() {
        let e = err(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.");
        assert!(e.contains("forbidden global os.system"), "{e}");
        assert!(e.starts_with("byte 2:"), "{e}");
    }

    #[test]
    fn stack_global_literals_are_checked_directly_and_through_the_memo() {
        let direct = b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93.";
        assert!(err(direct).contains("forbidden global builtins.eval"));
        // Through memo gets: `torch` then `FloatStorage` memoized, fetched back in order.
        let memo = b"\x80\x04\x8c\x05torch\x94\x8c\x0cFloatStorage\x94(h\x00h\x01\x93.";
        assert_eq!(scan(memo).unwrap(), memo.len());
        let memo_bad = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94(h\x00h\x01\x93.";
        assert!(err(memo_bad).contains("forbidden global os.system"));
        // Operands built any other way are refused.
        let built = b"\x80\x04\x8c\x02os\x8c\x06system\x86\x93.";
        assert!(err(built).contains("not string literals"));
    }

    #[test]
    fn object_creating_opcodes_and_truncation_are_refused() {
        assert!(err(b"\x80\x02)\x81.").contains("NEWOBJ"));
        assert!(err(b"\x80\x02(iposix\nsystem\n.").contains("forbidden global posix.system"));
        assert!(err(b"\x80\x02X\xff\xff\xff\x7fab").contains("truncated BINUNICODE"));
        assert!(err(b"\x80\x02}").contains("truncated opcode"));
        assert!(err(b"\x80\x02\xff").contains("invalid pickle opcode 0xff"));
        assert!(err(b"\x80\x02ctorch\nFloatSto").contains("truncated GLOBAL name"));
    }
}
