//! commons-compute: the model runtime and OpenLoRA multi-adapter serving.
//!
//! It loads Hugging Face-format causal LMs (`config.json` + safetensors + `tokenizer.json`),
//! reads PEFT LoRA adapters, and runs an engine thread that owns the model, the paged KV cache
//! and the resident adapters, batching requests for different adapters into one forward pass
//! (continuous batching). Callers talk to it over channels; it knows nothing of the ledger,
//! storage layout or HTTP. The CPU kernels here are batch-invariant, so a request's tokens do
//! not depend on what it was batched with; the GPU backend sits behind the `cuda` feature.

mod error;

pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
pub mod devmodel;
pub mod engine;
pub mod kernels;
pub mod kv;
pub mod lora;
pub mod model;
pub mod pool;
pub mod punica;
pub mod sampling;
pub mod tokenizer;
pub mod weights;

pub use error::{Error, Result};
