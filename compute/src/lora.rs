//! LoRA adapters in the PEFT format and the batched LoRA kernel.
//!
//! An adapter is read from `adapter_config.json` + `adapter_model.safetensors`, checked against
//! the base model (every module it trains must be one the runtime applies, every shape must
//! fit), and kept as f32 `A` and pre-scaled `B` per (layer, projection). Anything the runtime
//! would otherwise silently ignore — embeddings, `lm_head`, `modules_to_save`, DoRA, LoRA
//! biases — is refused with an error that names it.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::config::ModelConfig;
use crate::kernels::matmul_t;
use crate::weights::Tensors;
use crate::{Error, Result};

/// Largest rank accepted.
pub const MAX_RANK: usize = 256;

/// The projections of a decoder layer that LoRA may adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proj {
    /// Query.
    Q = 0,
    /// Key.
    K = 1,
    /// Value.
    V = 2,
    /// Attention output.
    O = 3,
    /// MLP gate.
    Gate = 4,
    /// MLP up.
    Up = 5,
    /// MLP down.
    Down = 6,
}

impl Proj {
    /// All seven, in index order.
    pub const ALL: [Proj; 7] = [
        Proj::Q,
        Proj::K,
        Proj::V,
        Proj::O,
        Proj::Gate,
        Proj::Up,
        Proj::Down,
    ];

    /// The module name checkpoints and PEFT use.
    pub fn module_name(self) -> &'static str {
        match self {
            Proj::Q => "q_proj",
            Proj::K => "k_proj",
            Proj::V => "v_proj",
            Proj::O => "o_proj",
            Proj::Gate => "gate_proj",
            Proj::Up => "up_proj",
            Proj::Down => "down_proj",
        }
    }

    fn from_name(s: &str) -> Option<Proj> {
        Proj::ALL.into_iter().find(|p| p.module_name() == s)
    }

    /// (in_features, out_features) of this projection in `cfg`.
    pub fn dims(self, cfg: &ModelConfig) -> (usize, usize) {
        let h = cfg.hidden_size;
        let q = cfg.num_heads * cfg.head_dim;
        let kv = cfg.num_kv_heads * cfg.head_dim;
        match self {
            Proj::Q => (h, q),
            Proj::K | Proj::V => (h, kv),
            Proj::O => (q, h),
            Proj::Gate | Proj::Up => (h, cfg.intermediate_size),
            Proj::Down => (cfg.intermediate_size, h),
        }
    }
}

/// One adapted projection: `y += B · (A · x)`, with the LoRA scale folded into `B`.
#[derive(Debug)]
pub struct LoraPair {
    /// `[rank × in]`
    pub a: Vec<f32>,
    /// `[out × rank]`, already multiplied by the scale.
    pub b: Vec<f32>,
    /// The rank.
    pub rank: usize,
    /// The scale that was folded in.
    pub scale: f32,
}

/// A loaded adapter, ready for the kernel.
#[derive(Debug)]
pub struct Adapter {
    /// Per layer, per [`Proj`] index.
    pub layers: Vec<[Option<LoraPair>; 7]>,
    /// Largest rank over its modules.
    pub max_rank: usize,
    /// The projections it adapts.
    pub targets: Vec<Proj>,
    /// Bytes its weights take in memory.
    pub bytes: usize,
}

/// What `adapter_config.json` says, reduced to what the runtime needs.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    /// Default rank.
    pub r: usize,
    /// Default alpha.
    pub alpha: f32,
    /// alpha / sqrt(r) instead of alpha / r.
    pub use_rslora: bool,
    /// Per-module rank overrides (pattern → rank).
    pub rank_pattern: Vec<(regex::Regex, String, usize)>,
    /// Per-module alpha overrides (pattern → alpha).
    pub alpha_pattern: Vec<(regex::Regex, String, f32)>,
    /// The base model it was trained on, as written.
    pub base_model: Option<String>,
}

fn pattern(key: &str) -> Result<regex::Regex> {
    regex::Regex::new(&format!(r"^(.*\.)?(?:{key})$"))
        .map_err(|e| Error::BadAdapter(format!("pattern {key:?} is not a valid pattern: {e}")))
}

impl AdapterConfig {
    /// Parse and vet `adapter_config.json`.
    pub fn parse(text: &str) -> Result<AdapterConfig> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::BadAdapter(format!("adapter_config.json is not JSON: {e}")))?;
        if let Some(t) = v.get("peft_type").and_then(Value::as_str)
            && t != "LORA"
        {
            return Err(Error::Unsupported(format!(
                "peft_type {t} is not supported (LORA is)"
            )));
        }
        if v.get("use_dora").and_then(Value::as_bool) == Some(true) {
            return Err(Error::Unsupported(
                "DoRA adapters (use_dora) are not supported".into(),
            ));
        }
        if let Some(b) = v.get("bias").and_then(Value::as_str)
            && b != "none"
        {
            return Err(Error::Unsupported(format!(
                "adapters that train biases (bias = {b:?}) are not supported"
            )));
        }
        if let Some(m) = v.get("modules_to_save").and_then(Value::as_array)
            && !m.is_empty()
        {
            let names: Vec<&str> = m.iter().filter_map(Value::as_str).collect();
            return Err(Error::Unsupported(format!(
                "adapter saves full copies of modules {names:?} (modules_to_save); only LoRA weights are applied"
            )));
        }
        if v.get("fan_in_fan_out").and_then(Value::as_bool) == Some(true) {
            return Err(Error::Unsupported(
                "fan_in_fan_out adapters are not supported".into(),
            ));
        }
        let r = v.get("r").and_then(Value::as_u64).unwrap_or(8) as usize;
        let alpha = v.get("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0) as f32;
        let mut rank_pattern = Vec::new();
        if let Some(m) = v.get("rank_pattern").and_then(Value::as_object) {
            for (k, r) in m {
                let r = r.as_u64().ok_or_else(|| {
                    Error::BadAdapter(format!("rank_pattern[{k}] is not a number"))
                })?;
                rank_pattern.push((pattern(k)?, k.clone(), r as usize));
            }
        }
        let mut alpha_pattern = Vec::new();
        if let Some(m) = v.get("alpha_pattern").and_then(Value::as_object) {
            for (k, a) in m {
                let a = a.as_f64().ok_or_else(|| {
                    Error::BadAdapter(format!("alpha_pattern[{k}] is not a number"))
                })?;
                alpha_pattern.push((pattern(k)?, k.clone(), a as f32));
            }
        }
        Ok(AdapterConfig {
            r,
            alpha,
            use_rslora: v
                .get("use_rslora")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            rank_pattern,
            alpha_pattern,
            base_model: v
                .get("base_model_name_or_path")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Rank and alpha for a module path like `model.layers.1.self_attn.v_proj`.
    fn rank_alpha(&self, module: &str) -> (usize, f32) {
        // An exact key wins over a pattern, as in PEFT.
        let pick = |exact: Option<usize>, first: Option<usize>| exact.or(first);
        let r = pick(
            self.rank_pattern.iter().position(|(_, k, _)| k == module),
            self.rank_pattern
                .iter()
                .position(|(re, _, _)| re.is_match(module)),
        )
        .map(|i| self.rank_pattern[i].2)
        .unwrap_or(self.r);
        let a = pick(
            self.alpha_pattern.iter().position(|(_, k, _)| k == module),
            self.alpha_pattern
                .iter()
                .position(|(re, _, _)| re.is_match(module)),
        )
        .map(|i| self.alpha_pattern[i].2)
        .unwrap_or(self.alpha);
        (r, a)
    }
}

impl Adapter {
    /// Read and check an adapter against the base model's config.
    pub fn load(config: &AdapterConfig, tensors: &Tensors, model: &ModelConfig) -> Result<Adapter> {
        let mut layers: Vec<[Option<LoraPair>; 7]> =
            (0..model.num_layers).map(|_| Default::default()).collect();
        let mut unknown = BTreeSet::new();
        let mut targets = BTreeSet::new();
        let mut names: Vec<&str> = tensors.names().collect();
        names.sort_unstable();
        let mut bytes = 0;
        for name in names {
            let path = name.strip_prefix("base_model.model.").unwrap_or(name);
            if path.contains("lora_embedding") || path.contains("embed_tokens") {
                return Err(Error::Unsupported(format!(
                    "adapter trains the token embedding ({name}); embedding adapters are not applied by this runtime"
                )));
            }
            if path.starts_with("lm_head") || path.contains(".lm_head.") {
                return Err(Error::Unsupported(format!(
                    "adapter trains lm_head ({name}); output-layer adapters are not applied by this runtime"
                )));
            }
            if path.contains("lora_magnitude_vector") {
                return Err(Error::Unsupported("DoRA adapters are not supported".into()));
            }
            let Some(module) = path.strip_suffix(".lora_A.weight") else {
                if path.ends_with(".lora_B.weight") {
                    continue;
                }
                return Err(Error::Unsupported(format!(
                    "adapter holds {name}, which is not a LoRA A/B weight (modules_to_save or biases are not applied)"
                )));
            };
            let proj_name = module.rsplit('.').next().unwrap_or(module);
            let Some(proj) = Proj::from_name(proj_name) else {
                unknown.insert(proj_name.to_string());
                continue;
            };
            let layer = module
                .split('.')
                .collect::<Vec<_>>()
                .windows(2)
                .find(|w| w[0] == "layers" || w[0] == "h")
                .and_then(|w| w[1].parse::<usize>().ok())
                .ok_or_else(|| Error::BadAdapter(format!("{name}: no layer index")))?;
            if layer >= model.num_layers {
                return Err(Error::BadAdapter(format!(
                    "{name}: layer {layer} but the base model has {} layers",
                    model.num_layers
                )));
            }
            let (in_f, out_f) = proj.dims(model);
            let (a, a_shape) = tensors.get_any(name).map_err(as_adapter)?;
            let b_name = format!("{}.lora_B.weight", name.trim_end_matches(".lora_A.weight"));
            let (mut b, b_shape) = tensors
                .get_any(&b_name)
                .map_err(|_| Error::BadAdapter(format!("{name} has no matching {b_name}")))?;
            let rank = a_shape.first().copied().unwrap_or(0);
            if rank == 0 || rank > MAX_RANK {
                return Err(Error::BadAdapter(format!(
                    "{name}: rank {rank} is outside 1..={MAX_RANK}"
                )));
            }
            if a_shape != [rank, in_f] || b_shape != [out_f, rank] {
                return Err(Error::BadAdapter(format!(
                    "{module}: lora_A is {a_shape:?} and lora_B is {b_shape:?}, but this base model needs [{rank}, {in_f}] and [{out_f}, {rank}] — was it trained on another base model?"
                )));
            }
            let (cfg_rank, alpha) = config.rank_alpha(module);
            if cfg_rank != rank {
                return Err(Error::BadAdapter(format!(
                    "{module}: weights have rank {rank} but adapter_config.json says {cfg_rank}"
                )));
            }
            let scale = if config.use_rslora {
                alpha / (rank as f32).sqrt()
            } else {
                alpha / rank as f32
            };
            for x in &mut b {
                *x *= scale;
            }
            bytes += (a.len() + b.len()) * 4;
            targets.insert(proj);
            layers[layer][proj as usize] = Some(LoraPair { a, b, rank, scale });
        }
        if !unknown.is_empty() {
            let supported: Vec<&str> = Proj::ALL.iter().map(|p| p.module_name()).collect();
            return Err(Error::Unsupported(format!(
                "adapter targets modules {:?} that the {} runtime does not apply (it applies {})",
                unknown,
                model.arch.name(),
                supported.join(", ")
            )));
        }
        if targets.is_empty() {
            return Err(Error::BadAdapter(
                "adapter holds no LoRA weights for any module: it would serve the base model unchanged".into(),
            ));
        }
        let max_rank = layers
            .iter()
            .flat_map(|l| l.iter().flatten().map(|p| p.rank))
            .max()
            .unwrap_or(0);
        Ok(Adapter {
            layers,
            max_rank,
            targets: targets.into_iter().collect(),
            bytes,
        })
    }
}

fn as_adapter(e: Error) -> Error {
    match e {
        Error::BadModel(m) => Error::BadAdapter(m),
        other => other,
    }
}

/// A run of consecutive batch rows that share one adapter (or none).
#[derive(Debug, Clone)]
pub struct Segment {
    /// First row.
    pub start: usize,
    /// Number of rows.
    pub len: usize,
    /// The adapter of these rows.
    pub adapter: Option<Arc<Adapter>>,
}

/// The batched LoRA computation: for every segment, `y[rows] += B · (A · x[rows])` of that
/// segment's adapter at (layer, projection). Segments of one batch may carry different ranks.
/// The CPU implementation is [`CpuLora`]; with the `cuda` feature, `cuda::CudaLora` runs the
/// gather (decode) and segmented (prefill) kernels behind the same trait. It fails only when a
/// device does (the CPU implementation never fails).
pub trait LoraKernel: Send + Sync {
    /// Apply the adapters of `segments` to `y` (`rows × out`) given `x` (`rows × in`).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        layer: usize,
        proj: Proj,
        x: &[f32],
        in_dim: usize,
        y: &mut [f32],
        out_dim: usize,
        segments: &[Segment],
    ) -> Result<()>;
}

/// Segment by segment with the batch-invariant matmul.
#[derive(Debug, Default)]
pub struct CpuLora;

impl LoraKernel for CpuLora {
    fn apply(
        &self,
        layer: usize,
        proj: Proj,
        x: &[f32],
        in_dim: usize,
        y: &mut [f32],
        out_dim: usize,
        segments: &[Segment],
    ) -> Result<()> {
        let mut tmp = Vec::new();
        for s in segments {
            let Some(ad) = &s.adapter else { continue };
            let Some(pair) = &ad.layers[layer][proj as usize] else {
                continue;
            };
            let xs = &x[s.start * in_dim..(s.start + s.len) * in_dim];
            tmp.clear();
            tmp.resize(s.len * pair.rank, 0.0);
            matmul_t(xs, s.len, in_dim, &pair.a, pair.rank, &mut tmp, false);
            let ys = &mut y[s.start * out_dim..(s.start + s.len) * out_dim];
            matmul_t(&tmp, s.len, pair.rank, &pair.b, out_dim, ys, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_rules() {
        let c = AdapterConfig::parse(
            r#"{"r":16,"lora_alpha":8,"use_rslora":true,
                "rank_pattern":{"model.layers.1.self_attn.v_proj":4},
                "alpha_pattern":{"layers.1.self_attn.v_proj":32}}"#,
        )
        .expect("parse");
        assert_eq!(c.rank_alpha("model.layers.1.self_attn.v_proj"), (4, 32.0));
        assert_eq!(c.rank_alpha("model.layers.11.self_attn.v_proj"), (16, 8.0));
        assert_eq!(c.rank_alpha("model.layers.0.self_attn.q_proj"), (16, 8.0));
    }

    #[test]
    fn refuses_what_it_would_ignore() {
        for (cfg, want) in [
            (r#"{"use_dora":true}"#, "DoRA"),
            (r#"{"bias":"all"}"#, "biases"),
            (r#"{"modules_to_save":["lm_head"]}"#, "modules_to_save"),
            (r#"{"peft_type":"IA3"}"#, "IA3"),
            (r#"{"rank_pattern":{"(":4}}"#, "not a valid pattern"),
        ] {
            let e = AdapterConfig::parse(cfg)
                .expect_err("must be refused")
                .to_string();
            assert!(e.contains(want), "{cfg}: {e}");
        }
    }
}
