//! The model `--dev` serves when no `--base-model` is given: a small Llama-architecture
//! checkpoint written once in the same Hugging Face format a real model uses (config.json,
//! model.safetensors, a byte-level BPE tokenizer trained here by the `tokenizers` crate, a
//! ChatML chat template, generation_config.json), so every path a real model takes — loading,
//! templates, adapters, streaming — runs with nothing downloaded. Its weights are random
//! (fixed seed): it produces tokens, not sense.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokenizers::models::ModelWrapper;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerImpl,
};

use crate::weights::{write_bf16, write_f32};
use crate::{Error, Result};

const CORPUS: &str = include_str!("dev_corpus.txt");

/// ChatML, as Qwen and many fine-tunes use it.
const CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Shape of a synthetic Llama model.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Residual width.
    pub hidden: usize,
    /// MLP width.
    pub intermediate: usize,
    /// Layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Vocabulary (the dev model's comes from its tokenizer).
    pub vocab: usize,
    /// Context length.
    pub max_positions: usize,
}

impl Shape {
    /// The dev model: ~8M parameters, quick on any CPU.
    pub const DEV: Shape = Shape {
        hidden: 256,
        intermediate: 688,
        layers: 4,
        heads: 4,
        kv_heads: 2,
        vocab: 0,
        max_positions: 2048,
    };

    /// The benchmark shape the OpenLoRA issue names: ~105M parameters.
    pub const BENCH_100M: Shape = Shape {
        hidden: 768,
        intermediate: 2048,
        layers: 8,
        heads: 12,
        kv_heads: 4,
        vocab: 32000,
        max_positions: 1024,
    };
}

fn special() -> Vec<AddedToken> {
    ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .into_iter()
        .map(|t| AddedToken::from(t, true))
        .collect()
}

fn train_tokenizer(dir: &Path) -> Result<usize> {
    type Tok = TokenizerImpl<
        ModelWrapper,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >;
    let mut tok: Tok = TokenizerImpl::new(BPE::default().into());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(1024)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(special())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, CORPUS.lines())
        .map_err(|e| Error::Tokenizer(format!("training the dev tokenizer: {e}")))?;
    tok.add_special_tokens(special())
        .map_err(|e| Error::Tokenizer(format!("dev tokenizer: {e}")))?;
    let path = dir.join("tokenizer.json");
    tok.save(&path, false)
        .map_err(|e| Error::Tokenizer(format!("saving {}: {e}", path.display())))?;
    Ok(tok.get_vocab_size(true))
}

/// Normal(0, std) weights from a seeded generator (Box–Muller).
pub fn random_weights(rng: &mut StdRng, n: usize, std: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f32 = rng.random::<f32>().max(1e-7);
            let u2: f32 = rng.random();
            std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
        })
        .collect()
}

/// Write `config.json` and `model.safetensors` of a random Llama model of `shape` to `dir`.
pub fn write_llama(dir: &Path, shape: Shape, seed: u64, eos: Option<u32>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let s = shape;
    let hd = s.hidden / s.heads;
    let config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": s.hidden,
        "intermediate_size": s.intermediate,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "vocab_size": s.vocab,
        "max_position_embeddings": s.max_positions,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": false,
        "torch_dtype": "float32",
        "bos_token_id": null,
        "eos_token_id": eos,
    });
    let cfg_path = dir.join("config.json");
    std::fs::write(
        &cfg_path,
        serde_json::to_vec_pretty(&config).unwrap_or_default(),
    )
    .map_err(|e| Error::io(&cfg_path, e))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let std = 0.08;
    tensors.push((
        "model.embed_tokens.weight".into(),
        vec![s.vocab, s.hidden],
        random_weights(&mut rng, s.vocab * s.hidden, 1.0),
    ));
    for i in 0..s.layers {
        let p = format!("model.layers.{i}.");
        let mats = [
            ("self_attn.q_proj.weight", s.heads * hd, s.hidden),
            ("self_attn.k_proj.weight", s.kv_heads * hd, s.hidden),
            ("self_attn.v_proj.weight", s.kv_heads * hd, s.hidden),
            ("self_attn.o_proj.weight", s.hidden, s.heads * hd),
            ("mlp.gate_proj.weight", s.intermediate, s.hidden),
            ("mlp.up_proj.weight", s.intermediate, s.hidden),
            ("mlp.down_proj.weight", s.hidden, s.intermediate),
        ];
        for (n, out, inp) in mats {
            let w = random_weights(&mut rng, out * inp, std);
            tensors.push((format!("{p}{n}"), vec![out, inp], w));
        }
        tensors.push((
            format!("{p}input_layernorm.weight"),
            vec![s.hidden],
            vec![1.0; s.hidden],
        ));
        tensors.push((
            format!("{p}post_attention_layernorm.weight"),
            vec![s.hidden],
            vec![1.0; s.hidden],
        ));
    }
    tensors.push((
        "model.norm.weight".into(),
        vec![s.hidden],
        vec![1.0; s.hidden],
    ));
    tensors.push((
        "lm_head.weight".into(),
        vec![s.vocab, s.hidden],
        random_weights(&mut rng, s.vocab * s.hidden, std),
    ));
    let refs: Vec<(String, Vec<usize>, &[f32])> = tensors
        .iter()
        .map(|(n, s, d)| (n.clone(), s.clone(), d.as_slice()))
        .collect();
    let bytes = write_f32(&refs)?;
    let path = dir.join("model.safetensors");
    std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))
}

/// Create the dev model in `dir` unless a complete one is already there. Written into a
/// temporary sibling and renamed, so a crash never leaves half a model behind.
pub fn ensure_dev_model(dir: &Path) -> Result<()> {
    if dir.join("config.json").exists()
        && dir.join("model.safetensors").exists()
        && dir.join("tokenizer.json").exists()
    {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = parent.join(".dev-model-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let vocab = train_tokenizer(&tmp)?;
    // The ids of the special tokens come first in the trained vocabulary.
    let t = tokenizers::Tokenizer::from_file(tmp.join("tokenizer.json"))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    let im_end = t.token_to_id("<|im_end|>");
    let eot = t.token_to_id("<|endoftext|>");
    write_llama(
        &tmp,
        Shape {
            vocab,
            ..Shape::DEV
        },
        20261123,
        im_end,
    )?;
    let files = [
        (
            "tokenizer_config.json",
            json!({
                "bos_token": null,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "chat_template": CHAT_TEMPLATE,
                "model_max_length": Shape::DEV.max_positions,
            }),
        ),
        (
            "generation_config.json",
            json!({"eos_token_id": [im_end, eot], "do_sample": true, "temperature": 0.7, "top_p": 0.9}),
        ),
    ];
    for (name, v) in files {
        let p = tmp.join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap_or_default())
            .map_err(|e| Error::io(&p, e))?;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
}

/// A PEFT-format LoRA adapter with random weights for `model` (benchmarks and tests): rank
/// `rank` on every projection in `targets`, `lora_alpha` = 2 × rank. With `zero_b` the B
/// matrices are zero, as PEFT initialises them, so the adapter changes nothing.
pub fn synthetic_adapter(
    model: &crate::config::ModelConfig,
    rank: usize,
    targets: &[crate::lora::Proj],
    seed: u64,
    zero_b: bool,
) -> Result<crate::engine::AdapterFiles> {
    synthetic_adapter_as(model, rank, targets, seed, zero_b, false)
}

/// [`synthetic_adapter`], stored as bf16 when `bf16`.
pub fn synthetic_adapter_as(
    model: &crate::config::ModelConfig,
    rank: usize,
    targets: &[crate::lora::Proj],
    seed: u64,
    zero_b: bool,
    bf16: bool,
) -> Result<crate::engine::AdapterFiles> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for layer in 0..model.num_layers {
        for &p in targets {
            let (inp, out) = p.dims(model);
            let attn = matches!(
                p,
                crate::lora::Proj::Q
                    | crate::lora::Proj::K
                    | crate::lora::Proj::V
                    | crate::lora::Proj::O
            );
            let base = format!(
                "base_model.model.model.layers.{layer}.{}.{}",
                if attn { "self_attn" } else { "mlp" },
                p.module_name()
            );
            let a = random_weights(&mut rng, rank * inp, 0.1);
            let b = if zero_b {
                vec![0.0; out * rank]
            } else {
                random_weights(&mut rng, out * rank, 0.1)
            };
            tensors.push((format!("{base}.lora_A.weight"), vec![rank, inp], a));
            tensors.push((format!("{base}.lora_B.weight"), vec![out, rank], b));
        }
    }
    let refs: Vec<(String, Vec<usize>, &[f32])> = tensors
        .iter()
        .map(|(n, s, d)| (n.clone(), s.clone(), d.as_slice()))
        .collect();
    let weights = if bf16 {
        write_bf16(&refs)?
    } else {
        write_f32(&refs)?
    };
    let names: Vec<&str> = targets.iter().map(|p| p.module_name()).collect();
    let config = json!({
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": names,
        "lora_dropout": 0.0,
        "bias": "none",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": model.arch.name(),
    });
    Ok(crate::engine::AdapterFiles {
        config: serde_json::to_string_pretty(&config).unwrap_or_default(),
        weights: std::sync::Arc::new(weights),
    })
}
