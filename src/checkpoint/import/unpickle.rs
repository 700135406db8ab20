//! A strict, minimal unpickler for what `torch.save` writes for state dicts and the
//! reference's checkpoint dicts. It builds plain data (numbers, strings, tuples, lists, dicts)
//! plus storage and tensor descriptions ([`super::value`]); it calls nothing. Its only callables
//! are the allowed globals of [`super::scan`], interpreted by [`super::value::reduce`].
//!
//! Resource bounds: values nest at most [`MAX_DEPTH`] deep (so dropping them cannot overflow
//! the stack); memo gets and `DUP` share values, and a container is copied only when a shared
//! one is mutated, which is charged against [`MAX_COPIED`]; values are immutable once nested,
//! so they form no cycles; everything else is bounded by the pickle's size, which the caller
//! limits.

use std::collections::HashMap;
use std::rc::Rc;

use super::value::{self, key_of, Storage, Value};

/// Deepest nesting of containers accepted (a checkpoint needs about 6).
pub const MAX_DEPTH: u32 = 100;
/// Container items that copy-on-write may copy in all (a legitimate checkpoint copies none).
pub const MAX_COPIED: usize = 16 << 20;

/// A stack slot: a value, how deeply it nests, and the memo index it was last stored under.
#[derive(Clone)]
struct Slot {
    value: Value,
    depth: u32,
    memo: Option<u64>,
}

/// A memo entry: the stack slot it still is (so a get sees later mutations, as in Python),
/// or the value that slot held when it left the stack.
enum Memo {
    Live(usize),
    Frozen(Value, u32),
}

/// Checks a storage a persistent id names against the container (existence, size).
pub type StorageResolver<'r> = dyn FnMut(&Storage) -> Result<(), String> + 'r;

struct Machine<'a, 'r> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Slot>,
    marks: Vec<usize>,
    memo: HashMap<u64, Memo>,
    copied: usize,
    storages: HashMap<String, Rc<Storage>>,
    resolve: &'r mut StorageResolver<'r>,
}

impl Machine<'_, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or("truncated pickle")?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn sized(&mut self, n: usize) -> Result<&[u8], String> {
        let len = usize::try_from(self.uint(n)?).map_err(|_| "length overflows".to_string())?;
        self.take(len)
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let len = rest
            .iter()
            .take(1025)
            .position(|&b| b == b'\n')
            .ok_or("truncated or overlong text argument")?;
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.pos += len + 1;
        Ok(text)
    }

    fn push(&mut self, value: Value, depth: u32) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(Slot {
            value,
            depth,
            memo: None,
        });
        Ok(())
    }

    fn mark_on_top(&self) -> bool {
        self.marks.last() == Some(&self.stack.len())
    }

    /// A slot leaves the stack: a memo entry that still points at it keeps its final value.
    fn freeze(&mut self, slot: &Slot, pos: usize) {
        if let Some(idx) = slot.memo {
            if matches!(self.memo.get(&idx), Some(Memo::Live(p)) if *p == pos) {
                self.memo
                    .insert(idx, Memo::Frozen(slot.value.clone(), slot.depth));
            }
        }
    }

    fn pop(&mut self) -> Result<Slot, String> {
        if self.mark_on_top() {
            return Err("stack underflow (a MARK is on top)".to_string());
        }
        let slot = self.stack.pop().ok_or("stack underflow")?;
        self.freeze(&slot, self.stack.len());
        Ok(slot)
    }

    fn top_mut(&mut self) -> Result<&mut Slot, String> {
        if self.mark_on_top() {
            return Err("stack underflow (a MARK is on top)".to_string());
        }
        self.stack
            .last_mut()
            .ok_or_else(|| "stack underflow".to_string())
    }

    fn pop_mark(&mut self) -> Result<(Vec<Value>, u32), String> {
        let mark = self.marks.pop().ok_or("no MARK to pop to")?;
        let items = self.stack.split_off(mark);
        let mut depth = 0;
        let mut values = Vec::with_capacity(items.len());
        for (i, slot) in items.into_iter().enumerate() {
            self.freeze(&slot, mark + i);
            depth = depth.max(slot.depth);
            values.push(slot.value);
        }
        Ok((values, depth))
    }

    fn memo_get(&mut self, idx: u64) -> Result<(), String> {
        let (value, depth) = match self.memo.get(&idx) {
            Some(Memo::Live(p)) => (self.stack[*p].value.clone(), self.stack[*p].depth),
            Some(Memo::Frozen(v, d)) => (v.clone(), *d),
            None => return Err(format!("memo slot {idx} is empty")),
        };
        self.push(value, depth)
    }

    fn memo_put(&mut self, idx: u64) -> Result<(), String> {
        let pos = self.stack.len().wrapping_sub(1);
        let top = self.top_mut()?;
        let previous = top.memo.replace(idx);
        let (value, depth) = (top.value.clone(), top.depth);
        if let Some(old) = previous.filter(|&old| old != idx) {
            if matches!(self.memo.get(&old), Some(Memo::Live(p)) if *p == pos) {
                self.memo.insert(old, Memo::Frozen(value, depth));
            }
        }
        self.memo.insert(idx, Memo::Live(pos));
        Ok(())
    }

    /// Counts the items a copy-on-write of a shared container copies.
    fn charge(copied: &mut usize, shared: bool, len: usize) -> Result<(), String> {
        if shared {
            *copied = copied.saturating_add(len + 1);
            if *copied > MAX_COPIED {
                return Err("copies of shared containers exceed their limit".to_string());
            }
        }
        Ok(())
    }

    /// APPEND/APPENDS onto the list below, SETITEM/SETITEMS into the dict below.
    fn extend(&mut self, items: Vec<Value>, depth: u32, dict: bool) -> Result<(), String> {
        if self.mark_on_top() {
            return Err("stack underflow (a MARK is on top)".to_string());
        }
        let copied = &mut self.copied;
        let target = self.stack.last_mut().ok_or("stack underflow")?;
        target.depth = target.depth.max(depth + 1);
        if target.depth > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        match (&mut target.value, dict) {
            (Value::List(list), false) => {
                Self::charge(copied, Rc::strong_count(list) > 1, list.len())?;
                Rc::make_mut(list).extend(items);
            }
            (Value::Dict(d), true) => {
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of items".to_string());
                }
                Self::charge(copied, Rc::strong_count(d) > 1, d.items.len())?;
                let d = Rc::make_mut(d);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.insert(key_of(k)?, v);
                }
            }
            (other, _) => return Err(format!("cannot add items to a {}", other.type_name())),
        }
        Ok(())
    }

    fn persistent(&mut self, pid: Value) -> Result<Value, String> {
        let storage = value::storage_from_pid(pid)?;
        if let Some(seen) = self.storages.get(&storage.key) {
            if **seen != storage {
                return Err(format!(
                    "storage {} is declared twice, differently",
                    storage.key
                ));
            }
            return Ok(Value::Storage(seen.clone()));
        }
        (self.resolve)(&storage)?;
        let storage = Rc::new(storage);
        self.storages.insert(storage.key.clone(), storage.clone());
        Ok(Value::Storage(storage))
    }

    /// Runs one opcode; true at `STOP`. Opcodes are handled by family: literals push a value
    /// that nests nothing, containers build or fill lists, tuples and dicts, stack and memo
    /// opcodes move values around, and objects are the only place a global is named or used.
    fn step(&mut self) -> Result<bool, String> {
        let op = self.take(1)?[0];
        match op {
            // PROTO and FRAME: their arguments only matter to the scan.
            0x80 => {
                self.take(1)?;
            }
            0x95 => {
                self.take(8)?;
            }
            b'.' => return Ok(true),
            b'N' | 0x88 | 0x89 | b'I' | b'L' | b'F' | b'J' | b'K' | b'M' | b'G' | 0x8a | 0x8b => {
                let v = self.scalar(op)?;
                self.push(v, 0)?;
            }
            b'X' | 0x8c | 0x8d | b'V' | b'T' | b'U' | b'B' | b'C' | 0x8e => {
                let v = self.string(op)?;
                self.push(v, 0)?;
            }
            b'(' | b')' | b']' | b'}' | 0x85..=0x87 | b't' | b'l' | b'd' => self.container(op)?,
            b'a' | b'e' | b'u' | b's' => self.add_items(op)?,
            b'0' | b'1' | b'2' => self.stack_op(op)?,
            b'p' | b'g' | b'q' | b'h' | b'r' | b'j' | 0x94 => self.memo_op(op)?,
            b'c' | 0x93 | b'Q' | b'R' | b'b' => self.object(op)?,
            other => return Err(unsupported(other)),
        }
        Ok(false)
    }

    /// `None`, booleans, ints and floats, in their text and binary forms. Ints beyond `i64`
    /// are kept only as [`Value::BigInt`]: no tensor argument needs one.
    fn scalar(&mut self, op: u8) -> Result<Value, String> {
        Ok(match op {
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            b'I' => {
                let text = self.line()?;
                match text.as_str() {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    t => Value::Int(t.parse().map_err(|_| format!("bad INT {t:?}"))?),
                }
            }
            b'L' => {
                let text = self.line()?;
                let t = text.strip_suffix('L').unwrap_or(&text);
                t.parse().map(Value::Int).unwrap_or(Value::BigInt)
            }
            b'F' => {
                let text = self.line()?;
                Value::Float(text.parse().map_err(|_| format!("bad FLOAT {text:?}"))?)
            }
            b'J' => Value::Int(i64::from(self.uint(4)? as u32 as i32)),
            b'K' => Value::Int(self.uint(1)? as i64),
            b'M' => Value::Int(self.uint(2)? as i64),
            b'G' => {
                let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| "truncated")?;
                Value::Float(f64::from_be_bytes(bytes))
            }
            0x8a | 0x8b => long(self.sized(if op == 0x8a { 1 } else { 4 })?),
            other => return Err(unsupported(other)),
        })
    }

    /// Strings (unicode, or protocol 0-2 byte strings read as Latin-1) and bytes, whose
    /// contents no tensor needs.
    fn string(&mut self, op: u8) -> Result<Value, String> {
        Ok(match op {
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'X' => 4,
                    0x8c => 1,
                    _ => 8,
                };
                let s = std::str::from_utf8(self.sized(n)?)
                    .map_err(|_| "string is not UTF-8".to_string())?;
                Value::Str(s.into())
            }
            b'V' => Value::Str(self.line()?.into()),
            b'T' | b'U' => {
                let s = self.sized(if op == b'T' { 4 } else { 1 })?;
                let s: String = s.iter().map(|&b| char::from(b)).collect();
                Value::Str(s.into())
            }
            b'B' | b'C' | 0x8e => {
                let n = match op {
                    b'B' => 4,
                    b'C' => 1,
                    _ => 8,
                };
                self.sized(n)?;
                Value::Bytes
            }
            other => return Err(unsupported(other)),
        })
    }

    /// MARK, the empty containers, and tuples, lists and dicts built from the stack.
    fn container(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'(' => self.marks.push(self.stack.len()),
            b')' => self.push(Value::Tuple(Rc::default()), 0)?,
            b']' => self.push(Value::List(Rc::default()), 0)?,
            b'}' => self.push(Value::Dict(Rc::default()), 0)?,
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                let mut depth = 0;
                for _ in 0..n {
                    let s = self.pop()?;
                    depth = depth.max(s.depth);
                    items.push(s.value);
                }
                items.reverse();
                self.push(Value::Tuple(Rc::new(items)), depth + 1)?;
            }
            b't' | b'l' => {
                let (items, depth) = self.pop_mark()?;
                let v = if op == b't' {
                    Value::Tuple(Rc::new(items))
                } else {
                    Value::List(Rc::new(items))
                };
                self.push(v, depth + 1)?;
            }
            b'd' => {
                let (items, depth) = self.pop_mark()?;
                self.push(Value::Dict(Rc::default()), 0)?;
                self.extend(items, depth, true)?;
            }
            other => return Err(unsupported(other)),
        }
        Ok(())
    }

    /// APPEND, APPENDS, SETITEMS and SETITEM: items into the list or dict below them.
    fn add_items(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'a' => {
                let s = self.pop()?;
                self.extend(vec![s.value], s.depth, false)
            }
            b'e' | b'u' => {
                let (items, depth) = self.pop_mark()?;
                self.extend(items, depth, op == b'u')
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.extend(vec![k.value, v.value], k.depth.max(v.depth), true)
            }
            other => Err(unsupported(other)),
        }
    }

    /// POP (of a value, or of a MARK on top), POP_MARK and DUP.
    fn stack_op(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'0' => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top_mut()?;
                let (value, depth) = (top.value.clone(), top.depth);
                self.push(value, depth)?;
            }
            other => return Err(unsupported(other)),
        }
        Ok(())
    }

    /// The memo's puts and gets, with text, 1-byte and 4-byte indices, and MEMOIZE.
    fn memo_op(&mut self, op: u8) -> Result<(), String> {
        let idx = match op {
            b'p' | b'g' => {
                let text = self.line()?;
                text.parse()
                    .map_err(|_| format!("bad memo index {text:?}"))?
            }
            b'q' | b'h' => self.uint(1)?,
            b'r' | b'j' => self.uint(4)?,
            0x94 => self.memo.len() as u64,
            other => return Err(unsupported(other)),
        };
        match op {
            b'g' | b'h' | b'j' => self.memo_get(idx),
            _ => self.memo_put(idx),
        }
    }

    /// Globals (already allowed by the scan), persistent ids, REDUCE and BUILD: the opcodes
    /// that stand for calls, each interpreted by [`super::value`] rather than made.
    fn object(&mut self, op: u8) -> Result<(), String> {
        match op {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let g = value::global(&module, &name)?;
                self.push(g, 0)
            }
            0x93 => {
                let name = self.pop()?.value;
                let module = self.pop()?.value;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err("STACK_GLOBAL operands are not strings".to_string());
                };
                let g = value::global(&module, &name)?;
                self.push(g, 0)
            }
            b'Q' => {
                let pid = self.pop()?.value;
                let storage = self.persistent(pid)?;
                self.push(storage, 0)
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?.value;
                let v = value::reduce(callable, args.value)?;
                self.push(v, args.depth)
            }
            b'b' => self.build(),
            other => Err(unsupported(other)),
        }
    }

    /// BUILD: an OrderedDict's state is its attributes (a state dict's `_metadata`), not
    /// items: nothing a tensor needs. Any other BUILD is refused.
    fn build(&mut self) -> Result<(), String> {
        let state = self.pop()?.value;
        let target = self.top_mut()?;
        match (&target.value, state) {
            (Value::Dict(_), Value::Dict(_) | Value::None) => Ok(()),
            (t, s) => Err(format!(
                "BUILD of a {} with a {}",
                t.type_name(),
                s.type_name()
            )),
        }
    }
}

fn unsupported(op: u8) -> String {
    format!("unsupported pickle opcode 0x{op:02x}")
}

/// A LONG1/LONG4 payload: little-endian two's complement.
fn long(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Int(0)
    } else if bytes.len() <= 8 {
        let fill = if bytes[bytes.len() - 1] & 0x80 != 0 {
            0xFF
        } else {
            0
        };
        let mut wide = [fill; 8];
        wide[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(wide))
    } else {
        Value::BigInt
    }
}

/// Unpickles one pickle at the start of `data` (already passed by [`super::scan::scan`]);
/// returns the value and the offset just past its `STOP`. `resolve` is called once per
/// storage a persistent id names, before any tensor is built on it.
pub fn unpickle(data: &[u8], resolve: &mut StorageResolver<'_>) -> Result<(Value, usize), String> {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        copied: 0,
        storages: HashMap::new(),
        resolve,
    };
    loop {
        let at = m.pos;
        match m.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(format!("byte {at}: {e}")),
        }
    }
    let end = m.pos;
    let value = m.pop().map_err(|e| format!("byte {end}: {e}"))?.value;
    if !m.stack.is_empty() || !m.marks.is_empty() {
        return Err(format!("byte {end}: values left on the stack at STOP"));
    }
    Ok((value, end))
}

#[cfg(test)]
mod tests {
    use super::super::value::Key;
    use super::*;

    fn run(data: &[u8]) -> Result<Value, String> {
        let mut ok = |_: &Storage| Ok(());
        unpickle(data, &mut ok).map(|(v, _)| v)
    }

    #[test]
    fn ordered_dict_keeps_order_and_ignores_attributes() {
        // OrderedDict() with items b=1, a=2, then BUILD({'_metadata': {}}).
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00bK\x01X\x01\x00\x00\x00aK\x02u}X\t\x00\x00\x00_metadata}sb.";
        let Value::Dict(d) = run(p).unwrap() else {
            panic!("not a dict")
        };
        let keys: Vec<_> = d.items.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, [Key::Str("b".into()), Key::Str("a".into())]);
    }

    #[test]
    fn nesting_and_memo_copies_are_bounded() {
        let mut deep = b"\x80\x02".to_vec();
        deep.extend([b']'; 200]);
        deep.extend([b'a'; 199]);
        deep.push(b'.');
        assert!(run(&deep).unwrap_err().contains("nest deeper"));
        // Memo gets share: a list of 1000 Nones fetched back a million times costs nothing...
        let mut shared = b"\x80\x02(".to_vec();
        shared.extend(std::iter::repeat_n(b'N', 1000));
        shared.extend(b"lq\x00(");
        for _ in 0..1_000_000 {
            shared.extend(b"h\x00");
        }
        shared.extend(b"l0.");
        assert!(run(&shared).is_ok());
        // ...but mutating each copy would copy it, which is bounded.
        let mut bomb = b"\x80\x02(".to_vec();
        bomb.extend(std::iter::repeat_n(b'N', 1000));
        bomb.extend(b"lq\x00");
        for _ in 0..100_000 {
            bomb.extend(b"h\x00Na0");
        }
        bomb.push(b'.');
        assert!(run(&bomb)
            .unwrap_err()
            .contains("copies of shared containers"));
    }
}
