//! A model's `config.json`, read the way Hugging Face transformers reads it, reduced to what
//! the runtime needs. Older (`rope_theta`, `rope_scaling`, `torch_dtype`) and newer
//! (`rope_parameters`, `dtype`) spellings are both accepted.

use serde_json::Value;

use crate::{Error, Result};

/// The decoder families the runtime implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3 (and DeepSeek's dense models, which ship as `LlamaForCausalLM`).
    Llama,
    /// Mistral: Llama with a sliding attention window.
    Mistral,
    /// Qwen2 / Qwen2.5: Llama with q/k/v biases.
    Qwen2,
    /// Qwen3: per-head RMS norms on q and k, explicit head_dim.
    Qwen3,
    /// Gemma: scaled embeddings, (1 + w) norms, tanh-GELU.
    Gemma,
    /// Gemma 2: Gemma plus logit soft-capping, sandwich norms, alternating sliding layers.
    Gemma2,
}

impl Arch {
    /// The `model_type` string of this family.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Mistral => "mistral",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma => "gemma",
            Arch::Gemma2 => "gemma2",
        }
    }

    fn from_model_type(t: &str) -> Option<Arch> {
        Some(match t {
            "llama" | "deepseek" => Arch::Llama,
            "mistral" => Arch::Mistral,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma" => Arch::Gemma,
            "gemma2" => Arch::Gemma2,
            _ => return None,
        })
    }

    /// Families recognised by name but not implemented yet; loading them is refused with a
    /// message that says so rather than "unknown".
    pub const NOT_YET: &'static [&'static str] = &["falcon", "bloom", "chatglm", "deepseek_v2"];
}

/// The MLP's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// x · sigmoid(x)
    Silu,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
    /// GELU, exact (erf).
    Gelu,
}

/// How rotary frequencies are scaled for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Positions divided by `factor`.
    Linear {
        /// The divisor.
        factor: f32,
    },
    /// Llama 3's frequency-band scaling.
    Llama3 {
        /// Overall factor.
        factor: f32,
        /// Low-frequency factor.
        low_freq_factor: f32,
        /// High-frequency factor.
        high_freq_factor: f32,
        /// Context length the model was trained at.
        original_max_position_embeddings: f32,
    },
}

/// What the runtime needs from `config.json`.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The decoder family.
    pub arch: Arch,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Longest context the model takes.
    pub max_position_embeddings: usize,
    /// RoPE base.
    pub rope_theta: f32,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Norm epsilon.
    pub norm_eps: f32,
    /// The output projection is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry a bias.
    pub attention_bias: bool,
    /// The MLP activation.
    pub activation: Activation,
    /// Sliding attention window, for the layers that use one.
    pub sliding_window: Option<usize>,
    /// Gemma 2: cap on attention scores.
    pub attn_logit_softcapping: Option<f32>,
    /// Gemma 2: cap on the final logits.
    pub final_logit_softcapping: Option<f32>,
    /// Gemma 2: attention scale is `query_pre_attn_scalar^-0.5`.
    pub query_pre_attn_scalar: Option<f32>,
    /// Per layer: whether it uses the sliding window.
    pub sliding_layers: Vec<bool>,
    /// Token ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// Beginning-of-sequence token id.
    pub bos_token_id: Option<u32>,
    /// The dtype the checkpoint declares (informational; weights are read as stored).
    pub dtype: String,
}

fn get_usize(v: &Value, key: &str) -> Option<usize> {
    v.get(key).and_then(Value::as_u64).map(|x| x as usize)
}

fn get_f32(v: &Value, key: &str) -> Option<f32> {
    v.get(key).and_then(Value::as_f64).map(|x| x as f32)
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl ModelConfig {
    /// Parse `config.json` text.
    pub fn parse(text: &str) -> Result<ModelConfig> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::BadModel(format!("config.json is not valid JSON: {e}")))?;
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadModel("config.json has no model_type".into()))?;
        let arch = match Arch::from_model_type(model_type) {
            Some(a) => a,
            None if Arch::NOT_YET.contains(&model_type) => {
                return Err(Error::Unsupported(format!(
                    "the {model_type} architecture is not supported yet (see README's support table)"
                )));
            }
            None => {
                return Err(Error::Unsupported(format!(
                    "unknown model_type {model_type:?}: supported are llama, mistral, qwen2, qwen3, gemma, gemma2"
                )));
            }
        };
        let need = |key: &str| {
            get_usize(&v, key)
                .filter(|&x| x > 0)
                .ok_or_else(|| Error::BadModel(format!("config.json lacks a positive {key}")))
        };
        let hidden_size = need("hidden_size")?;
        let num_heads = need("num_attention_heads")?;
        let num_layers = need("num_hidden_layers")?;
        let num_kv_heads = get_usize(&v, "num_key_value_heads")
            .filter(|&x| x > 0)
            .unwrap_or(num_heads);
        if !num_heads.is_multiple_of(num_kv_heads) {
            return Err(Error::BadModel(format!(
                "num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"
            )));
        }
        let head_dim = get_usize(&v, "head_dim")
            .filter(|&x| x > 0)
            .unwrap_or(hidden_size / num_heads);
        if !head_dim.is_multiple_of(2) {
            return Err(Error::BadModel(format!("head_dim {head_dim} is odd")));
        }
        let rope = v.get("rope_parameters");
        let rope_theta = rope
            .and_then(|r| get_f32(r, "rope_theta"))
            .or_else(|| get_f32(&v, "rope_theta"))
            .unwrap_or(10000.0);
        let scaling = rope
            .filter(|r| r.get("rope_type").is_some())
            .or_else(|| v.get("rope_scaling").filter(|r| !r.is_null()));
        let rope_scaling = match scaling {
            None => RopeScaling::None,
            Some(s) => {
                let kind = s
                    .get("rope_type")
                    .or_else(|| s.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                match kind {
                    "default" => RopeScaling::None,
                    "linear" => RopeScaling::Linear {
                        factor: get_f32(s, "factor").unwrap_or(1.0),
                    },
                    "llama3" => RopeScaling::Llama3 {
                        factor: get_f32(s, "factor").unwrap_or(8.0),
                        low_freq_factor: get_f32(s, "low_freq_factor").unwrap_or(1.0),
                        high_freq_factor: get_f32(s, "high_freq_factor").unwrap_or(4.0),
                        original_max_position_embeddings: get_f32(
                            s,
                            "original_max_position_embeddings",
                        )
                        .unwrap_or(8192.0),
                    },
                    other => {
                        return Err(Error::Unsupported(format!(
                            "rope scaling {other:?} is not supported (default, linear, llama3 are)"
                        )));
                    }
                }
            }
        };
        let act_name = v
            .get("hidden_activation")
            .or_else(|| v.get("hidden_act"))
            .and_then(Value::as_str)
            .unwrap_or(match arch {
                Arch::Gemma | Arch::Gemma2 => "gelu_pytorch_tanh",
                _ => "silu",
            });
        let activation = match act_name {
            "silu" | "swish" => Activation::Silu,
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Activation::GeluTanh,
            // Gemma's original configs say "gelu" but every implementation uses the tanh form.
            "gelu" if matches!(arch, Arch::Gemma | Arch::Gemma2) => Activation::GeluTanh,
            "gelu" => Activation::Gelu,
            other => {
                return Err(Error::Unsupported(format!(
                    "activation {other:?} is not supported"
                )));
            }
        };
        let sliding_window = match arch {
            Arch::Mistral | Arch::Gemma2 | Arch::Qwen2 | Arch::Qwen3 => {
                get_usize(&v, "sliding_window")
            }
            _ => None,
        };
        // Qwen2/3 only slide when asked to; Gemma 2 slides on every other layer.
        let use_sliding = match arch {
            Arch::Qwen2 | Arch::Qwen3 => v
                .get("use_sliding_window")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            _ => sliding_window.is_some(),
        };
        let sliding_layers = match v.get("layer_types").and_then(Value::as_array) {
            Some(types) if types.len() == num_layers => types
                .iter()
                .map(|t| t.as_str() == Some("sliding_attention") && sliding_window.is_some())
                .collect(),
            _ => (0..num_layers)
                .map(|i| {
                    use_sliding
                        && match arch {
                            Arch::Gemma2 => i.is_multiple_of(2),
                            _ => true,
                        }
                })
                .collect(),
        };
        let tie_default = matches!(arch, Arch::Gemma | Arch::Gemma2);
        Ok(ModelConfig {
            arch,
            hidden_size,
            intermediate_size: need("intermediate_size")?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: need("vocab_size")?,
            max_position_embeddings: get_usize(&v, "max_position_embeddings").unwrap_or(4096),
            rope_theta,
            rope_scaling,
            norm_eps: get_f32(&v, "rms_norm_eps").unwrap_or(1e-6),
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(tie_default),
            attention_bias: v
                .get("attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(arch == Arch::Qwen2),
            activation,
            sliding_window,
            attn_logit_softcapping: get_f32(&v, "attn_logit_softcapping")
                .filter(|_| arch == Arch::Gemma2),
            final_logit_softcapping: get_f32(&v, "final_logit_softcapping")
                .filter(|_| arch == Arch::Gemma2),
            query_pre_attn_scalar: get_f32(&v, "query_pre_attn_scalar")
                .filter(|_| arch == Arch::Gemma2),
            sliding_layers,
            eos_token_ids: ids(v.get("eos_token_id")),
            bos_token_id: ids(v.get("bos_token_id")).first().copied(),
            dtype: v
                .get("dtype")
                .or_else(|| v.get("torch_dtype"))
                .and_then(Value::as_str)
                .unwrap_or("float32")
                .to_string(),
        })
    }

    /// Parameters in the checkpoint (embedding and output counted once when tied).
    pub fn parameter_count(&self) -> usize {
        let h = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let per_layer = h * q + 2 * h * kv + q * h + 3 * h * self.intermediate_size + 2 * h;
        let emb = self.vocab_size * h;
        emb * if self.tie_word_embeddings { 1 } else { 2 } + per_layer * self.num_layers + h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_old_and_new_spellings() {
        let old = r#"{"model_type":"llama","hidden_size":64,"intermediate_size":128,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
            "vocab_size":100,"rope_theta":500000.0,"torch_dtype":"bfloat16",
            "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
            "high_freq_factor":4.0,"original_max_position_embeddings":8192},
            "eos_token_id":[1,2]}"#;
        let c = ModelConfig::parse(old).expect("parse");
        assert_eq!(c.arch, Arch::Llama);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.rope_theta, 500000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { .. }));
        assert_eq!(c.eos_token_ids, vec![1, 2]);
        assert_eq!(c.dtype, "bfloat16");
        let new = r#"{"model_type":"gemma2","hidden_size":64,"intermediate_size":128,
            "num_hidden_layers":4,"num_attention_heads":4,"vocab_size":100,
            "rope_parameters":{"rope_theta":10000.0,"rope_type":"default"},
            "sliding_window":4096,"dtype":"float32"}"#;
        let c = ModelConfig::parse(new).expect("parse");
        assert_eq!(c.sliding_layers, vec![true, false, true, false]);
        assert_eq!(c.activation, Activation::GeluTanh);
        assert!(c.tie_word_embeddings);
    }

    #[test]
    fn refuses_unknown_and_not_yet() {
        let e = ModelConfig::parse(r#"{"model_type":"bloom"}"#).expect_err("must be refused");
        assert!(e.to_string().contains("not supported yet"), "{e}");
        let e = ModelConfig::parse(r#"{"model_type":"gpt9"}"#).expect_err("must be refused");
        assert!(e.to_string().contains("unknown model_type"), "{e}");
        let e = ModelConfig::parse(r#"{"model_type":"llama","hidden_size":64}"#)
            .expect_err("must be refused");
        assert!(e.to_string().contains("num_attention_heads"), "{e}");
    }
}
