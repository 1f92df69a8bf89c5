//! The engine as the appliance drives it: the dev model, many adapters in one batch,
//! zero adapters, refusals, cancellation and unloading.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use commons_compute::Error;
use commons_compute::devmodel::{Shape, ensure_dev_model, synthetic_adapter, write_llama};
use commons_compute::engine::{
    AdapterFiles, AdapterKey, AdapterSource, Engine, EngineConfig, Event, FinishReason,
    GenerateRequest, Hash, Tier,
};
use commons_compute::lora::Proj;
use commons_compute::model::Model;
use commons_compute::sampling::SamplingParams;
use commons_compute::tokenizer::{ChatMessage, Tokenizer};

#[derive(Default)]
struct MemSource(Mutex<HashMap<Hash, AdapterFiles>>);

impl AdapterSource for MemSource {
    fn fetch(&self, hash: &Hash) -> commons_compute::Result<AdapterFiles> {
        self.0
            .lock()
            .expect("lock")
            .get(hash)
            .cloned()
            .ok_or_else(|| Error::NotFound("no such adapter".into()))
    }
}

fn dev_engine(dir: &std::path::Path, source: Arc<MemSource>, cfg: EngineConfig) -> Engine {
    ensure_dev_model(dir).expect("dev model");
    let model = Model::load(dir).expect("load");
    let tok = Tokenizer::load(dir, &model.cfg.eos_token_ids).expect("tokenizer");
    Engine::start(model, tok, source, cfg)
}

fn greedy(prompt: Vec<u32>, adapter: Option<AdapterKey>, n: usize) -> GenerateRequest {
    GenerateRequest {
        adapter,
        prompt,
        max_tokens: n,
        sampling: SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        stop: Vec::new(),
        ignore_eos: true,
    }
}

async fn collect(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> (Vec<u32>, String, FinishReason) {
    let mut ids = Vec::new();
    let mut text = String::new();
    while let Some(e) = rx.recv().await {
        match e {
            Event::Token { id, text: t, .. } => {
                ids.push(id);
                text.push_str(&t);
            }
            Event::Done { reason, .. } => return (ids, text, reason),
            Event::Error(e) => panic!("request failed: {e}"),
        }
    }
    panic!("stream ended without Done")
}

fn add(source: &MemSource, files: AdapterFiles, name: &str) -> AdapterKey {
    let hash = files.hash();
    source.0.lock().expect("lock").insert(hash, files);
    AdapterKey {
        name: name.into(),
        hash,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_model_chats_and_batches_do_not_change_tokens() {
    let dir = tempfile::tempdir().expect("tmp");
    let model_dir = dir.path().join("models/dev");
    let source = Arc::new(MemSource::default());
    let engine = dev_engine(&model_dir, source.clone(), EngineConfig::default());
    // The dev model is a complete HF-format model: template, tokenizer, eos.
    let text = engine
        .tokenizer
        .render_chat(&[ChatMessage {
            role: "user".into(),
            content: "Hello!".into(),
        }])
        .expect("template");
    assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
    let prompt = engine.tokenizer.encode(&text, false).expect("encode");
    assert!(prompt.len() > 3);
    let (ids, _text, reason) = collect(
        engine
            .submit(greedy(prompt.clone(), None, 6))
            .expect("submit"),
    )
    .await;
    assert_eq!(ids.len(), 6);
    assert_eq!(reason, FinishReason::Length);

    // 8 adapters of mixed ranks (1 … 128) over 16 requests.
    let cfg = engine.model_config.clone();
    let ranks = [1usize, 2, 4, 8, 16, 32, 64, 128];
    let keys: Vec<AdapterKey> = ranks
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let f = synthetic_adapter(&cfg, r, &Proj::ALL, 100 + i as u64, false).expect("adapter");
            add(&source, f, &format!("a{i}"))
        })
        .collect();
    let prompts: Vec<Vec<u32>> = (0..16)
        .map(|i| {
            let p = format!("Request number {i} asks about datanets and adapters.");
            engine.tokenizer.encode(&p, false).expect("encode")
        })
        .collect();
    let mut alone = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let rx = engine
            .submit(greedy(p.clone(), Some(keys[i % 8].clone()), 12))
            .expect("submit");
        alone.push(collect(rx).await.0);
    }
    let rxs: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            engine
                .submit(greedy(p.clone(), Some(keys[i % 8].clone()), 12))
                .expect("submit")
        })
        .collect();
    let mut together = Vec::new();
    for rx in rxs {
        together.push(collect(rx).await.0);
    }
    for i in 0..16 {
        assert_eq!(alone[i], together[i], "request {i} changed when batched");
    }
    // The adapters change the output (else the comparison above proves nothing).
    let base: Vec<u32> = collect(
        engine
            .submit(greedy(prompts[0].clone(), None, 12))
            .expect("submit"),
    )
    .await
    .0;
    assert_ne!(base, alone[0], "adapter a0 made no difference");

    // A zero adapter gives the base model's tokens exactly.
    let zero = add(
        &source,
        synthetic_adapter(&cfg, 16, &Proj::ALL, 7, true).expect("zero"),
        "zero",
    );
    let z = collect(
        engine
            .submit(greedy(prompts[0].clone(), Some(zero.clone()), 12))
            .expect("submit"),
    )
    .await
    .0;
    assert_eq!(z, base);

    let stats = engine.adapter_stats(&keys[0].hash);
    assert_eq!(stats.requests, 4, "requests 0 and 8, alone and together");
    assert_eq!(stats.tier, Tier::Device);
    assert!(
        stats.loads >= 1 && stats.completion_tokens == 48,
        "{stats:?}"
    );

    // Unloading frees host and device memory.
    let before = engine.stats().expect("stats");
    assert!(
        before.device_adapters >= 9 && before.host_adapters >= 9,
        "{before:?}"
    );
    engine.evict(zero.hash);
    let after = engine.stats().expect("stats");
    assert_eq!(after.device_adapters, before.device_adapters - 1);
    assert_eq!(after.host_adapters, before.host_adapters - 1);
    assert!(after.host_adapter_bytes < before.host_adapter_bytes);
    assert_eq!(engine.adapter_stats(&zero.hash).tier, Tier::Cold);
    assert_eq!(
        after.kv_blocks_free, after.kv_blocks_total,
        "finished requests hold no blocks"
    );
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_disconnects_and_bad_adapters() {
    let dir = tempfile::tempdir().expect("tmp");
    let source = Arc::new(MemSource::default());
    let engine = dev_engine(
        &dir.path().join("dev"),
        source.clone(),
        EngineConfig {
            max_waiting: 2,
            max_running: 1,
            ..Default::default()
        },
    );
    let cfg = engine.model_config.clone();
    let p = vec![5u32; 10];
    // Context and max_tokens limits.
    let e = engine
        .submit(greedy(vec![5; 2040], None, 100))
        .expect_err("must be refused");
    assert!(
        e.to_string().contains("maximum context length is 2048"),
        "{e}"
    );
    let e = engine
        .submit(greedy(p.clone(), None, 100_000))
        .expect_err("must be refused");
    assert!(e.to_string().contains("over this node's limit"), "{e}");
    assert!(engine.submit(greedy(vec![], None, 1)).is_err());
    assert!(engine.submit(greedy(vec![u32::MAX], None, 1)).is_err());

    // A full queue answers Overloaded (HTTP 429) instead of growing without bound.
    let busy: Vec<_> = (0..8)
        .filter_map(|_| engine.submit(greedy(p.clone(), None, 200)).ok())
        .collect();
    let e = engine
        .submit(greedy(p.clone(), None, 200))
        .expect_err("must be refused");
    assert!(matches!(e, Error::Overloaded(_)), "{e}");
    drop(busy);
    // The engine notices abandoned requests at its next step; until then the queue is full.
    let mut tries = 0;
    while engine.stats().expect("stats").waiting > 0 {
        tries += 1;
        assert!(tries < 200, "abandoned requests were not dropped");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // A client that goes away frees its blocks; others keep being served.
    let gone = engine
        .submit(greedy(p.clone(), None, 2000))
        .expect("submit");
    let mut first = gone;
    let _ = first.recv().await;
    drop(first);
    let (ids, _, _) = collect(engine.submit(greedy(p.clone(), None, 4)).expect("submit")).await;
    assert_eq!(ids.len(), 4);
    let s = engine.stats().expect("stats");
    assert_eq!(s.kv_blocks_free, s.kv_blocks_total);

    // Adapters that would silently serve the base model, or do not fit, are refused.
    let other = Model::from_tensors(
        {
            let d = dir.path().join("other");
            write_llama(
                &d,
                Shape {
                    vocab: cfg.vocab_size,
                    hidden: 128,
                    intermediate: 256,
                    layers: 2,
                    heads: 4,
                    kv_heads: 4,
                    max_positions: 64,
                },
                1,
                None,
            )
            .expect("write");
            commons_compute::config::ModelConfig::parse(
                &std::fs::read_to_string(d.join("config.json")).expect("read"),
            )
            .expect("cfg")
        },
        &commons_compute::weights::Tensors::open_dir(&dir.path().join("other")).expect("open"),
    )
    .expect("other model");
    let wrong_base = synthetic_adapter(&other.cfg, 8, &Proj::ALL, 1, false).expect("adapter");
    let e = engine
        .validate_adapter(&wrong_base)
        .expect_err("must be refused")
        .to_string();
    assert!(e.contains("another base model"), "{e}");
    let mut lm_head = synthetic_adapter(&cfg, 8, &[Proj::Q], 1, false).expect("adapter");
    lm_head.config = lm_head.config.replace(
        "\"bias\": \"none\"",
        "\"bias\": \"none\", \"modules_to_save\": [\"lm_head\"]",
    );
    let e = engine
        .validate_adapter(&lm_head)
        .expect_err("must be refused")
        .to_string();
    assert!(e.contains("modules_to_save"), "{e}");
    let garbage = AdapterFiles {
        config: "{}".into(),
        weights: Arc::new(b"not safetensors".to_vec()),
    };
    assert!(engine.validate_adapter(&garbage).is_err());
    // Rank over the limit.
    let r300 = synthetic_adapter(&cfg, 300, &[Proj::Q], 1, false).expect("adapter");
    let e = engine
        .validate_adapter(&r300)
        .expect_err("must be refused")
        .to_string();
    assert!(e.contains("outside 1..=256"), "{e}");
    // Weights stored as integers are refused, not reinterpreted.
    let mut ints = synthetic_adapter(&cfg, 4, &[Proj::Q], 1, false).expect("adapter");
    let mut w = ints.weights.as_ref().clone();
    if let Some(p) = w.windows(5).position(|x| x == b"\"F32\"") {
        w[p + 1..p + 4].copy_from_slice(b"I32");
    }
    ints.weights = Arc::new(w);
    let e = engine
        .validate_adapter(&ints)
        .expect_err("must be refused")
        .to_string();
    assert!(e.contains("not supported"), "{e}");
    // A request for an adapter the store cannot produce fails cleanly.
    let missing = AdapterKey {
        name: "missing".into(),
        hash: [9; 32],
    };
    let mut rx = engine
        .submit(greedy(p.clone(), Some(missing), 4))
        .expect("submit");
    match rx.recv().await {
        Some(Event::Error(e)) => assert!(e.contains("could not be loaded"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    engine.shutdown();
}
