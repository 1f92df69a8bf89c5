//! GPU LoRA benchmark (feature `cuda`; `cargo bench -p commons-compute --features cuda --bench
//! gpu_lora`, or the built binary run on the GPU machine, see `compute/GPU.md`).
//!
//! What it measures, on Llama-shaped projections of a 1B model (hidden 2,048, 16 layers,
//! 32 / 8 heads of 64, MLP 8,192) and an 8B one (hidden 4,096, 32 layers, 32 / 8 heads of 128,
//! MLP 14,336), rank-16 adapters on all seven projections, bf16 weights on the device:
//! - **LoRA decode step**: the batched LoRA term of one decode step (every layer, every
//!   projection, BGMV on device activations) at batch 1, 16, 64, 256 for one adapter for all
//!   rows and a different adapter per row drawn from 1,000 registered ones with uniform and
//!   Zipf (s = 1) popularity; reported as ms per step and as the tokens/s ceiling that the
//!   LoRA term alone would allow. The base model does not run on the GPU yet, so base-model
//!   tokens/s and the (c) ≥ 90 % of (a) ratio are NOT measured here.
//! - **Prefill LoRA pass** (SGMV) for 128- and 512-token prompts.
//! - **Adapter load host → device** p50/p99 (conversion into pinned memory + copies, and the
//!   copies alone) for the 1B and 8B shapes.
//! - **Cold adapter's share of time to first token**: load + the LoRA term of a 128-token
//!   prefill with that adapter (the base model's prefill is not included).
//! - **Adapters resident beside a 32-request KV working set**: the pool is what is free on the
//!   device less the base model's bf16 weights and a margin; KV pages for 32 requests of
//!   512 + 256 tokens in bf16 are taken first; then adapters are counted.
//!
//! Environment: `COMMONS_GPU_BENCH_ADAPTERS` (1000), `COMMONS_GPU_BENCH_STEPS` (20),
//! `COMMONS_GPU_BENCH_BATCHES` ("1,16,64,256"), `COMMONS_GPU_BENCH_SHAPES` ("1b,8b"),
//! `COMMONS_GPU` (ordinal, 0). Prints a table and one JSON line starting with
//! `{"bench":"gpu_lora"`. Without a usable GPU it says why and exits with status 2.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use commons_compute::cuda::{CudaLora, CudaLoraConfig, Gmv, probe};
use commons_compute::lora::{Adapter, Proj, Segment};
use commons_compute::pool::pack;
use commons_compute::punica::{WeightDtype, random_adapter};
use cudarc::driver::CudaSlice;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde_json::{Value, json};

#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    hidden: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    mlp: usize,
    /// Base model parameters (for the bf16 weights the pool must leave room for).
    params: f64,
}

const B1: Shape = Shape {
    name: "1b",
    hidden: 2048,
    layers: 16,
    heads: 32,
    kv_heads: 8,
    head_dim: 64,
    mlp: 8192,
    params: 1.24e9,
};
const B8: Shape = Shape {
    name: "8b",
    hidden: 4096,
    layers: 32,
    heads: 32,
    kv_heads: 8,
    head_dim: 128,
    mlp: 14336,
    params: 8.03e9,
};

impl Shape {
    fn dims(&self) -> [(usize, usize); 7] {
        let (h, q, kv, m) = (
            self.hidden,
            self.heads * self.head_dim,
            self.kv_heads * self.head_dim,
            self.mlp,
        );
        [(h, q), (h, kv), (h, kv), (q, h), (h, m), (h, m), (m, h)]
    }

    /// bf16 K and V bytes per token.
    fn kv_bytes_per_token(&self) -> usize {
        2 * self.layers * self.kv_heads * self.head_dim * 2
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

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn adapters(shape: Shape, n: usize, seed: u64) -> Vec<Arc<Adapter>> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            Arc::new(random_adapter(
                shape.layers,
                shape.dims(),
                16,
                &Proj::ALL,
                seed + i as u64,
            ))
        })
        .collect()
}

/// Cumulative Zipf(s = 1) weights over `n` items.
fn zipf_cdf(n: usize) -> Vec<f64> {
    let mut c = Vec::with_capacity(n);
    let mut s = 0.0;
    for i in 0..n {
        s += 1.0 / (i + 1) as f64;
        c.push(s);
    }
    c.iter().map(|x| x / s).collect()
}

/// The LoRA term of one forward step over `rows` rows: every layer, every projection.
fn step(
    gpu: &CudaLora,
    shape: Shape,
    xs: &[CudaSlice<f32>],
    ys: &mut [CudaSlice<f32>],
    segs: &[Segment],
    kind: Gmv,
) -> anyhow::Result<()> {
    let dims = shape.dims();
    for layer in 0..shape.layers {
        for p in Proj::ALL {
            let (i, o) = dims[p as usize];
            gpu.apply_device(
                layer,
                p,
                &xs[p as usize],
                i,
                &mut ys[p as usize],
                o,
                segs,
                kind,
            )?;
        }
    }
    Ok(())
}

/// Mean ms per step over `steps` steps after two warm-up steps.
fn time_steps(
    gpu: &CudaLora,
    shape: Shape,
    rows: usize,
    segs: &[Segment],
    kind: Gmv,
    steps: usize,
) -> anyhow::Result<f64> {
    let stream = gpu.stream();
    let dims = shape.dims();
    let mut rng = StdRng::seed_from_u64(rows as u64);
    let mut host = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let xs = dims
        .iter()
        .map(|d| stream.clone_htod(&host(rows * d.0)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ys = dims
        .iter()
        .map(|d| stream.alloc_zeros::<f32>(rows * d.1))
        .collect::<Result<Vec<_>, _>>()?;
    for _ in 0..2 {
        step(gpu, shape, &xs, &mut ys, segs, kind)?;
    }
    stream.synchronize()?;
    let t = Instant::now();
    for _ in 0..steps {
        step(gpu, shape, &xs, &mut ys, segs, kind)?;
    }
    stream.synchronize()?;
    Ok(t.elapsed().as_secs_f64() * 1e3 / steps as f64)
}

fn one_row_each(rows: usize, pick: impl FnMut(usize) -> Arc<Adapter>) -> Vec<Segment> {
    let mut pick = pick;
    (0..rows)
        .map(|r| Segment {
            start: r,
            len: 1,
            adapter: Some(pick(r)),
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let ordinal = env_usize("COMMONS_GPU", 0)?;
    let info = match probe(ordinal) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gpu_lora: no usable GPU: {e}");
            std::process::exit(2);
        }
    };
    let registered = env_usize("COMMONS_GPU_BENCH_ADAPTERS", 1000)?.max(1);
    let steps = env_usize("COMMONS_GPU_BENCH_STEPS", 20)?.max(1);
    let batches: Vec<usize> = std::env::var("COMMONS_GPU_BENCH_BATCHES")
        .unwrap_or_else(|_| "1,16,64,256".into())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    let shapes: Vec<Shape> = std::env::var("COMMONS_GPU_BENCH_SHAPES")
        .unwrap_or_else(|_| "1b,8b".into())
        .split(',')
        .filter_map(|s| match s.trim() {
            "1b" => Some(B1),
            "8b" => Some(B8),
            _ => None,
        })
        .collect();
    println!(
        "commons GPU LoRA bench on {} (compute {}.{}, {:.1} GiB free of {:.1} GiB): {registered} adapters, batches {batches:?}, {steps} steps",
        info.name,
        info.compute_capability.0,
        info.compute_capability.1,
        info.free_bytes as f64 / (1u64 << 30) as f64,
        info.total_bytes as f64 / (1u64 << 30) as f64
    );
    let page_bytes = 2 << 20;
    let mut out: Vec<Value> = Vec::new();
    for shape in shapes {
        // The pool: free memory less the base model's bf16 weights and a 2 GiB margin.
        let base_bytes = (shape.params * 2.0) as usize;
        let free = probe(ordinal)?.free_bytes;
        let pool_bytes = free
            .checked_sub(base_bytes + (2 << 30))
            .context("not enough device memory for this shape")?;
        let gpu = CudaLora::new(CudaLoraConfig {
            ordinal,
            pool_bytes,
            page_bytes,
            weights: WeightDtype::Bf16,
        })?;
        let dims = shape.dims();
        let sizes: Vec<usize> = (0..shape.layers)
            .flat_map(|_| dims.iter().flat_map(|&(i, o)| [16 * i * 2, o * 16 * 2]))
            .collect();
        let (_, pages_per_adapter) = pack(&sizes, page_bytes, 256).context("page too small")?;
        println!(
            "\n## {} shape: adapter {:.1} MB in bf16 ({pages_per_adapter} pages of {} KiB); pool {:.1} GiB",
            shape.name,
            sizes.iter().sum::<usize>() as f64 / 1e6,
            page_bytes >> 10,
            pool_bytes as f64 / (1u64 << 30) as f64
        );

        // Adapter loads: 50 cold loads, each evicted after.
        let t = Instant::now();
        let probe_set = adapters(shape, 50, 7_000);
        println!(
            "50 adapters generated in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (mut total, mut copy) = (Vec::new(), Vec::new());
        for a in &probe_set {
            let l = gpu.load_blocking(a)?;
            total.push(l.total.as_secs_f64() * 1e3);
            copy.push(l.copy_ms);
            gpu.evict(a)?;
        }
        let load = json!({
            "p50_ms": percentile(&mut total, 0.5), "p99_ms": percentile(&mut total, 0.99),
            "copy_p50_ms": percentile(&mut copy, 0.5), "copy_p99_ms": percentile(&mut copy, 0.99),
        });
        println!(
            "adapter load host → device (convert + copy): p50 {:.2} ms, p99 {:.2} ms; copies alone p50 {:.2} ms, p99 {:.2} ms",
            load["p50_ms"].as_f64().unwrap_or(0.0),
            load["p99_ms"].as_f64().unwrap_or(0.0),
            load["copy_p50_ms"].as_f64().unwrap_or(0.0),
            load["copy_p99_ms"].as_f64().unwrap_or(0.0)
        );

        // A cold adapter's share of time to first token: load + a 128-token SGMV prefill pass.
        let cold = probe_set[0].clone();
        let prompt = 128;
        let cold_load_ms = gpu.load_blocking(&cold)?.total.as_secs_f64() * 1e3;
        let segs = [Segment {
            start: 0,
            len: prompt,
            adapter: Some(cold.clone()),
        }];
        let warm_prefill = time_steps(&gpu, shape, prompt, &segs, Gmv::Sgmv, 1)?;
        let cold_ttft_ms = cold_load_ms + warm_prefill;
        println!(
            "cold adapter, 128-token prompt: load + LoRA prefill pass {cold_ttft_ms:.2} ms (LoRA prefill alone, warm: {warm_prefill:.2} ms; base model not included)"
        );
        let mut prefill = Vec::new();
        for len in [128, 512] {
            let segs = [Segment {
                start: 0,
                len,
                adapter: Some(cold.clone()),
            }];
            let ms = time_steps(&gpu, shape, len, &segs, Gmv::Sgmv, steps)?;
            println!("LoRA prefill pass (SGMV), {len} tokens, one adapter: {ms:.2} ms");
            prefill.push(json!({"tokens": len, "ms": ms}));
        }
        drop(probe_set);
        gpu.evict(&cold)?;

        // Decode: one adapter for all, mixed from `registered` (uniform, Zipf).
        let (mut rows_out, mut resident_out) = (Vec::new(), Value::Null);
        if shape.name == "1b" {
            let t = Instant::now();
            let all = adapters(shape, registered, 10_000);
            println!(
                "{registered} adapters generated in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            let t = Instant::now();
            for a in &all {
                if !gpu.preload(a, false)? {
                    bail!("{registered} adapters do not fit in the pool");
                }
            }
            gpu.stream().synchronize()?;
            println!(
                "{registered} adapters uploaded in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            let cdf = zipf_cdf(registered);
            let mut rng = StdRng::seed_from_u64(64);
            println!(
                "| batch | mode | LoRA ms/step | LoRA-only tokens/s ceiling | distinct adapters |"
            );
            println!("|---:|---|---:|---:|---:|");
            for &b in &batches {
                let one = one_row_each(b, |_| all[0].clone());
                let uniform = one_row_each(b, |_| all[rng.random_range(0..registered)].clone());
                let zipf = one_row_each(b, |_| {
                    let u: f64 = rng.random();
                    all[cdf.partition_point(|&c| c < u).min(registered - 1)].clone()
                });
                for (mode, segs) in [
                    ("one", &one),
                    ("mixed-uniform", &uniform),
                    ("mixed-zipf", &zipf),
                ] {
                    let mut distinct: Vec<usize> = segs
                        .iter()
                        .filter_map(|s| s.adapter.as_ref().map(|a| Arc::as_ptr(a) as usize))
                        .collect();
                    distinct.sort_unstable();
                    distinct.dedup();
                    let ms = time_steps(&gpu, shape, b, segs, Gmv::Bgmv, steps)?;
                    let tps = b as f64 / (ms / 1e3);
                    println!("| {b} | {mode} | {ms:.3} | {tps:.0} | {} |", distinct.len());
                    rows_out.push(json!({"batch": b, "mode": mode, "lora_ms_per_step": ms,
                        "lora_only_tokens_per_s": tps, "distinct_adapters": distinct.len()}));
                }
            }
            for a in &all {
                gpu.evict(a)?;
            }
            drop(all);

            // Residency beside a 32-request KV working set (512 + 256 tokens each).
            let kv_bytes = 32 * (512 + 256) * shape.kv_bytes_per_token();
            let mut kv = gpu
                .alloc_kv_pages(kv_bytes.div_ceil(page_bytes))?
                .context("the KV working set does not fit")?;
            let s = gpu.stats();
            let fit = s.free_pages / pages_per_adapter;
            println!(
                "beside a 32-request KV working set ({:.2} GiB): {} free pages: room for {fit} more rank-16 adapters ({pages_per_adapter} pages each, computed from the page count; base weights {:.1} GiB reserved)",
                kv_bytes as f64 / (1u64 << 30) as f64,
                s.free_pages,
                base_bytes as f64 / (1u64 << 30) as f64
            );
            resident_out = json!({"kv_bytes": kv_bytes, "free_pages": s.free_pages,
                "pages_per_adapter": pages_per_adapter, "adapters": fit});
            gpu.release_kv_pages(&mut kv);
        }
        out.push(
            json!({"shape": shape.name, "load": load, "cold_ttft_lora_ms": cold_ttft_ms,
            "prefill": prefill, "decode": rows_out, "resident_beside_kv": resident_out}),
        );
    }
    println!(
        "{}",
        json!({"bench": "gpu_lora", "device": info.name, "registered": registered, "steps": steps, "shapes": out})
    );
    Ok(())
}
