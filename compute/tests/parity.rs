//! Parity with Hugging Face transformers + PEFT: for every architecture the README marks
//! "works", a tiny checkpoint with random weights and reference logits made by
//! `fixtures/make_fixtures.py` (see fixtures/README.md for where and with which versions).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use commons_compute::kv::KvCache;
use commons_compute::lora::{Adapter, AdapterConfig, CpuLora};
use commons_compute::model::{Model, SeqInput};
use commons_compute::sampling::argmax;
use commons_compute::weights::Tensors;

/// f32 logits of an eager PyTorch forward against ours: different summation orders, same math.
const TOL: f32 = 2e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn adapter(dir: &Path, model: &Model) -> Arc<Adapter> {
    let cfg = AdapterConfig::parse(
        &std::fs::read_to_string(dir.join("adapter_config.json")).expect("config"),
    )
    .expect("adapter config");
    let bytes = std::fs::read(dir.join("adapter_model.safetensors")).expect("weights");
    let t = Tensors::from_bytes("adapter", Arc::new(bytes)).expect("safetensors");
    Arc::new(Adapter::load(&cfg, &t, &model.cfg).expect("adapter loads"))
}

fn close(arch: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{arch} {what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < TOL, "{arch} {what}: max |Δ| = {worst}");
}

/// Full forward of one row, all positions' logits.
fn forward(model: &Model, ids: &[u32], adapter: Option<Arc<Adapter>>) -> Vec<f32> {
    let mut kv = KvCache::new(model.cfg.num_layers, model.kv_width(), 4, 64);
    let mut blocks = Vec::new();
    assert!(kv.reserve(&mut blocks, ids.len()));
    let seq = SeqInput {
        tokens: ids,
        start: 0,
        blocks: &blocks,
        adapter,
    };
    model
        .forward(&[seq], &mut kv, &CpuLora, true)
        .expect("forward")
}

/// Greedy decoding through the KV cache: prefill, then one token at a time.
fn greedy(
    model: &Model,
    ids: &[u32],
    n: usize,
    adapter: Option<Arc<Adapter>>,
) -> (Vec<u32>, Vec<f32>) {
    let mut kv = KvCache::new(model.cfg.num_layers, model.kv_width(), 4, 64);
    let mut blocks = Vec::new();
    let mut toks = ids.to_vec();
    let mut out = Vec::new();
    let mut all_logits = Vec::new();
    let mut start = 0;
    for _ in 0..n {
        assert!(kv.reserve(&mut blocks, toks.len()));
        let seq = SeqInput {
            tokens: &toks[start..],
            start,
            blocks: &blocks,
            adapter: adapter.clone(),
        };
        let logits = model
            .forward(&[seq], &mut kv, &CpuLora, false)
            .expect("forward");
        let t = argmax(&logits);
        all_logits.extend_from_slice(&logits);
        start = toks.len();
        toks.push(t);
        out.push(t);
    }
    (out, all_logits)
}

fn check(arch: &str) {
    let dir = fixtures().join(arch);
    let model = Model::load(&dir.join("model")).expect("model loads");
    let r = Tensors::open_dir(&dir).expect("reference");
    let (ids, shape) = r.get_ids("input_ids").expect("input_ids");
    let (rows, len) = (shape[0], shape[1]);
    let vocab = model.cfg.vocab_size;
    let ad = adapter(&dir.join("adapter"), &model);
    let rs = adapter(&dir.join("adapter_rs"), &model);
    for (name, a) in [
        ("logits_base", None),
        ("logits_adapter", Some(ad.clone())),
        ("logits_adapter_rs", Some(rs)),
    ] {
        let want = r.get(name, &[rows, len, vocab]).expect(name);
        for row in 0..rows {
            let ids: Vec<u32> = ids[row * len..(row + 1) * len]
                .iter()
                .map(|&x| x as u32)
                .collect();
            let got = forward(&model, &ids, a.clone());
            close(
                arch,
                &format!("{name}[{row}]"),
                &got,
                &want[row * len * vocab..(row + 1) * len * vocab],
            );
        }
    }
    for (name, a) in [("greedy_base", None), ("greedy_adapter", Some(ad))] {
        let (want, wshape) = r.get_ids(name).expect(name);
        let n = wshape[1];
        let want_logits = r
            .get(&format!("{name}_logits"), &[rows, n, vocab])
            .expect("step logits");
        for row in 0..rows {
            let ids: Vec<u32> = ids[row * len..(row + 1) * len]
                .iter()
                .map(|&x| x as u32)
                .collect();
            let (got, logits) = greedy(&model, &ids, n, a.clone());
            let want_row: Vec<u32> = want[row * n..(row + 1) * n]
                .iter()
                .map(|&x| x as u32)
                .collect();
            assert_eq!(got, want_row, "{arch} {name}[{row}] tokens");
            close(
                arch,
                &format!("{name}[{row}] step logits"),
                &logits,
                &want_logits[row * n * vocab..(row + 1) * n * vocab],
            );
        }
    }
}

#[test]
fn llama() {
    check("llama");
}

#[test]
fn mistral() {
    check("mistral");
}

#[test]
fn qwen2() {
    check("qwen2");
}

#[test]
fn qwen3() {
    check("qwen3");
}

#[test]
fn gemma() {
    check("gemma");
}

#[test]
fn gemma2() {
    check("gemma2");
}

/// Architectures without an implementation are refused by name, never half-loaded.
#[test]
fn falcon_and_bloom_are_refused_clearly() {
    for arch in ["falcon", "bloom"] {
        let e = Model::load(&fixtures().join(arch).join("model"))
            .expect_err("must be refused")
            .to_string();
        assert!(e.contains("not supported yet"), "{arch}: {e}");
    }
}
