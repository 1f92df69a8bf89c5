//! OpenLoRA in the node: the base model and the inference engine, adapters kept in the store
//! as blobs, and the API keys of the OpenAI-compatible routes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use commons_compute::engine::{AdapterFiles, AdapterSource, Engine, EngineConfig, Hash};
use commons_compute::lora::Proj;
use commons_compute::model::Model;
use commons_compute::tokenizer::Tokenizer;
use commons_storage::Store;
use commons_storage::serving::AdapterRecord;

use crate::config::ServingConfig;

/// Where the model runtime stands: loading a large model takes a while, so the node serves
/// everything else meanwhile and the model routes answer 503 until it is ready.
#[derive(Debug, Clone, Default)]
pub struct Slot(Arc<RwLock<SlotState>>);

/// The states of [`Slot`].
#[derive(Debug, Clone, Default)]
pub enum SlotState {
    /// No model is configured.
    #[default]
    Off,
    /// Loading (or creating the dev model).
    Loading,
    /// Serving.
    Ready(Arc<Serving>),
    /// Loading failed; the message says why.
    Failed(String),
}

impl Slot {
    /// The current state.
    pub fn state(&self) -> SlotState {
        self.0.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The runtime, when ready.
    pub fn ready(&self) -> Option<Arc<Serving>> {
        match self.state() {
            SlotState::Ready(s) => Some(s),
            _ => None,
        }
    }

    fn set(&self, st: SlotState) {
        if let Ok(mut s) = self.0.write() {
            *s = st;
        }
    }

    /// Load in the background; the slot says Loading until then.
    pub fn start_loading(
        &self,
        store: Arc<Store>,
        dir: PathBuf,
        dev_model: bool,
        cfg: ServingConfig,
    ) {
        self.set(SlotState::Loading);
        let slot = self.clone();
        let spawned = std::thread::Builder::new()
            .name("model-load".into())
            .spawn(move || match Serving::start(store, &dir, dev_model, &cfg) {
                Ok(s) => slot.set(SlotState::Ready(Arc::new(s))),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "the model runtime did not start");
                    slot.set(SlotState::Failed(format!("{e:#}")));
                }
            });
        if let Err(e) = spawned {
            self.set(SlotState::Failed(format!(
                "cannot start the loader thread: {e}"
            )));
        }
    }

    /// Stop the engine, if one runs.
    pub fn shutdown(&self) {
        if let Some(s) = self.ready() {
            s.engine.shutdown();
        }
    }
}

/// The loaded base model and its engine.
#[derive(Debug)]
pub struct Serving {
    /// The engine thread's handle.
    pub engine: Engine,
    /// The id `/v1/models` lists for the base model.
    pub base_id: String,
    /// Where it was loaded from.
    pub base_dir: PathBuf,
    /// Parameters of the base model.
    pub parameters: usize,
    /// Unix seconds when it was loaded.
    pub created: u64,
    source: Arc<StoreSource>,
}

/// Adapters come out of the store's blobs; an index maps the runtime's content hash to the
/// two blobs.
#[derive(Debug)]
pub struct StoreSource {
    store: Arc<Store>,
    index: RwLock<HashMap<Hash, (commons_storage::model::Hash, commons_storage::model::Hash)>>,
}

impl StoreSource {
    fn note(&self, rec: &AdapterRecord) {
        if let Ok(mut m) = self.index.write() {
            m.insert(rec.hash, (rec.config_blob, rec.weights_blob));
        }
    }
}

impl AdapterSource for StoreSource {
    fn fetch(&self, hash: &Hash) -> commons_compute::Result<AdapterFiles> {
        let blobs = self.index.read().ok().and_then(|m| m.get(hash).copied());
        let Some((cfg, weights)) = blobs else {
            return Err(commons_compute::Error::NotFound(format!(
                "no adapter with hash {}",
                hex::encode(hash)
            )));
        };
        let read = |h: &commons_storage::model::Hash| {
            self.store
                .snapshot()
                .and_then(|s| s.blob(h))
                .map(|(_, b)| b)
                .map_err(|e| commons_compute::Error::NotFound(e.to_string()))
        };
        let config = String::from_utf8(read(&cfg)?).map_err(|_| {
            commons_compute::Error::BadAdapter("adapter_config.json is not UTF-8".into())
        })?;
        Ok(AdapterFiles {
            config,
            weights: Arc::new(read(&weights)?),
        })
    }
}

impl Serving {
    /// Load the base model (creating the dev model first when asked) and start the engine.
    pub fn start(
        store: Arc<Store>,
        dir: &Path,
        dev_model: bool,
        cfg: &ServingConfig,
    ) -> anyhow::Result<Serving> {
        if dev_model {
            commons_compute::devmodel::ensure_dev_model(dir)
                .with_context(|| format!("cannot create the dev model in {}", dir.display()))?;
        }
        let t0 = std::time::Instant::now();
        let model = Model::load(dir)
            .with_context(|| format!("cannot load the base model from {}", dir.display()))?;
        let tokenizer = Tokenizer::load(dir, &model.cfg.eos_token_ids)
            .with_context(|| format!("cannot load the tokenizer of {}", dir.display()))?;
        let parameters = model.cfg.parameter_count();
        let base_id = if dev_model {
            "commons-dev".to_string()
        } else {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "base".into())
        };
        tracing::info!(
            model = %base_id,
            arch = model.cfg.arch.name(),
            parameters,
            ms = t0.elapsed().as_millis() as u64,
            "base model loaded"
        );
        let source = Arc::new(StoreSource {
            store: store.clone(),
            index: RwLock::new(HashMap::new()),
        });
        for rec in store.snapshot()?.adapters()? {
            source.note(&rec);
        }
        let engine = Engine::start(
            model,
            tokenizer,
            source.clone(),
            EngineConfig {
                kv_cache_bytes: cfg.kv_cache_mb.saturating_mul(1 << 20) as usize,
                max_batch_tokens: cfg.max_batch_tokens,
                max_running: cfg.max_running,
                max_waiting: cfg.max_waiting,
                host_adapter_bytes: cfg.host_adapter_mb.saturating_mul(1 << 20) as usize,
                device_adapter_slots: cfg.device_adapter_slots,
                max_new_tokens: cfg.max_new_tokens,
                ..EngineConfig::default()
            },
        );
        Ok(Serving {
            engine,
            base_id,
            base_dir: dir.to_path_buf(),
            parameters,
            created: commons_storage::now_ms() / 1000,
            source,
        })
    }

    /// Check adapter files against the base model and describe them for the registry.
    pub fn vet(
        &self,
        files: &AdapterFiles,
        name: &str,
        added_by: &str,
    ) -> commons_compute::Result<AdapterRecord> {
        let adapter = self.engine.validate_adapter(files)?;
        let cfg = commons_compute::lora::AdapterConfig::parse(&files.config)?;
        Ok(AdapterRecord {
            name: name.to_string(),
            hash: files.hash(),
            config_blob: [0; 32],
            weights_blob: [0; 32],
            base_model: cfg.base_model.unwrap_or_default(),
            rank: adapter.max_rank as u32,
            targets: adapter
                .targets
                .iter()
                .map(|p: &Proj| p.module_name().to_string())
                .collect(),
            size: 0,
            added_by: added_by.to_string(),
            created_at: 0,
        })
    }

    /// Register vetted adapter files in the store; a replaced adapter's old weights leave
    /// memory at once (requests by name now resolve to the new hash).
    pub fn register(
        &self,
        store: &Store,
        rec: AdapterRecord,
        files: &AdapterFiles,
        replace: bool,
    ) -> commons_storage::Result<AdapterRecord> {
        let (rec, old) = store.put_adapter(
            rec,
            files.config.as_bytes().to_vec(),
            files.weights.as_ref().clone(),
            replace,
        )?;
        self.source.note(&rec);
        if let Some(old) = old
            && old.hash != rec.hash
        {
            self.engine.evict(old.hash);
        }
        Ok(rec)
    }

    /// Unregister an adapter and free its memory.
    pub fn remove(&self, store: &Store, name: &str) -> commons_storage::Result<AdapterRecord> {
        let rec = store.remove_adapter(name)?;
        self.engine.evict(rec.hash);
        Ok(rec)
    }
}

/// Read an adapter directory in the PEFT layout.
pub fn read_adapter_dir(dir: &Path) -> anyhow::Result<AdapterFiles> {
    let cfg = dir.join("adapter_config.json");
    let weights = dir.join("adapter_model.safetensors");
    let config =
        std::fs::read_to_string(&cfg).with_context(|| format!("cannot read {}", cfg.display()))?;
    let w = std::fs::read(&weights).with_context(|| {
        format!(
            "cannot read {} (only the safetensors format is accepted)",
            weights.display()
        )
    })?;
    Ok(AdapterFiles {
        config,
        weights: Arc::new(w),
    })
}
