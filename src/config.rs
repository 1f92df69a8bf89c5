//! Effective configuration of `commons serve`: flags > `COMMONS_*` environment > the data
//! dir's `commons.toml` > built-in defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Default data directory, relative to where `commons` runs.
pub const DEFAULT_DATA_DIR: &str = "./commons-data";
/// Default HTTP listen address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
/// Default chain id of the EIP-712 domain (and, later, the ledger).
pub const DEFAULT_CHAIN_ID: u64 = 1612;
/// Where the PostgreSQL listener goes when `--pg` is given without an address.
pub const DEFAULT_PG: &str = "127.0.0.1:5433";
/// Where the JSON-RPC listener goes unless `--rpc` says otherwise.
pub const DEFAULT_RPC: &str = "127.0.0.1:8545";

/// What the node runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Where the database, keys and tokens live.
    pub data_dir: PathBuf,
    /// HTTP listen address (REST, console, metrics).
    pub http: SocketAddr,
    /// Development mode: well-known keys and conveniences, never for real value.
    pub dev: bool,
    /// Chain id used in the EIP-712 domain.
    pub chain_id: u64,
    /// Upload limits and daily quotas.
    pub limits: LimitsConfig,
    /// Console session lifetime, hours.
    pub session_hours: u64,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log: String,
    /// PostgreSQL wire-protocol listen address; no listener when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg: Option<SocketAddr>,
    /// Limits of SQL queries (HTTP and wire).
    #[serde(default)]
    pub sql: SqlLimits,
    /// The model runtime (OpenLoRA).
    #[serde(default)]
    pub serving: ServingConfig,
    /// JSON-RPC listen address. Unset: 127.0.0.1:8545 when that port is free (a node that
    /// cannot take it still answers on `/rpc` of the HTTP port); set: it must be taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<SocketAddr>,
    /// The ledger: block time, DA, genesis allocation.
    #[serde(default)]
    pub ledger: LedgerSettings,
}

/// The model runtime: which base model, and the engine's budgets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServingConfig {
    /// Hugging Face-format model directory. Unset: `--dev` serves the dev model
    /// (`DATA_DIR/models/dev`), otherwise no model is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_model: Option<PathBuf>,
    /// KV cache pool, MiB.
    pub kv_cache_mb: u64,
    /// Tokens per forward step.
    pub max_batch_tokens: usize,
    /// Requests generating at once.
    pub max_running: usize,
    /// Requests waiting before new ones get 429.
    pub max_waiting: usize,
    /// Adapter files kept in host memory, MiB.
    pub host_adapter_mb: u64,
    /// Adapters kept ready for the kernels.
    pub device_adapter_slots: usize,
    /// Upper bound on max_tokens.
    pub max_new_tokens: usize,
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            base_model: None,
            kv_cache_mb: 512,
            max_batch_tokens: 4096,
            max_running: 64,
            max_waiting: 512,
            host_adapter_mb: 2048,
            device_adapter_slots: 128,
            max_new_tokens: 4096,
        }
    }
}

/// The `[ledger]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettings {
    /// Seconds between blocks; 0 seals one block per transaction.
    #[serde(default = "default_block_time")]
    pub block_time_secs: f64,
    /// A sealed block reaches DA within this many seconds.
    #[serde(default = "default_da_flush")]
    pub da_flush_secs: f64,
    /// The DA directory [default: DATA_DIR/da].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub da_dir: Option<PathBuf>,
    /// Genesis: receives 51.71 % of OPEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<alloy_primitives::Address>,
    /// Genesis: receives 18.29 % of OPEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investors: Option<alloy_primitives::Address>,
    /// Genesis: receives 15 % of OPEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<alloy_primitives::Address>,
    /// Genesis: receives 5 % of OPEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidity: Option<alloy_primitives::Address>,
    /// Genesis: receives 10 % of OPEN (dev accounts are funded from it in `--dev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<alloy_primitives::Address>,
    /// Genesis: the operator of the system contracts [default: dev0 in `--dev`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<alloy_primitives::Address>,
    /// The key that signs the node's own transactions (DatanetRegistry publications): a
    /// 0x-hex private key or an Ethereum keystore file (password in
    /// `COMMONS_OPERATOR_KEY_PASSWORD`); `COMMONS_OPERATOR_KEY` overrides it [default: dev0 in
    /// `--dev`; none otherwise, and nothing is published].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_key: Option<String>,
    /// Genesis: fund this many keyless test accounts with 1 OPEN each out of the ecosystem
    /// share, for a state of realistic size in tests and benchmarks (`commons bench ledger
    /// --accounts`). Only counts when the chain is new.
    #[serde(default)]
    pub genesis_test_accounts: u64,
    /// Seconds between durable commits of `ledger.redb`. Blocks sealed in between are
    /// durable through the block log (`ledger.wal`) and executed again after a crash, so a
    /// longer interval writes less (trie nodes rewritten by several blocks reach the file
    /// once) at the cost of a longer replay.
    #[serde(default = "default_checkpoint")]
    pub checkpoint_secs: f64,
    /// Megabytes of `ledger.redb` pages kept in memory.
    #[serde(default = "default_ledger_cache_mb")]
    pub cache_mb: u64,
    /// Megabytes of the account trie's nodes kept in memory for the state root (the whole
    /// trie of a million accounts takes about 70); past it the deepest levels are read
    /// from `ledger.redb`. 0 reads every node from there.
    #[serde(default = "default_trie_cache_mb")]
    pub trie_cache_mb: u64,
}

fn default_checkpoint() -> f64 {
    commons_ledger::chain::CHECKPOINT_EVERY.as_secs_f64()
}

fn default_ledger_cache_mb() -> u64 {
    1024
}

fn default_trie_cache_mb() -> u64 {
    (commons_ledger::chain::DEFAULT_TRIE_CACHE_BYTES >> 20) as u64
}

fn default_block_time() -> f64 {
    2.0
}

fn default_da_flush() -> f64 {
    1.0
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            block_time_secs: default_block_time(),
            da_flush_secs: default_da_flush(),
            da_dir: None,
            community: None,
            investors: None,
            team: None,
            liquidity: None,
            ecosystem: None,
            operator: None,
            operator_key: None,
            genesis_test_accounts: 0,
            checkpoint_secs: default_checkpoint(),
            cache_mb: default_ledger_cache_mb(),
            trie_cache_mb: default_trie_cache_mb(),
        }
    }
}

/// Limits of SQL queries, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlLimits {
    /// Longest a query may run, ms.
    pub time_limit_ms: u64,
    /// Memory pool that queries draw from, bytes.
    pub memory_limit_bytes: u64,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            time_limit_ms: 10_000,
            memory_limit_bytes: 512 << 20,
        }
    }
}

/// Upload limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsConfig {
    /// Largest single upload in bytes.
    pub max_upload_bytes: u64,
    /// Daily bytes per contributor.
    pub daily_bytes_per_contributor: u64,
    /// Daily files per contributor.
    pub daily_files_per_contributor: u64,
    /// Daily bytes per datanet.
    pub daily_bytes_per_datanet: u64,
}

impl From<LimitsConfig> for commons_storage::Limits {
    fn from(l: LimitsConfig) -> Self {
        commons_storage::Limits {
            max_upload_bytes: l.max_upload_bytes,
            daily_bytes_per_contributor: l.daily_bytes_per_contributor,
            daily_files_per_contributor: l.daily_files_per_contributor,
            daily_bytes_per_datanet: l.daily_bytes_per_datanet,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = commons_storage::Limits::default();
        LimitsConfig {
            max_upload_bytes: l.max_upload_bytes,
            daily_bytes_per_contributor: l.daily_bytes_per_contributor,
            daily_files_per_contributor: l.daily_files_per_contributor,
            daily_bytes_per_datanet: l.daily_bytes_per_datanet,
        }
    }
}

/// The optional settings of `commons.toml`; every field may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<SocketAddr>,
    dev: Option<bool>,
    chain_id: Option<u64>,
    session_hours: Option<u64>,
    log: Option<String>,
    pg: Option<SocketAddr>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    sql: FileSql,
    serving: Option<ServingConfig>,
    rpc: Option<SocketAddr>,
    ledger: Option<LedgerSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSql {
    time_limit_ms: Option<u64>,
    memory_limit_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_upload_bytes: Option<u64>,
    daily_bytes_per_contributor: Option<u64>,
    daily_files_per_contributor: Option<u64>,
    daily_bytes_per_datanet: Option<u64>,
}

/// Settings given on the command line or in the environment (clap merges those two).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Development mode: dev accounts, the API key `dev`, conveniences. Never for real value.
    #[arg(long, env = "COMMONS_DEV")]
    pub dev: bool,
    /// HTTP listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "COMMONS_HTTP")]
    pub http: Option<SocketAddr>,
    /// Chain id of the EIP-712 domain [default: 1612]
    #[arg(long, env = "COMMONS_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Largest upload in bytes [default: 5 MiB]
    #[arg(long, env = "COMMONS_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Bytes a contributor may upload per UTC day [default: 10 MiB]
    #[arg(long, env = "COMMONS_DAILY_BYTES_PER_CONTRIBUTOR")]
    pub daily_bytes_per_contributor: Option<u64>,
    /// Files a contributor may upload per UTC day [default: 20]
    #[arg(long, env = "COMMONS_DAILY_FILES_PER_CONTRIBUTOR")]
    pub daily_files_per_contributor: Option<u64>,
    /// Bytes a datanet may receive per UTC day [default: 10 MiB]
    #[arg(long, env = "COMMONS_DAILY_BYTES_PER_DATANET")]
    pub daily_bytes_per_datanet: Option<u64>,
    /// Log filter, e.g. `info` or `commons=debug` [default: info]
    #[arg(long, env = "COMMONS_LOG")]
    pub log: Option<String>,
    /// Serve the PostgreSQL wire protocol on this address (`--pg` alone: 127.0.0.1:5433)
    #[arg(long, env = "COMMONS_PG", num_args = 0..=1, default_missing_value = DEFAULT_PG)]
    pub pg: Option<SocketAddr>,
    /// Time limit of one SQL query, ms [default: 10000]
    #[arg(long, env = "COMMONS_SQL_TIME_LIMIT_MS")]
    pub sql_time_limit_ms: Option<u64>,
    /// Memory pool of SQL queries, bytes [default: 536870912]
    #[arg(long, env = "COMMONS_SQL_MEMORY_LIMIT_BYTES")]
    pub sql_memory_limit_bytes: Option<u64>,
    /// Serve this Hugging Face-format model directory (config.json, *.safetensors,
    /// tokenizer.json); with --dev and no model, a small generated model is served
    #[arg(long, env = "COMMONS_BASE_MODEL")]
    pub base_model: Option<PathBuf>,
    /// KV cache pool of the model runtime, MiB [default: 512]
    #[arg(long, env = "COMMONS_KV_CACHE_MB")]
    pub kv_cache_mb: Option<u64>,
    /// Requests generating at once [default: 64]
    #[arg(long, env = "COMMONS_MAX_RUNNING")]
    pub max_running: Option<usize>,
    /// Requests waiting before new ones are refused with 429 [default: 512]
    #[arg(long, env = "COMMONS_MAX_WAITING")]
    pub max_waiting: Option<usize>,
    /// Adapter files kept in host memory, MiB [default: 2048]
    #[arg(long, env = "COMMONS_HOST_ADAPTER_MB")]
    pub host_adapter_mb: Option<u64>,
    /// Adapters kept loaded for the kernels [default: 128]
    #[arg(long, env = "COMMONS_ADAPTER_SLOTS")]
    pub adapter_slots: Option<usize>,
    /// Serve Ethereum JSON-RPC on this address as well as /rpc [default: 127.0.0.1:8545]
    #[arg(long, env = "COMMONS_RPC")]
    pub rpc: Option<SocketAddr>,
    /// Seconds between blocks; 0 seals one block per transaction [default: 2]
    #[arg(long, env = "COMMONS_BLOCK_TIME", value_name = "SECS")]
    pub block_time: Option<f64>,
    /// A new chain's genesis funds this many keyless test accounts (1 OPEN each, from the
    /// ecosystem share): a large state for tests and benchmarks
    #[arg(long, value_name = "N")]
    pub genesis_test_accounts: Option<u64>,
}

impl Config {
    /// Defaults for a data dir.
    pub fn defaults(data_dir: PathBuf) -> Self {
        Config {
            data_dir,
            http: DEFAULT_HTTP
                .parse()
                .unwrap_or_else(|_| ([127, 0, 0, 1], 8080).into()),
            dev: false,
            chain_id: DEFAULT_CHAIN_ID,
            limits: LimitsConfig::default(),
            session_hours: 12,
            log: "info".into(),
            pg: None,
            sql: SqlLimits::default(),
            serving: ServingConfig::default(),
            rpc: None,
            ledger: LedgerSettings::default(),
        }
    }

    /// Build the effective config: defaults, then `DIR/commons.toml`, then `o`.
    pub fn load(data_dir: &Path, o: &Overrides) -> anyhow::Result<Self> {
        let mut c = Config::defaults(data_dir.to_path_buf());
        let file = data_dir.join("commons.toml");
        if file.exists() {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let f: FileConfig =
                toml::from_str(&text).with_context(|| format!("invalid {}", file.display()))?;
            c.http = f.http.unwrap_or(c.http);
            c.dev = f.dev.unwrap_or(c.dev);
            c.chain_id = f.chain_id.unwrap_or(c.chain_id);
            c.session_hours = f.session_hours.unwrap_or(c.session_hours);
            c.log = f.log.unwrap_or(c.log);
            c.pg = f.pg.or(c.pg);
            c.rpc = f.rpc.or(c.rpc);
            if let Some(l) = f.ledger {
                c.ledger = l;
            }
            c.sql.time_limit_ms = f.sql.time_limit_ms.unwrap_or(c.sql.time_limit_ms);
            c.sql.memory_limit_bytes = f.sql.memory_limit_bytes.unwrap_or(c.sql.memory_limit_bytes);
            if let Some(sv) = f.serving {
                c.serving = sv;
            }
            let l = &mut c.limits;
            l.max_upload_bytes = f.limits.max_upload_bytes.unwrap_or(l.max_upload_bytes);
            l.daily_bytes_per_contributor = f
                .limits
                .daily_bytes_per_contributor
                .unwrap_or(l.daily_bytes_per_contributor);
            l.daily_files_per_contributor = f
                .limits
                .daily_files_per_contributor
                .unwrap_or(l.daily_files_per_contributor);
            l.daily_bytes_per_datanet = f
                .limits
                .daily_bytes_per_datanet
                .unwrap_or(l.daily_bytes_per_datanet);
        }
        c.dev |= o.dev;
        c.http = o.http.unwrap_or(c.http);
        c.chain_id = o.chain_id.unwrap_or(c.chain_id);
        c.log = o.log.clone().unwrap_or(c.log);
        c.pg = o.pg.or(c.pg);
        c.rpc = o.rpc.or(c.rpc);
        if let Some(b) = o.block_time {
            if !(0.0..=3600.0).contains(&b) {
                anyhow::bail!("--block-time {b}: give seconds from 0 to 3600");
            }
            c.ledger.block_time_secs = b;
        }
        if let Some(n) = o.genesis_test_accounts {
            if n > 10_000_000 {
                anyhow::bail!("--genesis-test-accounts {n}: at most 10,000,000");
            }
            c.ledger.genesis_test_accounts = n;
        }
        if !(0.0..=3600.0).contains(&c.ledger.checkpoint_secs) {
            anyhow::bail!(
                "[ledger] checkpoint_secs = {}: give seconds from 0 to 3600",
                c.ledger.checkpoint_secs
            );
        }
        if !(16..=1 << 20).contains(&c.ledger.cache_mb) {
            anyhow::bail!(
                "[ledger] cache_mb = {}: give megabytes from 16 to 1048576",
                c.ledger.cache_mb
            );
        }
        c.sql.time_limit_ms = o.sql_time_limit_ms.unwrap_or(c.sql.time_limit_ms);
        c.sql.memory_limit_bytes = o.sql_memory_limit_bytes.unwrap_or(c.sql.memory_limit_bytes);
        let sv = &mut c.serving;
        sv.base_model = o.base_model.clone().or(sv.base_model.take());
        sv.kv_cache_mb = o.kv_cache_mb.unwrap_or(sv.kv_cache_mb);
        sv.max_running = o.max_running.unwrap_or(sv.max_running);
        sv.max_waiting = o.max_waiting.unwrap_or(sv.max_waiting);
        sv.host_adapter_mb = o.host_adapter_mb.unwrap_or(sv.host_adapter_mb);
        sv.device_adapter_slots = o.adapter_slots.unwrap_or(sv.device_adapter_slots);
        let l = &mut c.limits;
        l.max_upload_bytes = o.max_upload_bytes.unwrap_or(l.max_upload_bytes);
        l.daily_bytes_per_contributor = o
            .daily_bytes_per_contributor
            .unwrap_or(l.daily_bytes_per_contributor);
        l.daily_files_per_contributor = o
            .daily_files_per_contributor
            .unwrap_or(l.daily_files_per_contributor);
        l.daily_bytes_per_datanet = o
            .daily_bytes_per_datanet
            .unwrap_or(l.daily_bytes_per_datanet);
        Ok(c)
    }

    /// The config as TOML, for `--print-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}"))
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("commons.redb")
    }

    /// The DA directory.
    pub fn da_dir(&self) -> PathBuf {
        self.ledger
            .da_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("da"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("commons.toml"),
            "chain_id = 7\nhttp = \"127.0.0.1:9999\"\n[limits]\nmax_upload_bytes = 100\n",
        )
        .expect("write");
        let o = Overrides {
            chain_id: Some(8),
            ..Default::default()
        };
        let c = Config::load(dir.path(), &o).expect("load");
        assert_eq!(c.chain_id, 8);
        assert_eq!(c.http.port(), 9999);
        assert_eq!(c.limits.max_upload_bytes, 100);
        assert_eq!(c.limits.daily_files_per_contributor, 20);
    }

    #[test]
    fn ledger_durability_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("commons.toml");
        let c = Config::load(dir.path(), &Overrides::default()).expect("defaults");
        assert_eq!((c.ledger.checkpoint_secs, c.ledger.cache_mb), (8.0, 1024));
        assert_eq!(c.ledger.trie_cache_mb, 512);
        std::fs::write(
            &file,
            "[ledger]\ncheckpoint_secs = 10\ncache_mb = 4096\ntrie_cache_mb = 0\n",
        )
        .expect("write");
        let c = Config::load(dir.path(), &Overrides::default()).expect("load");
        assert_eq!((c.ledger.checkpoint_secs, c.ledger.cache_mb), (10.0, 4096));
        assert_eq!(c.ledger.trie_cache_mb, 0);
        for (bad, key) in [
            ("checkpoint_secs = -1", "checkpoint_secs"),
            ("checkpoint_secs = nan", "checkpoint_secs"),
            ("cache_mb = 1", "cache_mb"),
        ] {
            std::fs::write(&file, format!("[ledger]\n{bad}\n")).expect("write");
            let e = Config::load(dir.path(), &Overrides::default()).expect_err(bad);
            assert!(format!("{e:#}").contains(key), "{bad}: {e:#}");
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("commons.toml"), "chainid = 7\n").expect("write");
        let e = Config::load(dir.path(), &Overrides::default()).expect_err("typo");
        assert!(format!("{e:#}").contains("chainid"));
    }
}
