//! Reading tensors out of safetensors files: a model directory's shards (memory-mapped, with or
//! without `model.safetensors.index.json`) or an adapter's bytes. Every tensor is checked
//! against the shape the caller expects and converted to f32, the CPU kernels' type.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::tensor::{Dtype, SafeTensors, TensorInfo};

use crate::{Error, Result};

/// Bytes that hold one safetensors file.
#[derive(Debug)]
enum Buffer {
    Mapped(memmap2::Mmap),
    Owned(Arc<Vec<u8>>),
}

impl Buffer {
    fn bytes(&self) -> &[u8] {
        match self {
            Buffer::Mapped(m) => m,
            Buffer::Owned(v) => v,
        }
    }
}

#[derive(Debug)]
struct Shard {
    name: String,
    buffer: Buffer,
    data_start: usize,
    tensors: HashMap<String, TensorInfo>,
}

impl Shard {
    fn parse(name: String, buffer: Buffer) -> Result<Shard> {
        let (header, meta) = SafeTensors::read_metadata(buffer.bytes()).map_err(|e| {
            Error::BadModel(format!("{name} is not a valid safetensors file: {e:?}"))
        })?;
        let tensors = meta
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        Ok(Shard {
            name,
            buffer,
            data_start: 8 + header,
            tensors,
        })
    }
}

/// A set of safetensors shards, looked up by tensor name.
#[derive(Debug)]
pub struct Tensors {
    shards: Vec<Shard>,
    index: HashMap<String, usize>,
}

impl Tensors {
    /// Every `*.safetensors` of a model directory (the index file, when present, names them).
    pub fn open_dir(dir: &Path) -> Result<Tensors> {
        let index_path = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index_path.exists() {
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::BadModel(format!("model.safetensors.index.json is not JSON: {e}"))
            })?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| {
                    Error::BadModel("model.safetensors.index.json has no weight_map".into())
                })?;
            let mut names: Vec<&str> = map.values().filter_map(|f| f.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            for n in &names {
                if n.contains('/') || n.contains("..") {
                    return Err(Error::BadModel(format!(
                        "weight_map names a bad file {n:?}"
                    )));
                }
            }
            names.iter().map(|n| dir.join(n)).collect()
        } else {
            let mut found = Vec::new();
            let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            for e in entries {
                let p = e.map_err(|e| Error::io(dir, e))?.path();
                if p.extension().is_some_and(|x| x == "safetensors") {
                    found.push(p);
                }
            }
            found.sort();
            found
        };
        if files.is_empty() {
            return Err(Error::BadModel(format!(
                "{} has no *.safetensors weights",
                dir.display()
            )));
        }
        let mut shards = Vec::new();
        for f in files {
            let file = File::open(&f).map_err(|e| Error::io(&f, e))?;
            // SAFETY: the map is read-only and the appliance owns the model directory; a file
            // changed underneath a running node is outside what it promises to survive.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&f, e))?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            shards.push(Shard::parse(name, Buffer::Mapped(map))?);
        }
        Ok(Tensors::from_shards(shards))
    }

    /// One safetensors file held in memory (an adapter).
    pub fn from_bytes(name: &str, bytes: Arc<Vec<u8>>) -> Result<Tensors> {
        let shard = Shard::parse(name.to_string(), Buffer::Owned(bytes))?;
        Ok(Tensors::from_shards(vec![shard]))
    }

    fn from_shards(shards: Vec<Shard>) -> Tensors {
        let mut index = HashMap::new();
        for (i, s) in shards.iter().enumerate() {
            for k in s.tensors.keys() {
                index.insert(k.clone(), i);
            }
        }
        Tensors { shards, index }
    }

    /// Names of every tensor.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Whether a tensor exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The shape of a tensor.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        let s = &self.shards[*self.index.get(name)?];
        s.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// A tensor as f32, checked to have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (v, got) = self.get_any(name)?;
        if got != shape {
            return Err(Error::BadModel(format!(
                "tensor {name} has shape {got:?}, expected {shape:?}"
            )));
        }
        Ok(v)
    }

    /// The shard holding a tensor, its header entry and its bytes.
    fn raw(&self, name: &str) -> Result<(&Shard, &TensorInfo, &[u8])> {
        let i = *self
            .index
            .get(name)
            .ok_or_else(|| Error::BadModel(format!("tensor {name} is missing")))?;
        let shard = &self.shards[i];
        let info = &shard.tensors[name];
        let (a, b) = info.data_offsets;
        let bytes = &shard.buffer.bytes()[shard.data_start + a..shard.data_start + b];
        Ok((shard, info, bytes))
    }

    /// An integer tensor (i64 or i32) with its shape, for token ids in fixtures.
    pub fn get_ids(&self, name: &str) -> Result<(Vec<i64>, Vec<usize>)> {
        let (_, info, bytes) = self.raw(name)?;
        let v = match info.dtype {
            Dtype::I64 => bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            Dtype::I32 => bytes
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            other => {
                return Err(Error::BadModel(format!(
                    "tensor {name} is {other:?}, not integers"
                )));
            }
        };
        Ok((v, info.shape.clone()))
    }

    /// A tensor as f32 with whatever shape it has.
    pub fn get_any(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let (shard, info, bytes) = self.raw(name)?;
        let n: usize = info.shape.iter().product();
        let v = to_f32(bytes, info.dtype, n)
            .map_err(|why| Error::BadModel(format!("tensor {name} in {}: {why}", shard.name)))?;
        Ok((v, info.shape.clone()))
    }
}

/// Convert little-endian f32/bf16/f16 bytes to f32.
fn to_f32(bytes: &[u8], dtype: Dtype, n: usize) -> std::result::Result<Vec<f32>, String> {
    let width = match dtype {
        Dtype::F32 => 4,
        Dtype::BF16 | Dtype::F16 => 2,
        other => {
            return Err(format!(
                "dtype {other:?} is not supported (f32, bf16, f16 are)"
            ));
        }
    };
    if bytes.len() != n * width {
        return Err(format!(
            "holds {} bytes for {n} elements of {width} bytes",
            bytes.len()
        ));
    }
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
    })
}

/// Write f32 tensors as one safetensors file (the dev model and test adapters use this).
pub fn write_f32(tensors: &[(String, Vec<usize>, &[f32])]) -> Result<Vec<u8>> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let bytes: &[u8] = bytemuck_f32(data);
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::BadModel(format!("tensor {name}: {e:?}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::BadModel(format!("{e:?}")))
}

/// Write tensors as one bf16 safetensors file (how adapters usually ship: half the bytes).
pub fn write_bf16(tensors: &[(String, Vec<usize>, &[f32])]) -> Result<Vec<u8>> {
    let bufs: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| {
            d.iter()
                .flat_map(|x| half::bf16::from_f32(*x).to_bits().to_le_bytes())
                .collect()
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bufs)
        .map(|((name, shape, _), b)| {
            safetensors::tensor::TensorView::new(Dtype::BF16, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::BadModel(format!("tensor {name}: {e:?}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::BadModel(format!("{e:?}")))
}

fn bytemuck_f32(data: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding or invalid bit patterns, u8 has alignment 1, and the length
    // covers exactly the same memory. safetensors stores little-endian, as every target the
    // appliance builds for is.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bytes = write_f32(&[("w".into(), vec![2, 3], &a)]).expect("write");
        let t = Tensors::from_bytes("t", Arc::new(bytes.clone())).expect("parse");
        assert_eq!(t.get("w", &[2, 3]).expect("get"), a.to_vec());
        let e = t.get("w", &[3, 2]).expect_err("must be refused");
        assert!(e.to_string().contains("expected [3, 2]"), "{e}");
        assert!(
            t.get("nope", &[1])
                .expect_err("must be refused")
                .to_string()
                .contains("missing")
        );
        // Truncated file.
        let cut = bytes[..bytes.len() - 4].to_vec();
        let e = Tensors::from_bytes("cut", Arc::new(cut)).expect_err("must be refused");
        assert!(e.to_string().contains("not a valid safetensors"), "{e}");
        // Header offsets beyond the data.
        let mut bad = bytes.clone();
        let s = String::from_utf8_lossy(&bad).into_owned();
        if let Some(p) = s.find("[0,24]") {
            bad[p..p + 6].copy_from_slice(b"[0,99]");
        }
        assert!(Tensors::from_bytes("bad", Arc::new(bad)).is_err());
    }
}
