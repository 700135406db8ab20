//! The values a `torch.save` pickle holds, and the few torch calls that build them, each
//! interpreted here (nothing is ever called): `OrderedDict`, `_rebuild_tensor_v2` (checked to
//! lie within its storage) and `_rebuild_parameter`; the storage classes only appear inside
//! persistent ids.

use std::collections::HashMap;
use std::rc::Rc;

use tch::Kind;

/// Element types of the typed storages `torch.save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    fn from_storage(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> u64 {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::F64 => Kind::Double,
            Self::F32 => Kind::Float,
            Self::F16 => Kind::Half,
            Self::BF16 => Kind::BFloat16,
            Self::I64 => Kind::Int64,
            Self::I32 => Kind::Int,
            Self::I16 => Kind::Int16,
            Self::I8 => Kind::Int8,
            Self::U8 => Kind::Uint8,
            Self::Bool => Kind::Bool,
        }
    }
}

/// A storage a persistent id names: its key in the container, element type and size.
#[derive(Debug, PartialEq, Eq)]
pub struct Storage {
    pub key: String,
    pub dtype: Dtype,
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it, already checked to lie within its storage.
#[derive(Debug)]
pub struct TensorRef {
    pub storage: Rc<Storage>,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
    /// One past the last storage element the view reads (`offset` when it is empty).
    pub extent: u64,
    pub numel: u64,
}

impl TensorRef {
    pub fn byte_len(&self) -> u64 {
        self.numel * self.storage.dtype.size()
    }
}

/// A dict key: `torch.save` writes str keys (state dicts) and int keys (optimiser state).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Str(Rc<str>),
    Int(i64),
}

#[derive(Debug, Clone)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(Dtype),
}

/// An insertion-ordered dict (a later value for a key replaces the earlier one in place).
#[derive(Debug, Clone, Default)]
pub struct Dict {
    pub items: Vec<(Key, Value)>,
    index: HashMap<Key, usize>,
}

impl Dict {
    pub fn insert(&mut self, key: Key, value: Value) {
        match self.index.get(&key) {
            Some(&i) => self.items[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push((key, value));
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index
            .get(&Key::Str(key.into()))
            .map(|&i| &self.items[i].1)
    }
}

/// A pickled value. Containers are shared (`Rc`) and copied on write, so memo gets and
/// `DUP` cost nothing; a container is only ever mutated while it is a top-level stack slot.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An int too wide for i64 (never needed for a state dict).
    BigInt,
    #[allow(dead_code)] // parsed faithfully; no caller needs a float yet
    Float(f64),
    Str(Rc<str>),
    /// Bytes are never needed; only their presence is kept.
    Bytes,
    Tuple(Rc<Vec<Value>>),
    List(Rc<Vec<Value>>),
    Dict(Rc<Dict>),
    Global(Global),
    Storage(Rc<Storage>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}

fn int_of(v: &Value, what: &str) -> Result<u64, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Bool(b) => Ok(u64::from(*b)),
        other => Err(format!(
            "{what} must be a non-negative int, got {}",
            describe(other)
        )),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("int {i}"),
        other => other.type_name().to_string(),
    }
}

fn dims(v: &Value, what: &str) -> Result<Vec<u64>, String> {
    match v {
        Value::Tuple(items) | Value::List(items) => items.iter().map(|d| int_of(d, what)).collect(),
        other => Err(format!("{what} must be a tuple, got {}", other.type_name())),
    }
}

pub fn key_of(v: Value) -> Result<Key, String> {
    match v {
        Value::Str(s) => Ok(Key::Str(s)),
        Value::Int(i) => Ok(Key::Int(i)),
        Value::Bool(b) => Ok(Key::Int(i64::from(b))),
        other => Err(format!(
            "unsupported dict key of type {}",
            other.type_name()
        )),
    }
}

/// Checks a strided view against its storage; returns (extent, numel).
fn view_extent(
    shape: &[u64],
    stride: &[u64],
    offset: u64,
    storage: &Storage,
) -> Result<(u64, u64), String> {
    if shape.len() != stride.len() {
        return Err(format!(
            "tensor shape {shape:?} and stride {stride:?} differ in rank"
        ));
    }
    let overflow = || format!("tensor shape {shape:?} with stride {stride:?} overflows");
    if shape.iter().chain(stride).any(|&d| d > i64::MAX as u64) {
        return Err(overflow());
    }
    let numel = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .ok_or_else(overflow)?;
    let extent = if numel == 0 {
        offset
    } else {
        shape
            .iter()
            .zip(stride)
            .try_fold(offset, |end, (&d, &s)| {
                end.checked_add((d - 1).checked_mul(s)?)
            })
            .and_then(|last| last.checked_add(1))
            .ok_or_else(overflow)?
    };
    if extent > storage.numel {
        return Err(format!(
            "tensor of shape {shape:?}, stride {stride:?} at offset {offset} reads {extent} \
             elements of storage {}, which holds {}",
            storage.key, storage.numel
        ));
    }
    numel
        .checked_mul(storage.dtype.size())
        .ok_or_else(overflow)?;
    Ok((extent, numel))
}

/// The value of an allowed global (the pre-scan has refused every other one already).
pub fn global(module: &str, name: &str) -> Result<Value, String> {
    Ok(Value::Global(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", storage) => Global::Storage(
            Dtype::from_storage(storage)
                .ok_or_else(|| format!("forbidden global torch.{storage}"))?,
        ),
        _ => return Err(format!("forbidden global {module}.{name}")),
    }))
}

/// The storage a `('storage', torch.*Storage, key, location, size)` persistent id names.
pub fn storage_from_pid(pid: Value) -> Result<Storage, String> {
    let Value::Tuple(fields) = pid else {
        return Err(format!(
            "persistent id is a {}, not a tuple",
            pid.type_name()
        ));
    };
    let [Value::Str(tag), Value::Global(Global::Storage(dtype)), key, _location, numel, rest @ ..] =
        fields.as_slice()
    else {
        return Err(
            "persistent id is not ('storage', torch.*Storage, key, location, size)".to_string(),
        );
    };
    if &**tag != "storage" || !rest.iter().all(|v| matches!(v, Value::None)) || rest.len() > 1 {
        return Err(
            "persistent id is not ('storage', torch.*Storage, key, location, size)".to_string(),
        );
    }
    let key = match key {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        other => return Err(format!("storage key is a {}", other.type_name())),
    };
    Ok(Storage {
        key,
        dtype: *dtype,
        numel: int_of(numel, "storage size")?,
    })
}

/// `REDUCE`: the only calls a state dict needs, interpreted (nothing is ever called).
pub fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(global) = callable else {
        return Err(format!("REDUCE calls a {}", callable.type_name()));
    };
    let Value::Tuple(args) = args else {
        return Err("REDUCE arguments are not a tuple".to_string());
    };
    match global {
        Global::OrderedDict => {
            let mut dict = Dict::default();
            match args.as_slice() {
                [] => {}
                [Value::List(pairs) | Value::Tuple(pairs)] => {
                    for pair in pairs.iter() {
                        match pair {
                            Value::Tuple(kv) | Value::List(kv) if kv.len() == 2 => {
                                dict.insert(key_of(kv[0].clone())?, kv[1].clone());
                            }
                            _ => return Err("OrderedDict items are not pairs".to_string()),
                        }
                    }
                }
                _ => return Err("OrderedDict called with unexpected arguments".to_string()),
            }
            Ok(Value::Dict(Rc::new(dict)))
        }
        Global::RebuildTensorV2 => {
            if !(6..=7).contains(&args.len()) {
                return Err(format!(
                    "_rebuild_tensor_v2 takes 6 or 7 arguments, got {}",
                    args.len()
                ));
            }
            let Value::Storage(storage) = &args[0] else {
                return Err(format!(
                    "_rebuild_tensor_v2 expects a storage, got {}",
                    args[0].type_name()
                ));
            };
            let offset = int_of(&args[1], "storage offset")?;
            let shape = dims(&args[2], "tensor size")?;
            let stride = dims(&args[3], "tensor stride")?;
            match &args[5] {
                Value::Dict(hooks) if hooks.items.is_empty() => {}
                Value::None => {}
                _ => return Err("tensor carries backward hooks".to_string()),
            }
            let (extent, numel) = view_extent(&shape, &stride, offset, storage)?;
            Ok(Value::Tensor(Rc::new(TensorRef {
                storage: storage.clone(),
                offset,
                shape,
                stride,
                extent,
                numel,
            })))
        }
        Global::RebuildParameter => match args.first() {
            Some(Value::Tensor(t)) if args.len() == 3 => Ok(Value::Tensor(t.clone())),
            _ => Err("_rebuild_parameter expects (tensor, requires_grad, hooks)".to_string()),
        },
        Global::Storage(_) => Err("REDUCE calls a storage class".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_must_fit_their_storage() {
        let s = Storage {
            key: "0".into(),
            dtype: Dtype::F32,
            numel: 6,
        };
        assert_eq!(view_extent(&[2, 3], &[3, 1], 0, &s).unwrap(), (6, 6));
        assert_eq!(view_extent(&[3, 2], &[1, 3], 0, &s).unwrap(), (6, 6));
        assert_eq!(view_extent(&[0, 3], &[3, 1], 6, &s).unwrap(), (6, 0));
        assert!(view_extent(&[2, 3], &[3, 1], 1, &s).is_err());
        assert!(view_extent(&[u64::MAX, 2], &[2, 1], 0, &s).is_err());
        assert!(view_extent(&[2], &[1, 1], 0, &s).is_err());
    }
}
