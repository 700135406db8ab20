//! Reading and writing named tch tensors as safetensors, with string metadata in the header.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::{Device, Kind, Tensor};

use super::CheckpointError;

/// Tensors in file order plus the header's string metadata.
#[derive(Debug, Default)]
pub struct NamedTensors {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

impl NamedTensors {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// A CPU, contiguous copy of a tensor's bytes, as safetensors wants them.
struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn to_dtype(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn to_kind(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

fn tensor_bytes(path: &Path, name: &str, t: &Tensor) -> Result<TensorBytes, CheckpointError> {
    let err = |message: String| CheckpointError::Tensor {
        path: path.to_path_buf(),
        name: name.to_string(),
        message,
    };
    let kind = t.f_kind().map_err(|e| err(e.to_string()))?;
    let dtype = to_dtype(kind).ok_or_else(|| err(format!("dtype {kind:?} cannot be saved")))?;
    let t = t.to_device(Device::Cpu).contiguous();
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut bytes, numel)
        .map_err(|e| err(e.to_string()))?;
    let shape = t.size().iter().map(|&d| d as usize).collect();
    Ok(TensorBytes {
        dtype,
        shape,
        bytes,
    })
}

/// Writes `tensors` and `metadata` to `path` atomically (a crash leaves the old file intact).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, &Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let views = tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), tensor_bytes(path, name, t)?)))
        .collect::<Result<Vec<_>, CheckpointError>>()?;
    let info = (!metadata.is_empty()).then(|| metadata.clone());
    let bytes = safetensors::tensor::serialize(views.iter().map(|(n, v)| (n.as_str(), v)), info)
        .map_err(|e| CheckpointError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    crate::atomic_write::write(path, &bytes).map_err(|source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every tensor of a safetensors file onto the CPU, in the file's data order.
pub fn read_safetensors(path: &Path) -> Result<NamedTensors, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |e: safetensors::SafeTensorError| CheckpointError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(format)?;
    let st = SafeTensors::deserialize(&bytes).map_err(format)?;
    let mut views: Vec<_> = st.iter().collect();
    views.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    let mut tensors = Vec::with_capacity(views.len());
    for (name, view) in views {
        let kind = to_kind(view.dtype()).ok_or_else(|| CheckpointError::UnsupportedDtype {
            path: path.to_path_buf(),
            name: name.to_string(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind).map_err(|e| {
            CheckpointError::Tensor {
                path: path.to_path_buf(),
                name: name.to_string(),
                message: e.to_string(),
            }
        })?;
        tensors.push((name.to_string(), t));
    }
    Ok(NamedTensors {
        tensors,
        metadata: meta.metadata().clone().unwrap_or_default(),
    })
}
