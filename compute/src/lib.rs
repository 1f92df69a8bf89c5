//! commons-compute: the model runtime (candle, with CUDA behind the `cuda` feature), OpenLoRA
//! multi-adapter serving, ModelFactory LoRA training and the attribution engine. It owns the
//! model and KV cache on its own thread and answers over channels; it knows nothing of the
//! ledger or HTTP.
//!
//! Not built yet: the OpenLoRA issues fill this crate.
