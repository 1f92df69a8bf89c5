//! The decoder: weights of a Llama-family checkpoint and one forward pass over a batch of
//! sequences that share the paged KV cache, each with its own adapter.

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::config::{Activation, Arch, ModelConfig, RopeScaling};
use crate::kernels::{gelu, gelu_tanh, matmul_t, rms_norm, rope, silu};
use crate::kv::KvCache;
use crate::lora::{Adapter, LoraKernel, Proj, Segment};
use crate::weights::Tensors;
use crate::{Error, Result};

#[derive(Debug)]
struct Layer {
    input_norm: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    o: Vec<f32>,
    q_bias: Option<Vec<f32>>,
    k_bias: Option<Vec<f32>>,
    v_bias: Option<Vec<f32>>,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    post_attn_norm: Vec<f32>,
    /// Gemma 2 only: the norm before the MLP (`post_attn_norm` then normalises the attention
    /// output before the residual add).
    pre_ff_norm: Option<Vec<f32>>,
    post_ff_norm: Option<Vec<f32>>,
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
}

/// A loaded base model.
#[derive(Debug)]
pub struct Model {
    /// Its configuration.
    pub cfg: ModelConfig,
    embed: Vec<f32>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    lm_head: Option<Vec<f32>>,
    inv_freq: Vec<f32>,
}

/// One sequence in a forward batch.
#[derive(Debug)]
pub struct SeqInput<'a> {
    /// The new tokens (a whole prompt, or one token when decoding).
    pub tokens: &'a [u32],
    /// Position of the first new token (= tokens already in the cache).
    pub start: usize,
    /// Its KV block table, already reserved for `start + tokens.len()` positions.
    pub blocks: &'a [u32],
    /// The adapter its tokens run through.
    pub adapter: Option<Arc<Adapter>>,
}

fn inv_freq(cfg: &ModelConfig) -> Vec<f32> {
    let d = cfg.head_dim;
    let base: Vec<f32> = (0..d / 2)
        .map(|i| 1.0 / cfg.rope_theta.powf((2 * i) as f32 / d as f32))
        .collect();
    match cfg.rope_scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.into_iter().map(|f| f / factor).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        } => {
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    if wavelen > low_wavelen {
                        f / factor
                    } else if wavelen < high_wavelen {
                        f
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}

impl Model {
    /// Load `config.json` and the safetensors weights of a model directory.
    pub fn load(dir: &Path) -> Result<Model> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let cfg = ModelConfig::parse(&text)?;
        let t = Tensors::open_dir(dir)?;
        Model::from_tensors(cfg, &t)
    }

    /// Build from parsed config and tensors.
    pub fn from_tensors(cfg: ModelConfig, t: &Tensors) -> Result<Model> {
        let h = cfg.hidden_size;
        let qd = cfg.num_heads * cfg.head_dim;
        let kvd = cfg.num_kv_heads * cfg.head_dim;
        let im = cfg.intermediate_size;
        let gemma2 = cfg.arch == Arch::Gemma2;
        let qwen3 = cfg.arch == Arch::Qwen3;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}.");
            let get = |n: &str, shape: &[usize]| t.get(&format!("{p}{n}"), shape);
            let bias = |n: &str, len: usize| -> Result<Option<Vec<f32>>> {
                if cfg.attention_bias {
                    Ok(Some(get(n, &[len])?))
                } else {
                    Ok(None)
                }
            };
            layers.push(Layer {
                input_norm: get("input_layernorm.weight", &[h])?,
                q: get("self_attn.q_proj.weight", &[qd, h])?,
                k: get("self_attn.k_proj.weight", &[kvd, h])?,
                v: get("self_attn.v_proj.weight", &[kvd, h])?,
                o: get("self_attn.o_proj.weight", &[h, qd])?,
                q_bias: bias("self_attn.q_proj.bias", qd)?,
                k_bias: bias("self_attn.k_proj.bias", kvd)?,
                v_bias: bias("self_attn.v_proj.bias", kvd)?,
                q_norm: if qwen3 {
                    Some(get("self_attn.q_norm.weight", &[cfg.head_dim])?)
                } else {
                    None
                },
                k_norm: if qwen3 {
                    Some(get("self_attn.k_norm.weight", &[cfg.head_dim])?)
                } else {
                    None
                },
                post_attn_norm: get("post_attention_layernorm.weight", &[h])?,
                pre_ff_norm: if gemma2 {
                    Some(get("pre_feedforward_layernorm.weight", &[h])?)
                } else {
                    None
                },
                post_ff_norm: if gemma2 {
                    Some(get("post_feedforward_layernorm.weight", &[h])?)
                } else {
                    None
                },
                gate: get("mlp.gate_proj.weight", &[im, h])?,
                up: get("mlp.up_proj.weight", &[im, h])?,
                down: get("mlp.down_proj.weight", &[h, im])?,
            });
        }
        let embed = t.get("model.embed_tokens.weight", &[cfg.vocab_size, h])?;
        let lm_head = if cfg.tie_word_embeddings && !t.contains("lm_head.weight") {
            None
        } else {
            Some(t.get("lm_head.weight", &[cfg.vocab_size, h])?)
        };
        Ok(Model {
            inv_freq: inv_freq(&cfg),
            norm: t.get("model.norm.weight", &[h])?,
            embed,
            lm_head,
            layers,
            cfg,
        })
    }

    fn norm_offset(&self) -> f32 {
        if matches!(self.cfg.arch, Arch::Gemma | Arch::Gemma2) {
            1.0
        } else {
            0.0
        }
    }

    /// Floats per position in the KV cache of one layer.
    pub fn kv_width(&self) -> usize {
        self.cfg.num_kv_heads * self.cfg.head_dim
    }

    /// Run the new tokens of every sequence through the model, appending their keys and
    /// values to the cache. Returns logits `[rows × vocab]` for the last token of each
    /// sequence, or for every token when `all_logits`.
    pub fn forward(
        &self,
        seqs: &[SeqInput<'_>],
        kv: &mut KvCache,
        lora: &dyn LoraKernel,
        all_logits: bool,
    ) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let h = cfg.hidden_size;
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let qd = nh * hd;
        let kvd = nkv * hd;
        let im = cfg.intermediate_size;
        let total: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        let mut positions = Vec::with_capacity(total);
        let mut segments: Vec<Segment> = Vec::new();
        let mut row = 0;
        for s in seqs {
            if s.start + s.tokens.len() > cfg.max_position_embeddings {
                return Err(Error::BadRequest(format!(
                    "context of {} tokens exceeds the model's {}",
                    s.start + s.tokens.len(),
                    cfg.max_position_embeddings
                )));
            }
            positions.extend(s.start..s.start + s.tokens.len());
            let same = segments
                .last()
                .is_some_and(|g| match (&g.adapter, &s.adapter) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                });
            match segments.last_mut() {
                Some(g) if same => g.len += s.tokens.len(),
                _ => segments.push(Segment {
                    start: row,
                    len: s.tokens.len(),
                    adapter: s.adapter.clone(),
                }),
            }
            row += s.tokens.len();
        }
        let mut x = vec![0f32; total * h];
        let mut r = 0;
        for s in seqs {
            for &tok in s.tokens {
                let tok = tok as usize;
                if tok >= cfg.vocab_size {
                    return Err(Error::BadRequest(format!(
                        "token id {tok} is outside the vocabulary of {}",
                        cfg.vocab_size
                    )));
                }
                x[r * h..(r + 1) * h].copy_from_slice(&self.embed[tok * h..(tok + 1) * h]);
                r += 1;
            }
        }
        if matches!(cfg.arch, Arch::Gemma | Arch::Gemma2) {
            let s = (h as f32).sqrt();
            x.iter_mut().for_each(|v| *v *= s);
        }
        let off = self.norm_offset();
        let eps = cfg.norm_eps;
        let mut n = vec![0f32; total * h];
        let mut q = vec![0f32; total * qd];
        let mut k = vec![0f32; total * kvd];
        let mut v = vec![0f32; total * kvd];
        let mut att = vec![0f32; total * qd];
        let mut o = vec![0f32; total * h];
        let mut g = vec![0f32; total * im];
        let mut u = vec![0f32; total * im];
        let project = |proj: Proj,
                       layer: usize,
                       w: &[f32],
                       bias: Option<&Vec<f32>>,
                       x: &[f32],
                       out: &mut [f32]| {
            let (inp, outd) = proj.dims(cfg);
            matmul_t(x, total, inp, w, outd, out, false);
            if let Some(b) = bias {
                for row in out.chunks_exact_mut(outd) {
                    row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
                }
            }
            lora.apply(layer, proj, x, inp, out, outd, &segments)
        };
        for (li, l) in self.layers.iter().enumerate() {
            n.copy_from_slice(&x);
            rms_norm(&mut n, h, &l.input_norm, eps, off);
            project(Proj::Q, li, &l.q, l.q_bias.as_ref(), &n, &mut q)?;
            project(Proj::K, li, &l.k, l.k_bias.as_ref(), &n, &mut k)?;
            project(Proj::V, li, &l.v, l.v_bias.as_ref(), &n, &mut v)?;
            if let (Some(qn), Some(kn)) = (&l.q_norm, &l.k_norm) {
                rms_norm(&mut q, hd, qn, eps, 0.0);
                rms_norm(&mut k, hd, kn, eps, 0.0);
            }
            rope(&mut q, nh, hd, &positions, &self.inv_freq);
            rope(&mut k, nkv, hd, &positions, &self.inv_freq);
            let mut r = 0;
            for s in seqs {
                for t in 0..s.tokens.len() {
                    kv.write(
                        li,
                        s.blocks,
                        s.start + t,
                        &k[(r + t) * kvd..(r + t + 1) * kvd],
                        &v[(r + t) * kvd..(r + t + 1) * kvd],
                    );
                }
                r += s.tokens.len();
            }
            self.attention(li, seqs, &q, kv, &mut att);
            project(Proj::O, li, &l.o, None, &att, &mut o)?;
            if let Some(pn) = &l.pre_ff_norm {
                // Gemma 2: normalise the attention output, add, then the MLP's own pre-norm.
                rms_norm(&mut o, h, &l.post_attn_norm, eps, off);
                x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
                n.copy_from_slice(&x);
                rms_norm(&mut n, h, pn, eps, off);
            } else {
                x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
                n.copy_from_slice(&x);
                rms_norm(&mut n, h, &l.post_attn_norm, eps, off);
            }
            project(Proj::Gate, li, &l.gate, None, &n, &mut g)?;
            project(Proj::Up, li, &l.up, None, &n, &mut u)?;
            let act = cfg.activation;
            g.par_chunks_mut(im)
                .zip(u.par_chunks(im))
                .for_each(|(gr, ur)| {
                    for (a, b) in gr.iter_mut().zip(ur) {
                        let y = match act {
                            Activation::Silu => silu(*a),
                            Activation::GeluTanh => gelu_tanh(*a),
                            Activation::Gelu => gelu(*a),
                        };
                        *a = y * b;
                    }
                });
            project(Proj::Down, li, &l.down, None, &g, &mut o)?;
            if let Some(pn) = &l.post_ff_norm {
                rms_norm(&mut o, h, pn, eps, off);
            }
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
        }
        // Only the rows whose logits are wanted go through the (vocabulary-wide) head.
        let rows: Vec<usize> = if all_logits {
            (0..total).collect()
        } else {
            let mut ends = Vec::with_capacity(seqs.len());
            let mut r = 0;
            for s in seqs {
                r += s.tokens.len();
                ends.push(r - 1);
            }
            ends
        };
        let mut last = vec![0f32; rows.len() * h];
        for (i, &r) in rows.iter().enumerate() {
            last[i * h..(i + 1) * h].copy_from_slice(&x[r * h..(r + 1) * h]);
        }
        rms_norm(&mut last, h, &self.norm, eps, off);
        let head = self.lm_head.as_deref().unwrap_or(&self.embed);
        let vocab = cfg.vocab_size;
        let mut logits = vec![0f32; rows.len() * vocab];
        matmul_t(&last, rows.len(), h, head, vocab, &mut logits, false);
        if let Some(cap) = cfg.final_logit_softcapping {
            logits.iter_mut().for_each(|l| *l = (*l / cap).tanh() * cap);
        }
        Ok(logits)
    }

    /// Causal attention of every new token over its sequence's cached positions.
    fn attention(
        &self,
        layer: usize,
        seqs: &[SeqInput<'_>],
        q: &[f32],
        kv: &KvCache,
        out: &mut [f32],
    ) {
        let cfg = &self.cfg;
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let group = nh / nkv;
        let scale = match cfg.query_pre_attn_scalar {
            Some(s) => 1.0 / s.sqrt(),
            None => 1.0 / (hd as f32).sqrt(),
        };
        let window = if cfg.sliding_layers.get(layer).copied().unwrap_or(false) {
            cfg.sliding_window
        } else {
            None
        };
        let softcap = cfg.attn_logit_softcapping;
        // (sequence, position) of each row.
        let mut owner = Vec::with_capacity(out.len() / (nh * hd));
        for (si, s) in seqs.iter().enumerate() {
            owner.extend((0..s.tokens.len()).map(|t| (si, s.start + t)));
        }
        out.par_chunks_mut(nh * hd)
            .enumerate()
            .for_each(|(r, orow)| {
                let (si, pos) = owner[r];
                let blocks = seqs[si].blocks;
                let lo = window.map(|w| (pos + 1).saturating_sub(w)).unwrap_or(0);
                let mut scores = vec![0f32; pos + 1 - lo];
                for head in 0..nh {
                    let kvh = head / group;
                    let qv = &q[r * nh * hd + head * hd..r * nh * hd + (head + 1) * hd];
                    let mut max = f32::NEG_INFINITY;
                    for (j, sc) in (lo..=pos).zip(scores.iter_mut()) {
                        let kr = &kv.key(layer, blocks, j)[kvh * hd..(kvh + 1) * hd];
                        let mut s = qv.iter().zip(kr).map(|(a, b)| a * b).sum::<f32>() * scale;
                        if let Some(c) = softcap {
                            s = (s / c).tanh() * c;
                        }
                        *sc = s;
                        max = max.max(s);
                    }
                    let mut sum = 0f32;
                    for sc in scores.iter_mut() {
                        *sc = (*sc - max).exp();
                        sum += *sc;
                    }
                    let ov = &mut orow[head * hd..(head + 1) * hd];
                    ov.iter_mut().for_each(|x| *x = 0.0);
                    for (j, sc) in (lo..=pos).zip(scores.iter()) {
                        let w = sc / sum;
                        let vr = &kv.value(layer, blocks, j)[kvh * hd..(kvh + 1) * hd];
                        ov.iter_mut().zip(vr).for_each(|(o, v)| *o += w * v);
                    }
                }
            });
    }
}
