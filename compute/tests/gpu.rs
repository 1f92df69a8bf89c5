//! GPU parity (feature `cuda`): the BGMV and SGMV kernels against `CpuLora` and against the
//! plain-Rust reference of their semantics (`punica::bgmv_ref` / `sgmv_ref`), on random inputs
//! covering ranks 1–128, batch sizes 1–256, mixed adapters, repeated adapters and rows without
//! an adapter, with f32 and bf16 weights. Without a usable GPU every test prints why and
//! passes without checking anything (`cargo test -p commons-compute --features cuda --test gpu
//! -- --nocapture` shows the reason).
#![cfg(feature = "cuda")]

use std::sync::Arc;

use commons_compute::cuda::{CudaLora, CudaLoraConfig, ENTRY_POINTS, Gmv, compile_kernels, probe};
use commons_compute::lora::{Adapter, CpuLora, LoraKernel, Proj};
use commons_compute::punica::{
    WeightDtype, bgmv_ref, plan, random_adapter, random_segments, rounded_to_bf16,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The GPU to test on, or None after printing why the test is skipped.
fn gpu(weights: WeightDtype) -> Option<CudaLora> {
    let ordinal = std::env::var("COMMONS_TEST_GPU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Err(e) = probe(ordinal) {
        eprintln!("SKIPPED: no usable GPU for the parity tests: {e}");
        return None;
    }
    match CudaLora::new(CudaLoraConfig {
        ordinal,
        pool_bytes: 512 << 20,
        page_bytes: 1 << 20,
        weights,
    }) {
        Ok(l) => Some(l),
        Err(e) => panic!("a GPU was found but the LoRA backend failed to start: {e}"),
    }
}

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut worst = (0.0f32, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let e = (g - w).abs() / (1.0 + w.abs());
        assert!(e.is_finite(), "{what}: element {i} is {g}");
        if e > worst.0 {
            worst = (e, i);
        }
    }
    assert!(
        worst.0 <= tol,
        "{what}: element {} is {} but should be {} (relative error {} > {tol})",
        worst.1,
        got[worst.1],
        want[worst.1],
        worst.0
    );
}

/// Adapters of ranks 1–128 on the shapes of a small model whose projections differ in size
/// (in and out not multiples of 32, so the kernels' edges are exercised).
fn adapters(seed: u64) -> (Vec<Arc<Adapter>>, [(usize, usize); 7]) {
    let (h, q, kv, im) = (200, 200, 72, 520);
    let dims = [(h, q), (h, kv), (h, kv), (q, h), (h, im), (h, im), (im, h)];
    let ranks = [1, 2, 4, 7, 8, 16, 32, 33, 64, 100, 128];
    let ads = ranks
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let targets: &[Proj] = if i % 4 == 1 {
                &[Proj::Q, Proj::V]
            } else {
                &Proj::ALL
            };
            Arc::new(random_adapter(2, dims, r, targets, seed + i as u64))
        })
        .collect();
    (ads, dims)
}

fn parity(weights: WeightDtype) {
    let Some(gpu) = gpu(weights) else { return };
    eprintln!("parity on {} ({weights:?} weights)", gpu.info().name);
    let (ads, dims) = adapters(60);
    // What CpuLora computes with the device's weights: bf16-rounded copies for bf16.
    let reference: Vec<Arc<Adapter>> = match weights {
        WeightDtype::F32 => ads.clone(),
        WeightDtype::Bf16 => ads.iter().map(|a| Arc::new(rounded_to_bf16(a))).collect(),
    };
    let mut rng = StdRng::seed_from_u64(6);
    for rows in [1usize, 2, 3, 16, 31, 64, 100, 256] {
        for max_run in [1, 4, 9, rows] {
            // Segments over the device adapters, and the same segments over the reference
            // adapters.
            let segs = random_segments(&mut rng, rows, &ads, max_run, 0.15);
            let rsegs: Vec<_> = segs
                .iter()
                .map(|s| commons_compute::lora::Segment {
                    start: s.start,
                    len: s.len,
                    adapter: s.adapter.as_ref().map(|a| {
                        let i = ads
                            .iter()
                            .position(|b| Arc::ptr_eq(a, b))
                            .expect("one of ours");
                        reference[i].clone()
                    }),
                })
                .collect();
            for (layer, proj) in [(0, Proj::Q), (1, Proj::V), (0, Proj::Down), (1, Proj::Up)] {
                let (in_dim, out_dim) = dims[proj as usize];
                let x: Vec<f32> = (0..rows * in_dim)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let y0: Vec<f32> = (0..rows * out_dim)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let mut want = y0.clone();
                CpuLora
                    .apply(layer, proj, &x, in_dim, &mut want, out_dim, &rsegs)
                    .expect("cpu");
                let mut reference_out = y0.clone();
                bgmv_ref(
                    &plan(layer, proj, &segs, rows),
                    &x,
                    in_dim,
                    &mut reference_out,
                    out_dim,
                    weights,
                );
                for kind in [Gmv::Bgmv, Gmv::Sgmv, Gmv::Auto] {
                    let mut got = y0.clone();
                    gpu.apply_host(layer, proj, &x, in_dim, &mut got, out_dim, &segs, kind)
                        .expect("gpu");
                    let what = format!(
                        "{kind:?} rows {rows} run {max_run} layer {layer} {proj:?} {weights:?}"
                    );
                    close(&got, &want, 1e-4, &format!("{what} vs CpuLora"));
                    close(&got, &reference_out, 1e-4, &format!("{what} vs reference"));
                }
            }
        }
    }
}

/// The kernels compile with NVRTC and export every entry point. Needs NVRTC only (no GPU), so
/// it also runs on a build machine with the `nvidia-cuda-nvrtc` wheel on `LD_LIBRARY_PATH`.
#[test]
fn kernels_compile_with_nvrtc() {
    let ptx = match compile_kernels() {
        Ok(p) => p,
        Err(e) if e.to_string().contains("not installed") => {
            eprintln!("SKIPPED: cannot check the kernels compile: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    for name in ENTRY_POINTS {
        assert!(
            ptx.contains(&format!(".entry {name}")),
            "{name} missing from the PTX"
        );
    }
    eprintln!("lora.cu compiles: {} bytes of PTX", ptx.len());
}

#[test]
fn bgmv_sgmv_match_cpu_f32_weights() {
    parity(WeightDtype::F32);
}

#[test]
fn bgmv_sgmv_match_cpu_bf16_weights() {
    parity(WeightDtype::Bf16);
}

/// Rows without an adapter come back bit for bit as they went in, and an adapter evicted and
/// loaded again gives the same result.
#[test]
fn empty_rows_untouched_and_reload_identical() {
    let Some(gpu) = gpu(WeightDtype::Bf16) else {
        return;
    };
    let (ads, dims) = adapters(7);
    let (in_dim, out_dim) = dims[Proj::O as usize];
    let rows = 64;
    let mut rng = StdRng::seed_from_u64(1);
    let segs = random_segments(&mut rng, rows, &ads, 3, 0.5);
    let x: Vec<f32> = (0..rows * in_dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let y0: Vec<f32> = (0..rows * out_dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut first = y0.clone();
    gpu.apply_host(
        0,
        Proj::O,
        &x,
        in_dim,
        &mut first,
        out_dim,
        &segs,
        Gmv::Bgmv,
    )
    .expect("gpu");
    let p = plan(0, Proj::O, &segs, rows);
    for (r, &slot) in p.row_slot.iter().enumerate() {
        if slot < 0 {
            assert_eq!(
                first[r * out_dim..(r + 1) * out_dim],
                y0[r * out_dim..(r + 1) * out_dim],
                "row {r} has no adapter"
            );
        }
    }
    for a in &ads {
        gpu.evict(a).expect("evict");
    }
    assert_eq!(gpu.stats().adapters, 0);
    let mut again = y0.clone();
    gpu.apply_host(
        0,
        Proj::O,
        &x,
        in_dim,
        &mut again,
        out_dim,
        &segs,
        Gmv::Bgmv,
    )
    .expect("gpu");
    assert_eq!(first, again);
}

/// KV pages and adapters share the pool: taking KV pages evicts idle adapters.
#[test]
fn kv_pages_evict_idle_adapters() {
    let Some(gpu) = gpu(WeightDtype::Bf16) else {
        return;
    };
    let (ads, _) = adapters(9);
    for a in &ads {
        assert!(gpu.preload(a, true).expect("preload"));
    }
    let s = gpu.stats();
    assert_eq!(s.adapters, ads.len());
    let mut kv = gpu
        .alloc_kv_pages(s.free_pages + 1)
        .expect("alloc")
        .expect("evicting an adapter frees a page");
    assert!(gpu.stats().adapters < ads.len());
    gpu.release_kv_pages(&mut kv);
}

/// The engine with the LoRA term on the GPU (base model on the CPU) gives the same greedy
/// tokens as with `CpuLora`, for requests on adapters of ranks 1–128 batched together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_tokens_match_cpu_with_gpu_lora() {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use commons_compute::devmodel::{ensure_dev_model, synthetic_adapter};
    use commons_compute::engine::{
        AdapterFiles, AdapterKey, AdapterSource, Engine, EngineConfig, Event, GenerateRequest, Hash,
    };
    use commons_compute::model::Model;
    use commons_compute::sampling::SamplingParams;
    use commons_compute::tokenizer::Tokenizer;

    #[derive(Default)]
    struct MemSource(Mutex<HashMap<Hash, AdapterFiles>>);
    impl AdapterSource for MemSource {
        fn fetch(&self, hash: &Hash) -> commons_compute::Result<AdapterFiles> {
            self.0
                .lock()
                .expect("lock")
                .get(hash)
                .cloned()
                .ok_or_else(|| commons_compute::Error::NotFound("no such adapter".into()))
        }
    }

    let Some(gpu) = gpu(WeightDtype::F32) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    ensure_dev_model(dir.path()).expect("dev model");
    let source = Arc::new(MemSource::default());
    let start = |lora: Option<CudaLora>| {
        let model = Model::load(dir.path()).expect("load");
        let tok = Tokenizer::load(dir.path(), &model.cfg.eos_token_ids).expect("tokenizer");
        match lora {
            None => Engine::start(model, tok, source.clone(), EngineConfig::default()),
            Some(l) => Engine::start_with_kernel(
                model,
                tok,
                source.clone(),
                EngineConfig::default(),
                Box::new(l),
            ),
        }
    };
    let cpu = start(None);
    let cfg = cpu.model_config.clone();
    let keys: Vec<AdapterKey> = [1usize, 2, 8, 16, 64, 128]
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let f = synthetic_adapter(&cfg, r, &Proj::ALL, 300 + i as u64, false).expect("adapter");
            let hash = f.hash();
            source.0.lock().expect("lock").insert(hash, f);
            AdapterKey {
                name: format!("a{i}"),
                hash,
            }
        })
        .collect();
    let on_gpu = start(Some(gpu));
    let run = |e: &Engine| {
        let rxs: Vec<_> = (0..12)
            .map(|i| {
                let prompt = e
                    .tokenizer
                    .encode(&format!("Request {i} about adapters."), false)
                    .expect("encode");
                e.submit(GenerateRequest {
                    adapter: (i % 7 != 6).then(|| keys[i % keys.len()].clone()),
                    prompt,
                    max_tokens: 8,
                    sampling: SamplingParams {
                        temperature: 0.0,
                        ..Default::default()
                    },
                    stop: Vec::new(),
                    ignore_eos: true,
                })
                .expect("submit")
            })
            .collect();
        rxs
    };
    let mut outs = Vec::new();
    for e in [&cpu, &on_gpu] {
        let mut all = Vec::new();
        for mut rx in run(e) {
            let mut ids = Vec::new();
            while let Some(ev) = rx.recv().await {
                match ev {
                    Event::Token { id, .. } => ids.push(id),
                    Event::Done { .. } => break,
                    Event::Error(err) => panic!("request failed: {err}"),
                }
            }
            all.push(ids);
        }
        outs.push(all);
    }
    assert_eq!(outs[0], outs[1], "GPU LoRA changed greedy tokens");
    cpu.shutdown();
    on_gpu.shutdown();
}
