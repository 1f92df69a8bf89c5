//! The inference engine: one thread that owns the model, the paged KV cache and the
//! device-resident adapters, and runs a continuous-batching loop over requests for any mix of
//! adapters.
//!
//! Adapters live in three tiers: *cold* (the caller's blob store, behind [`AdapterSource`]),
//! *host* (the raw files in memory, LRU within a byte budget, filled by a loader thread so the
//! engine never waits on storage), and *device* (parsed, kernel-ready weights, LRU within a
//! slot budget; on the CPU backend "device" is the engine's own memory). Requests name an
//! adapter by its content hash, so re-adding an adapter under the same name can never reuse
//! the old weights or cache entries.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::kv::KvCache;
use crate::lora::{Adapter, AdapterConfig, CpuLora, LoraKernel};
use crate::model::{Model, SeqInput};
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::{Detokenizer, Tokenizer};
use crate::weights::Tensors;
use crate::{Error, Result};

/// A content hash (blake3 of the adapter's files).
pub type Hash = [u8; 32];

/// Limits of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Bytes of the KV cache pool.
    pub kv_cache_bytes: usize,
    /// Positions per KV block.
    pub block_size: usize,
    /// Tokens per forward step (prefill and decode together); one longer prompt may run alone.
    pub max_batch_tokens: usize,
    /// Requests generating at once.
    pub max_running: usize,
    /// Requests waiting beyond which new ones are refused (HTTP 429).
    pub max_waiting: usize,
    /// Bytes of adapter files kept in host memory.
    pub host_adapter_bytes: usize,
    /// Adapters kept parsed and ready for the kernels.
    pub device_adapter_slots: usize,
    /// Upper bound on `max_tokens`.
    pub max_new_tokens: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kv_cache_bytes: 512 << 20,
            block_size: 16,
            max_batch_tokens: 4096,
            max_running: 64,
            max_waiting: 512,
            host_adapter_bytes: 2 << 30,
            device_adapter_slots: 128,
            max_new_tokens: 4096,
        }
    }
}

/// An adapter's two files.
#[derive(Debug, Clone)]
pub struct AdapterFiles {
    /// `adapter_config.json`
    pub config: String,
    /// `adapter_model.safetensors`
    pub weights: Arc<Vec<u8>>,
}

impl AdapterFiles {
    /// The content hash naming these files.
    pub fn hash(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&(self.config.len() as u64).to_le_bytes());
        h.update(self.config.as_bytes());
        h.update(&self.weights);
        *h.finalize().as_bytes()
    }

    fn size(&self) -> usize {
        self.config.len() + self.weights.len()
    }
}

/// Where adapters come from when they are in neither memory tier (the appliance's blob
/// store).
pub trait AdapterSource: Send + Sync + 'static {
    /// The files of the adapter with this hash.
    fn fetch(&self, hash: &Hash) -> Result<AdapterFiles>;
}

/// Which tier an adapter sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Only in the blob store.
    Cold,
    /// Files in host memory.
    Host,
    /// Parsed and ready for the kernels.
    Device,
}

/// Counters of one adapter.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterStats {
    /// Requests served.
    pub requests: u64,
    /// Prompt tokens processed.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Host → device loads.
    pub loads: u64,
    /// Total time spent in those loads, ms.
    pub load_ms_total: f64,
    /// The last load's time, ms.
    pub last_load_ms: f64,
    /// Cold → host fetches.
    pub fetches: u64,
    /// Where it is now.
    pub tier: Tier,
    /// Bytes it takes in its tier (0 when cold).
    pub resident_bytes: usize,
}

impl Default for AdapterStats {
    fn default() -> Self {
        AdapterStats {
            requests: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            loads: 0,
            load_ms_total: 0.0,
            last_load_ms: 0.0,
            fetches: 0,
            tier: Tier::Cold,
            resident_bytes: 0,
        }
    }
}

/// Engine-wide figures.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStats {
    /// Requests generating now.
    pub running: usize,
    /// Requests waiting for admission.
    pub waiting: usize,
    /// KV blocks in the pool.
    pub kv_blocks_total: usize,
    /// KV blocks free.
    pub kv_blocks_free: usize,
    /// Positions per block.
    pub kv_block_size: usize,
    /// Adapters in host memory.
    pub host_adapters: usize,
    /// Bytes of adapter files in host memory.
    pub host_adapter_bytes: usize,
    /// Adapters ready for the kernels.
    pub device_adapters: usize,
    /// Bytes of parsed adapter weights.
    pub device_adapter_bytes: usize,
    /// Forward steps run.
    pub steps: u64,
    /// Tokens generated.
    pub tokens_generated: u64,
    /// Requests preempted for lack of KV blocks (and recomputed later).
    pub preemptions: u64,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// End-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

/// What a request streams back.
#[derive(Debug, Clone)]
pub enum Event {
    /// One generated token and the text it completes (may be empty while a character or a
    /// possible stop string is incomplete).
    Token {
        /// Token id.
        id: u32,
        /// Text released with this token.
        text: String,
        /// Its log-probability (when asked).
        logprob: f32,
        /// The top alternatives (when asked).
        top: Vec<(u32, f32)>,
    },
    /// Generation ended.
    Done {
        /// Why.
        reason: FinishReason,
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens generated.
        completion_tokens: usize,
    },
    /// The request failed.
    Error(String),
}

/// An adapter named in a request: a display name and its content hash.
#[derive(Debug, Clone)]
pub struct AdapterKey {
    /// Name for metrics and logs.
    pub name: String,
    /// Content hash: the cache key.
    pub hash: Hash,
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The adapter, or None for the base model.
    pub adapter: Option<AdapterKey>,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// Sampling settings.
    pub sampling: SamplingParams,
    /// Strings that end generation (not included in the output).
    pub stop: Vec<String>,
    /// Keep going past end-of-sequence tokens (benchmarks).
    pub ignore_eos: bool,
}

enum Command {
    Generate(Box<Seq>),
    /// Drop an adapter from the device tier; the sender hears when it is gone.
    Evict(Hash, mpsc::Sender<()>),
    Loaded(Hash, std::result::Result<(), String>),
    Stats(mpsc::Sender<EngineStats>),
    Shutdown,
}

struct HostTier {
    map: HashMap<Hash, (AdapterFiles, u64)>,
    bytes: usize,
    budget: usize,
    clock: u64,
}

impl HostTier {
    fn get(&mut self, h: &Hash) -> Option<AdapterFiles> {
        self.clock += 1;
        let c = self.clock;
        self.map.get_mut(h).map(|e| {
            e.1 = c;
            e.0.clone()
        })
    }

    /// Insert, evicting least recently used entries beyond the budget; returns the evicted.
    fn insert(&mut self, h: Hash, f: AdapterFiles) -> Vec<Hash> {
        self.clock += 1;
        self.bytes += f.size();
        if let Some((old, _)) = self.map.insert(h, (f, self.clock)) {
            self.bytes -= old.size();
        }
        let mut out = Vec::new();
        while self.bytes > self.budget && self.map.len() > 1 {
            let Some((&victim, _)) = self
                .map
                .iter()
                .filter(|(k, _)| **k != h)
                .min_by_key(|(_, (_, t))| *t)
            else {
                break;
            };
            if let Some((f, _)) = self.map.remove(&victim) {
                self.bytes -= f.size();
            }
            out.push(victim);
        }
        out
    }

    fn remove(&mut self, h: &Hash) {
        if let Some((f, _)) = self.map.remove(h) {
            self.bytes -= f.size();
        }
    }
}

struct Shared {
    host: Mutex<HostTier>,
    stats: Mutex<HashMap<Hash, AdapterStats>>,
    waiting: AtomicUsize,
}

impl Shared {
    fn with_stats<R>(&self, h: &Hash, f: impl FnOnce(&mut AdapterStats) -> R) -> R {
        let mut m = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(*h).or_default())
    }
}

/// Handle to the engine thread; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Command>,
    loader: mpsc::Sender<Hash>,
    shared: Arc<Shared>,
    cfg: Arc<EngineConfig>,
    /// The base model's configuration.
    pub model_config: Arc<crate::config::ModelConfig>,
    /// The tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    kv_positions: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("cfg", &self.cfg).finish()
    }
}

struct Seq {
    adapter: Option<AdapterKey>,
    weights: Option<Arc<Adapter>>,
    tokens: Vec<u32>,
    prompt_len: usize,
    cached: usize,
    blocks: Vec<u32>,
    max_tokens: usize,
    sampling: SamplingParams,
    sampler: Sampler,
    stop: Vec<String>,
    hold: usize,
    ignore_eos: bool,
    detok: Detokenizer,
    text: String,
    emitted: usize,
    out: UnboundedSender<Event>,
}

impl Seq {
    fn generated(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

impl Engine {
    /// Start the engine and its adapter loader on their own threads, with the CPU LoRA
    /// kernel.
    pub fn start(
        model: Model,
        tokenizer: Tokenizer,
        source: Arc<dyn AdapterSource>,
        cfg: EngineConfig,
    ) -> Engine {
        Engine::start_with_kernel(model, tokenizer, source, cfg, Box::new(CpuLora))
    }

    /// As [`Engine::start`], with the batched LoRA term computed by `lora` (the GPU kernels
    /// of the `cuda` feature; the base model still runs on the CPU).
    pub fn start_with_kernel(
        model: Model,
        tokenizer: Tokenizer,
        source: Arc<dyn AdapterSource>,
        cfg: EngineConfig,
        lora: Box<dyn LoraKernel>,
    ) -> Engine {
        let block_size = cfg.block_size.max(1);
        let blocks = KvCache::blocks_for_budget(
            model.cfg.num_layers,
            model.kv_width(),
            block_size,
            cfg.kv_cache_bytes,
        );
        let kv = KvCache::new(model.cfg.num_layers, model.kv_width(), block_size, blocks);
        let shared = Arc::new(Shared {
            host: Mutex::new(HostTier {
                map: HashMap::new(),
                bytes: 0,
                budget: cfg.host_adapter_bytes,
                clock: 0,
            }),
            stats: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let (ltx, lrx) = mpsc::channel::<Hash>();
        let tokenizer = Arc::new(tokenizer);
        let model_config = Arc::new(model.cfg.clone());
        let cfg = Arc::new(cfg);
        {
            let shared = shared.clone();
            let tx = tx.clone();
            std::thread::Builder::new()
                .name("adapter-loader".into())
                .spawn(move || loader(lrx, source, shared, tx))
                .ok();
        }
        {
            let mut core = Core {
                model,
                kv,
                lora,
                device: HashMap::new(),
                clock: 0,
                loading: HashSet::new(),
                shared: shared.clone(),
                cfg: cfg.clone(),
                tokenizer: tokenizer.clone(),
                loader: ltx.clone(),
                running: Vec::new(),
                waiting: VecDeque::new(),
                steps: 0,
                generated: 0,
                preemptions: 0,
            };
            std::thread::Builder::new()
                .name("inference".into())
                .spawn(move || core.run(rx))
                .ok();
        }
        Engine {
            tx,
            loader: ltx,
            shared,
            kv_positions: blocks * block_size,
            cfg,
            model_config,
            tokenizer,
        }
    }

    /// The engine's limits.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Check an adapter's files against the base model without loading it.
    pub fn validate_adapter(&self, files: &AdapterFiles) -> Result<Arc<Adapter>> {
        parse_adapter(files, &self.model_config).map(Arc::new)
    }

    /// Queue a request; its tokens arrive on the returned channel. Dropping the receiver
    /// cancels the request and frees its KV blocks.
    pub fn submit(&self, req: GenerateRequest) -> Result<UnboundedReceiver<Event>> {
        let max_pos = self.model_config.max_position_embeddings;
        if req.prompt.is_empty() {
            return Err(Error::BadRequest("the prompt is empty".into()));
        }
        if req.max_tokens == 0 {
            return Err(Error::BadRequest("max_tokens must be at least 1".into()));
        }
        if req.max_tokens > self.cfg.max_new_tokens {
            return Err(Error::BadRequest(format!(
                "max_tokens {} is over this node's limit of {}",
                req.max_tokens, self.cfg.max_new_tokens
            )));
        }
        let need = req.prompt.len() + req.max_tokens;
        if need > max_pos {
            return Err(Error::BadRequest(format!(
                "this model's maximum context length is {max_pos} tokens; the prompt has {} tokens and max_tokens is {}",
                req.prompt.len(),
                req.max_tokens
            )));
        }
        if need > self.kv_positions {
            return Err(Error::BadRequest(format!(
                "prompt and max_tokens need {need} positions; the KV cache holds {} (raise --kv-cache-mb)",
                self.kv_positions
            )));
        }
        let vocab = self.model_config.vocab_size as u32;
        if let Some(bad) = req.prompt.iter().find(|t| **t >= vocab) {
            return Err(Error::BadRequest(format!(
                "token id {bad} is outside the vocabulary"
            )));
        }
        if self.shared.waiting.fetch_add(1, Ordering::SeqCst) >= self.cfg.max_waiting {
            self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Overloaded(format!(
                "{} requests are already waiting; try again shortly",
                self.cfg.max_waiting
            )));
        }
        if let Some(a) = &req.adapter {
            let in_host = self
                .shared
                .host
                .lock()
                .map(|h| h.map.contains_key(&a.hash))
                .unwrap_or(false);
            if !in_host {
                // Prefetch while the request waits its turn.
                let _ = self.loader.send(a.hash);
            }
        }
        let (out, rx) = unbounded_channel();
        let hold = req
            .stop
            .iter()
            .map(|s| s.len())
            .max()
            .unwrap_or(1)
            .saturating_sub(1);
        let seq = Seq {
            adapter: req.adapter,
            weights: None,
            prompt_len: req.prompt.len(),
            tokens: req.prompt,
            cached: 0,
            blocks: Vec::new(),
            max_tokens: req.max_tokens,
            sampler: Sampler::new(req.sampling.seed),
            sampling: req.sampling,
            stop: req.stop,
            hold,
            ignore_eos: req.ignore_eos,
            detok: Detokenizer::default(),
            text: String::new(),
            emitted: 0,
            out,
        };
        self.tx
            .send(Command::Generate(Box::new(seq)))
            .map_err(|_| Error::EngineStopped)?;
        Ok(rx)
    }

    /// Drop an adapter from the host and device tiers (after it is removed or replaced).
    /// Returns once the engine thread has let go of it (or after a few seconds when that
    /// thread is stopped or stuck), so a caller that reports "unloaded" tells the truth;
    /// it blocks, so async callers run it off the executor.
    pub fn evict(&self, hash: Hash) {
        if let Ok(mut h) = self.shared.host.lock() {
            h.remove(&hash);
        }
        self.shared.with_stats(&hash, |s| {
            if s.tier == Tier::Host {
                s.tier = Tier::Cold;
                s.resident_bytes = 0;
            }
        });
        let (done, heard) = mpsc::channel();
        if self.tx.send(Command::Evict(hash, done)).is_ok() {
            let _ = heard.recv_timeout(std::time::Duration::from_secs(5));
        }
    }

    /// Start moving an adapter to host memory.
    pub fn prefetch(&self, hash: Hash) {
        let _ = self.loader.send(hash);
    }

    /// Counters of one adapter (zeros when it was never used).
    pub fn adapter_stats(&self, hash: &Hash) -> AdapterStats {
        self.shared
            .stats
            .lock()
            .map(|m| m.get(hash).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Engine-wide figures (asks the engine thread; waits at most a second).
    pub fn stats(&self) -> Result<EngineStats> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Command::Stats(tx))
            .map_err(|_| Error::EngineStopped)?;
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .map_err(|_| Error::EngineStopped)
    }

    /// Stop the engine thread (requests in flight get an error).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

fn parse_adapter(files: &AdapterFiles, model: &crate::config::ModelConfig) -> Result<Adapter> {
    let cfg = AdapterConfig::parse(&files.config)?;
    let t = Tensors::from_bytes("adapter_model.safetensors", files.weights.clone()).map_err(
        |e| match e {
            Error::BadModel(m) => Error::BadAdapter(m),
            o => o,
        },
    )?;
    Adapter::load(&cfg, &t, model)
}

fn loader(
    rx: mpsc::Receiver<Hash>,
    source: Arc<dyn AdapterSource>,
    shared: Arc<Shared>,
    engine: mpsc::Sender<Command>,
) {
    while let Ok(hash) = rx.recv() {
        let present = shared
            .host
            .lock()
            .map(|h| h.map.contains_key(&hash))
            .unwrap_or(false);
        if present {
            let _ = engine.send(Command::Loaded(hash, Ok(())));
            continue;
        }
        let result = source.fetch(&hash);
        let msg = match result {
            Ok(files) => {
                let size = files.size();
                let evicted = shared
                    .host
                    .lock()
                    .map(|mut h| h.insert(hash, files))
                    .unwrap_or_default();
                shared.with_stats(&hash, |s| {
                    s.fetches += 1;
                    if s.tier == Tier::Cold {
                        s.tier = Tier::Host;
                        s.resident_bytes = size;
                    }
                });
                for v in evicted {
                    shared.with_stats(&v, |s| {
                        if s.tier == Tier::Host {
                            s.tier = Tier::Cold;
                            s.resident_bytes = 0;
                        }
                    });
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        if engine.send(Command::Loaded(hash, msg)).is_err() {
            return;
        }
    }
}

enum Ready {
    Yes(Option<Arc<Adapter>>),
    Pending,
    Failed(String),
}

struct Core {
    model: Model,
    kv: KvCache,
    lora: Box<dyn LoraKernel>,
    device: HashMap<Hash, (Arc<Adapter>, u64)>,
    clock: u64,
    loading: HashSet<Hash>,
    shared: Arc<Shared>,
    cfg: Arc<EngineConfig>,
    tokenizer: Arc<Tokenizer>,
    loader: mpsc::Sender<Hash>,
    running: Vec<Seq>,
    waiting: VecDeque<Seq>,
    steps: u64,
    generated: u64,
    preemptions: u64,
}

impl Core {
    fn run(&mut self, rx: mpsc::Receiver<Command>) {
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                match rx.recv() {
                    Ok(c) => {
                        if !self.handle(c) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            while let Ok(c) = rx.try_recv() {
                if !self.handle(c) {
                    return;
                }
            }
            self.drop_abandoned();
            let admitted = self.admit();
            if self.running.is_empty() && admitted.is_empty() {
                // Everything waits on adapter loads or blocks: sleep until something arrives.
                match rx.recv() {
                    Ok(c) => {
                        if !self.handle(c) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
                continue;
            }
            self.step(admitted);
        }
    }

    /// Handle one command; false to stop.
    fn handle(&mut self, c: Command) -> bool {
        match c {
            Command::Generate(seq) => {
                if let Some(a) = &seq.adapter {
                    self.shared.with_stats(&a.hash, |s| {
                        s.requests += 1;
                        s.prompt_tokens += seq.prompt_len as u64;
                    });
                    metrics::counter!("commons_adapter_requests_total", "adapter" => a.name.clone()).increment(1);
                }
                self.waiting.push_back(*seq);
            }
            Command::Evict(h, done) => {
                self.device.remove(&h);
                self.shared.with_stats(&h, |s| {
                    s.tier = Tier::Cold;
                    s.resident_bytes = 0;
                });
                let _ = done.send(());
            }
            Command::Loaded(h, r) => {
                self.loading.remove(&h);
                if let Err(e) = r {
                    let mut keep = VecDeque::new();
                    for s in self.waiting.drain(..) {
                        if s.adapter.as_ref().is_some_and(|a| a.hash == h) {
                            let _ = s
                                .out
                                .send(Event::Error(format!("adapter could not be loaded: {e}")));
                            self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
                        } else {
                            keep.push_back(s);
                        }
                    }
                    self.waiting = keep;
                }
            }
            Command::Stats(tx) => {
                let (hn, hb) = self
                    .shared
                    .host
                    .lock()
                    .map(|h| (h.map.len(), h.bytes))
                    .unwrap_or((0, 0));
                let _ = tx.send(EngineStats {
                    running: self.running.len(),
                    waiting: self.waiting.len(),
                    kv_blocks_total: self.kv.num_blocks(),
                    kv_blocks_free: self.kv.free_blocks(),
                    kv_block_size: self.kv.block_size(),
                    host_adapters: hn,
                    host_adapter_bytes: hb,
                    device_adapters: self.device.len(),
                    device_adapter_bytes: self.device.values().map(|(a, _)| a.bytes).sum(),
                    steps: self.steps,
                    tokens_generated: self.generated,
                    preemptions: self.preemptions,
                });
            }
            Command::Shutdown => {
                for s in self.running.drain(..).chain(self.waiting.drain(..)) {
                    let _ = s.out.send(Event::Error("the node is shutting down".into()));
                }
                return false;
            }
        }
        true
    }

    fn drop_abandoned(&mut self) {
        let kv = &mut self.kv;
        self.running.retain_mut(|s| {
            if s.out.is_closed() {
                kv.release(&mut s.blocks);
                false
            } else {
                true
            }
        });
        let before = self.waiting.len();
        self.waiting.retain(|s| !s.out.is_closed());
        self.shared
            .waiting
            .fetch_sub(before - self.waiting.len(), Ordering::SeqCst);
    }

    /// Make an adapter device-resident if its files are in host memory.
    fn ensure(&mut self, key: Option<&AdapterKey>) -> Ready {
        let Some(key) = key else {
            return Ready::Yes(None);
        };
        self.clock += 1;
        if let Some(e) = self.device.get_mut(&key.hash) {
            e.1 = self.clock;
            return Ready::Yes(Some(e.0.clone()));
        }
        let files = self
            .shared
            .host
            .lock()
            .ok()
            .and_then(|mut h| h.get(&key.hash));
        let Some(files) = files else {
            if self.loading.insert(key.hash) {
                let _ = self.loader.send(key.hash);
            }
            return Ready::Pending;
        };
        // Make room: evict the least recently used adapter no running request holds.
        while self.device.len() >= self.cfg.device_adapter_slots.max(1) {
            let victim = self
                .device
                .iter()
                .filter(|(_, (a, _))| Arc::strong_count(a) == 1)
                .min_by_key(|(_, (_, t))| *t)
                .map(|(h, _)| *h);
            match victim {
                Some(v) => {
                    self.device.remove(&v);
                    let in_host = self
                        .shared
                        .host
                        .lock()
                        .map(|h| h.map.contains_key(&v))
                        .unwrap_or(false);
                    self.shared.with_stats(&v, |s| {
                        s.tier = if in_host { Tier::Host } else { Tier::Cold };
                    });
                }
                None => return Ready::Pending,
            }
        }
        let t0 = Instant::now();
        match parse_adapter(&files, &self.model.cfg) {
            Ok(a) => {
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                let a = Arc::new(a);
                let bytes = a.bytes;
                self.device.insert(key.hash, (a.clone(), self.clock));
                self.shared.with_stats(&key.hash, |s| {
                    s.loads += 1;
                    s.load_ms_total += ms;
                    s.last_load_ms = ms;
                    s.tier = Tier::Device;
                    s.resident_bytes = bytes;
                });
                metrics::counter!("commons_adapter_loads_total", "adapter" => key.name.clone())
                    .increment(1);
                metrics::histogram!("commons_adapter_load_seconds").record(ms / 1e3);
                Ready::Yes(Some(a))
            }
            Err(e) => Ready::Failed(e.to_string()),
        }
    }

    /// Move waiting requests into the running set while blocks, slots and the step's token
    /// budget allow. Returns how many were admitted (they sit at the end of `running`).
    fn admit(&mut self) -> Vec<usize> {
        let mut admitted = Vec::new();
        let mut budget = self.cfg.max_batch_tokens.saturating_sub(self.running.len());
        let mut i = 0;
        while i < self.waiting.len() && self.running.len() < self.cfg.max_running {
            let key = self.waiting[i].adapter.clone();
            match self.ensure(key.as_ref()) {
                Ready::Pending => {
                    i += 1;
                    continue;
                }
                Ready::Failed(e) => {
                    if let Some(s) = self.waiting.remove(i) {
                        let _ = s.out.send(Event::Error(e));
                        self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
                    }
                    continue;
                }
                Ready::Yes(w) => self.waiting[i].weights = w,
            }
            let s = &mut self.waiting[i];
            let need = s.tokens.len() - s.cached;
            if need > budget && !(admitted.is_empty() && self.running.is_empty()) {
                break;
            }
            if !self.kv.reserve(&mut s.blocks, s.tokens.len()) {
                break;
            }
            budget = budget.saturating_sub(need);
            if let Some(s) = self.waiting.remove(i) {
                self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
                admitted.push(self.running.len());
                self.running.push(s);
            }
        }
        admitted
    }

    fn step(&mut self, _admitted: Vec<usize>) {
        // Every running request needs room for the positions it feeds this step; preempt the
        // newest ones (recomputed later) until the rest fit.
        loop {
            let mut short = None;
            for (i, s) in self.running.iter_mut().enumerate() {
                if !self.kv.reserve(&mut s.blocks, s.tokens.len()) {
                    short = Some(i);
                    break;
                }
            }
            let Some(_) = short else { break };
            let Some(mut victim) = self.running.pop() else {
                break;
            };
            self.kv.release(&mut victim.blocks);
            victim.cached = 0;
            self.preemptions += 1;
            self.shared.waiting.fetch_add(1, Ordering::SeqCst);
            self.waiting.push_front(victim);
            if self.running.is_empty() {
                return;
            }
        }
        // Group rows by adapter so each adapter's rows form one segment.
        let mut order: Vec<usize> = (0..self.running.len()).collect();
        order.sort_by_key(|&i| self.running[i].adapter.as_ref().map(|a| a.hash));
        let inputs: Vec<SeqInput<'_>> = order
            .iter()
            .map(|&i| {
                let s = &self.running[i];
                SeqInput {
                    tokens: &s.tokens[s.cached..],
                    start: s.cached,
                    blocks: &s.blocks,
                    adapter: s.weights.clone(),
                }
            })
            .collect();
        let result = self
            .model
            .forward(&inputs, &mut self.kv, self.lora.as_ref(), false);
        drop(inputs);
        self.steps += 1;
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                for mut s in self.running.drain(..) {
                    self.kv.release(&mut s.blocks);
                    let _ = s.out.send(Event::Error(e.to_string()));
                }
                return;
            }
        };
        let vocab = self.model.cfg.vocab_size;
        let mut finished = Vec::new();
        for (row, &i) in order.iter().enumerate() {
            let s = &mut self.running[i];
            s.cached = s.tokens.len();
            let pick = s
                .sampler
                .pick(&logits[row * vocab..(row + 1) * vocab], &s.sampling);
            s.tokens.push(pick.token);
            self.generated += 1;
            if let Some(a) = &s.adapter {
                self.shared
                    .with_stats(&a.hash, |st| st.completion_tokens += 1);
            }
            let eos = !s.ignore_eos && self.tokenizer.eos_ids.contains(&pick.token);
            let mut reason = None;
            let mut piece = String::new();
            if eos {
                reason = Some(FinishReason::Stop);
            } else {
                let t = s.detok.push(&self.tokenizer, pick.token);
                // A stop string completed by this piece starts at most `hold` bytes earlier.
                let mut from = s.text.len().saturating_sub(s.hold);
                while !s.text.is_char_boundary(from) {
                    from -= 1;
                }
                s.text.push_str(&t);
                if let Some(cut) = s
                    .stop
                    .iter()
                    .filter_map(|st| s.text[from..].find(st.as_str()).map(|p| from + p))
                    .min()
                {
                    s.text.truncate(cut);
                    reason = Some(FinishReason::Stop);
                }
            }
            if reason.is_none() && s.generated() >= s.max_tokens {
                reason = Some(FinishReason::Length);
            }
            // Release text that can no longer turn into a stop string.
            let mut upto = if reason.is_some() {
                s.text.len()
            } else {
                s.text.len().saturating_sub(s.hold)
            };
            while upto > s.emitted && !s.text.is_char_boundary(upto) {
                upto -= 1;
            }
            if upto > s.emitted {
                piece = s.text[s.emitted..upto].to_string();
                s.emitted = upto;
            }
            let _ = s.out.send(Event::Token {
                id: pick.token,
                text: piece,
                logprob: pick.logprob,
                top: pick.top,
            });
            if let Some(reason) = reason {
                let _ = s.out.send(Event::Done {
                    reason,
                    prompt_tokens: s.prompt_len,
                    completion_tokens: s.generated(),
                });
                finished.push(i);
            }
        }
        metrics::counter!("commons_tokens_generated_total").increment(order.len() as u64);
        finished.sort_unstable_by(|a, b| b.cmp(a));
        for i in finished {
            let mut s = self.running.swap_remove(i);
            self.kv.release(&mut s.blocks);
        }
    }
}
