//! OpenLoRA benchmark (`cargo bench -p commons-compute --bench openlora`): multi-adapter
//! generation on the CPU against PyTorch + PEFT in the same run. It lives in this crate so it
//! builds without the query engine; the cold tier is a real redb store of adapter blobs, found
//! by hash as the node's `StoreSource` finds them.
//!
//! A Llama-architecture model of ~100M parameters with synthetic weights (vocab 32,000, hidden
//! 768, 8 layers, 12 heads / 4 KV heads, MLP 2,048, f32) is served by the engine `commons
//! serve` runs (engine thread, paged KV cache, adapter tiers). Adapters are rank 16 on all
//! seven projections, stored bf16 (3.5 MB each).
//!
//! For each batch size (16 and 32), `batch` requests of 128 prompt tokens generate 128 tokens
//! each (end-of-sequence ignored), all submitted at once; tokens/s = batch × 128 / wall time
//! including prefill:
//! - **base**: no adapter; **one**: every request on the same adapter;
//! - **mixed/100** and **mixed/1000**: request i on a different adapter drawn from 100 or 1,000
//!   registered (cold at the start: the run includes fetching and loading them);
//! - **mixed/warm**: the mixed/100 batch again with its adapters resident (switching cost).
//!
//! Also: adapter cold load (blob store → ready for the kernels) p50/p99 over 50 adapters, and
//! peak RSS with 1,000 registered and 100 host-resident adapters. PyTorch + PEFT runs the same
//! base / one / mixed batches with `benches/peft_generate.py` when `COMMONS_PEFT_PYTHON` names a
//! Python with torch, transformers and peft (default `/work/pyref/bin/python` if it exists).
//!
//! Environment: `COMMONS_BENCH_GEN` (default 128), `COMMONS_BENCH_PROMPT` (128),
//! `COMMONS_BENCH_BATCHES` (default "16,32"), `COMMONS_BENCH_ADAPTERS` (1000). Prints a table
//! and one JSON line starting with `{"bench":"openlora"`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use std::collections::HashMap;
use std::sync::RwLock;

use anyhow::{Context, bail};
use commons_compute::devmodel::{Shape, ensure_dev_model, synthetic_adapter_as, write_llama};
use commons_compute::engine::{
    AdapterFiles, AdapterKey, AdapterSource, Engine, EngineConfig, Event, GenerateRequest, Hash,
};
use commons_compute::lora::Proj;
use commons_compute::model::Model;
use commons_compute::sampling::SamplingParams;
use commons_compute::tokenizer::Tokenizer;
use commons_storage::serving::AdapterRecord;
use commons_storage::{Limits, Store};
use serde_json::{Value, json};

/// Runtime hash → (config blob, weights blob).
type BlobIndex = RwLock<HashMap<Hash, ([u8; 32], [u8; 32])>>;

/// The cold tier: adapter files as blobs in a redb store, found by the runtime's hash.
struct StoreSource {
    store: Arc<Store>,
    index: BlobIndex,
}

impl AdapterSource for StoreSource {
    fn fetch(&self, hash: &Hash) -> commons_compute::Result<AdapterFiles> {
        let (c, w) = self
            .index
            .read()
            .ok()
            .and_then(|m| m.get(hash).copied())
            .ok_or_else(|| commons_compute::Error::NotFound("unknown adapter".into()))?;
        let snap = self
            .store
            .snapshot()
            .map_err(|e| commons_compute::Error::NotFound(e.to_string()))?;
        let read = |h: &[u8; 32]| {
            snap.blob(h)
                .map(|(_, b)| b)
                .map_err(|e| commons_compute::Error::NotFound(e.to_string()))
        };
        Ok(AdapterFiles {
            config: String::from_utf8_lossy(&read(&c)?).into_owned(),
            weights: Arc::new(read(&w)?),
        })
    }
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v} is not a number")),
        Err(_) => Ok(default),
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Submit every request at once and wait for all of them; tokens/s over the wall time.
fn run_batch(
    s: &Engine,
    adapters: &[Option<AdapterKey>],
    prompt: usize,
    new_tokens: usize,
) -> anyhow::Result<f64> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let vocab = s.model_config.vocab_size as u32;
    let t = Instant::now();
    let mut rxs = Vec::new();
    for (i, a) in adapters.iter().enumerate() {
        let prompt_ids: Vec<u32> = (0..prompt)
            .map(|j| ((i * 7919 + j * 104_729) as u32) % vocab)
            .collect();
        rxs.push(s.submit(GenerateRequest {
            adapter: a.clone(),
            prompt: prompt_ids,
            max_tokens: new_tokens,
            sampling: SamplingParams {
                temperature: 0.0,
                ..Default::default()
            },
            stop: Vec::new(),
            ignore_eos: true,
        })?);
    }
    let mut tokens = 0;
    rt.block_on(async {
        for mut rx in rxs {
            while let Some(e) = rx.recv().await {
                match e {
                    Event::Token { .. } => tokens += 1,
                    Event::Done { .. } => break,
                    Event::Error(e) => bail!("request failed: {e}"),
                }
            }
        }
        Ok(())
    })?;
    if tokens != adapters.len() * new_tokens {
        bail!(
            "expected {} tokens, got {tokens}",
            adapters.len() * new_tokens
        );
    }
    Ok(tokens as f64 / t.elapsed().as_secs_f64())
}

fn peft(
    python: &Path,
    mode: &str,
    batch: usize,
    prompt: usize,
    new_tokens: usize,
) -> anyhow::Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peft_generate.py");
    let out = Command::new(python)
        .arg(script)
        .args([
            "--mode",
            mode,
            "--batch",
            &batch.to_string(),
            "--prompt",
            &prompt.to_string(),
        ])
        .args([
            "--gen",
            &new_tokens.to_string(),
            "--threads",
            &std::thread::available_parallelism()
                .map_or(2, |c| c.get())
                .to_string(),
        ])
        .output()
        .context("cannot run peft_generate.py")?;
    if !out.status.success() {
        bail!(
            "peft_generate.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(
        line.trim().lines().last().unwrap_or(""),
    )?)
}

fn main() -> anyhow::Result<()> {
    let new_tokens = env_usize("COMMONS_BENCH_GEN", 128)?;
    let prompt = env_usize("COMMONS_BENCH_PROMPT", 128)?;
    let registered = env_usize("COMMONS_BENCH_ADAPTERS", 1000)?.max(100);
    let batches: Vec<usize> = std::env::var("COMMONS_BENCH_BATCHES")
        .unwrap_or_else(|_| "16,32".into())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let tmp = tempfile::tempdir()?;
    println!(
        "commons OpenLoRA bench: prompt {prompt}, new_tokens {new_tokens}, batches {batches:?}, {registered} adapters, {cores} cores"
    );

    // The model, in the HF layout the node loads; the dev tokenizer stands in for a real one
    // (ids above its vocabulary decode to nothing, which costs the detokenizer nothing extra).
    let model_dir = tmp.path().join("bench-100m");
    let t = Instant::now();
    write_llama(&model_dir, Shape::BENCH_100M, 7, None)?;
    let dev = tmp.path().join("dev");
    ensure_dev_model(&dev)?;
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(dev.join(f), model_dir.join(f))?;
    }
    println!("model written in {:.1} s", t.elapsed().as_secs_f64());

    let store = Arc::new(Store::create_fresh(
        &tmp.path().join("db.redb"),
        Limits::default(),
    )?);
    let source = Arc::new(StoreSource {
        store: store.clone(),
        index: RwLock::new(HashMap::new()),
    });
    let model = Model::load(&model_dir)?;
    let parameters = model.cfg.parameter_count();
    let tokenizer = Tokenizer::load(&model_dir, &[])?;
    let s = Engine::start(
        model,
        tokenizer,
        source.clone(),
        EngineConfig {
            kv_cache_bytes: 1 << 30,
            max_batch_tokens: 8192,
            max_running: 64,
            host_adapter_bytes: 400 << 20, // ~100 bf16 adapters of 3.5 MB
            device_adapter_slots: 100,
            ..EngineConfig::default()
        },
    );
    println!("model: {parameters} parameters");

    let t = Instant::now();
    let mut keys = Vec::with_capacity(registered);
    for i in 0..registered {
        let files = synthetic_adapter_as(
            &s.model_config,
            16,
            &Proj::ALL,
            1000 + i as u64,
            false,
            true,
        )?;
        let adapter = s.validate_adapter(&files)?;
        let rec = AdapterRecord {
            name: format!("a{i:04}"),
            hash: files.hash(),
            config_blob: [0; 32],
            weights_blob: [0; 32],
            base_model: "bench-100m".into(),
            rank: adapter.max_rank as u32,
            targets: adapter
                .targets
                .iter()
                .map(|p| p.module_name().to_string())
                .collect(),
            size: 0,
            added_by: "bench".into(),
            created_at: 0,
        };
        let (rec, _) = store.put_adapter(
            rec,
            files.config.into_bytes(),
            files.weights.as_ref().clone(),
            false,
        )?;
        if let Ok(mut m) = source.index.write() {
            m.insert(rec.hash, (rec.config_blob, rec.weights_blob));
        }
        keys.push(AdapterKey {
            name: rec.name.clone(),
            hash: rec.hash,
        });
    }
    let adapter_bytes = store
        .snapshot()?
        .adapters()?
        .iter()
        .map(|a| a.size)
        .sum::<u64>();
    println!(
        "{registered} adapters registered ({:.0} MB of blobs) in {:.1} s",
        adapter_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // Cold load: blob store → parsed, ready weights.
    let mut loads = Vec::new();
    let snap = store.snapshot()?;
    for i in 0..50 {
        let rec = snap.adapter(&format!("a{:04}", registered - 1 - i))?;
        let t = Instant::now();
        let (_, config) = snap.blob(&rec.config_blob)?;
        let (_, weights) = snap.blob(&rec.weights_blob)?;
        let files = AdapterFiles {
            config: String::from_utf8(config)?,
            weights: Arc::new(weights),
        };
        let _ready = s.validate_adapter(&files)?;
        loads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (load_p50, load_p99) = (percentile(&mut loads, 0.5), percentile(&mut loads, 0.99));
    println!(
        "cold load (blob → ready, rank 16, 7 modules): p50 {load_p50:.2} ms, p99 {load_p99:.2} ms"
    );

    // Warm the engine once so the first measured batch does not pay page faults.
    run_batch(&s, &[None, None], 16, 4)?;

    let mut results = Vec::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut draw = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    println!("| batch | mode | tokens/s | vs base |");
    println!("|---:|---|---:|---:|");
    for &b in &batches {
        let base = run_batch(&s, &vec![None; b], prompt, new_tokens)?;
        let one = run_batch(&s, &vec![Some(keys[0].clone()); b], prompt, new_tokens)?;
        let pick100: Vec<Option<AdapterKey>> =
            (0..b).map(|_| Some(keys[draw(100)].clone())).collect();
        let mixed100 = run_batch(&s, &pick100, prompt, new_tokens)?;
        let warm = run_batch(&s, &pick100, prompt, new_tokens)?;
        let pick_all: Vec<Option<AdapterKey>> = (0..b)
            .map(|_| Some(keys[100 + draw(registered - 100)].clone()))
            .collect();
        let mixed_all = run_batch(&s, &pick_all, prompt, new_tokens)?;
        for (mode, v) in [
            ("base", base),
            ("one", one),
            ("mixed/100", mixed100),
            ("mixed/warm", warm),
            (&*format!("mixed/{registered}"), mixed_all),
        ] {
            println!("| {b} | {mode} | {v:.1} | {:.0} % |", 100.0 * v / base);
            results.push(json!({"batch": b, "mode": mode, "tokens_per_s": v, "vs_base": v / base}));
        }
    }
    let engine = s.stats()?;
    let rss = peak_rss_mb();
    println!(
        "peak RSS {rss:.0} MB with {registered} registered, {} host-resident ({:.0} MB), {} ready ({:.0} MB)",
        engine.host_adapters,
        engine.host_adapter_bytes as f64 / 1e6,
        engine.device_adapters,
        engine.device_adapter_bytes as f64 / 1e6
    );

    let python: Option<PathBuf> = std::env::var_os("COMMONS_PEFT_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/work/pyref/bin/python")).filter(|p| p.exists()));
    let mut peft_results = Vec::new();
    match &python {
        None => println!(
            "PyTorch + PEFT: skipped (set COMMONS_PEFT_PYTHON to a Python with torch, transformers, peft)"
        ),
        Some(py) => {
            let b = batches[0];
            for mode in ["base", "one", "mixed"] {
                let v = peft(py, mode, b, prompt, new_tokens)?;
                let theirs = v["tokens_per_s"].as_f64().unwrap_or(0.0);
                let ours = results
                    .iter()
                    .find(|r| {
                        r["batch"] == b
                            && r["mode"] == if mode == "mixed" { "mixed/warm" } else { mode }
                    })
                    .and_then(|r| r["tokens_per_s"].as_f64())
                    .unwrap_or(0.0);
                println!(
                    "PyTorch + PEFT {mode} (batch {b}): {theirs:.1} tokens/s; Commons {ours:.1} → {:.2}×",
                    ours / theirs
                );
                peft_results.push(json!({"mode": mode, "batch": b, "peft": v, "commons_tokens_per_s": ours, "ratio": ours / theirs}));
            }
        }
    }
    s.shutdown();
    println!(
        "{}",
        json!({"bench": "openlora", "prompt": prompt, "new_tokens": new_tokens, "registered": registered, "cores": cores,
            "parameters": parameters, "cold_load_ms": {"p50": load_p50, "p99": load_p99},
            "peak_rss_mb": rss, "results": results, "peft": peft_results})
    );
    Ok(())
}
