//! The ledger inside the node: opening `DATA_DIR/ledger.redb` with the genesis from the
//! config, the sequencer thread, the DA writer it feeds, and the JSON-RPC listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::Address;
use anyhow::Context;
use commons_ledger::genesis::{Allocation, GenesisConfig};
use commons_ledger::pool::PoolConfig;
use commons_ledger::sequencer::Sequencer;
use commons_ledger::{Ledger, LedgerConfig};
use warp::Filter;

use crate::config::Config;

/// The ledger as the node runs it.
pub struct LedgerNode {
    /// The chain.
    pub ledger: Arc<Ledger>,
    /// What eth_accounts lists: the dev accounts in `--dev`, nothing otherwise.
    pub accounts: Vec<Address>,
    /// Seconds between blocks (0: one block per transaction).
    pub block_time_secs: f64,
    /// The newest block written to DA (the "safe" head of optimism_syncStatus).
    pub da_safe: Arc<AtomicU64>,
    /// Where DA batches go.
    pub da_dir: PathBuf,
    /// How the blocks this process sealed were made, newest last (at most [`RECENT_BLOCKS`]).
    pub recent: Arc<Mutex<std::collections::VecDeque<BlockTiming>>>,
    sequencer: Mutex<Option<Sequencer>>,
    da: Option<Arc<commons_ledger::da::DaWriter>>,
}

/// How many sealed blocks' timings the node keeps for `/api/v1/ledger/timings`.
pub const RECENT_BLOCKS: usize = 8192;

/// Where the time of sealing one block went.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct BlockTiming {
    /// Block number.
    pub number: u64,
    /// User transactions in it (the L1-attributes deposit and L1 deposits not counted).
    pub txs: usize,
    /// Gas used.
    pub gas_used: u64,
    /// Sealed at, unix milliseconds.
    pub sealed_at_ms: u64,
    /// Executing the transactions, ms.
    pub execute_ms: f64,
    /// Computing the state root (the trie updates), ms.
    pub state_root_ms: f64,
    /// CPU time of the state root's work on both threads that share it, ms: its cost
    /// apart from waiting for a core.
    pub state_root_cpu_ms: f64,
    /// Writing the flat state and the change sets, ms.
    pub state_writes_ms: f64,
    /// Writing the block itself (header, body, receipts, transaction and log indexes), ms:
    /// all but the header go in on a second thread while the state is applied, so this is
    /// the wait for them after the state, plus the header.
    pub store_ms: f64,
    /// The rest up to and including the commit, ms.
    pub commit_ms: f64,
    /// Whether the commit was a checkpoint (durable in redb; see `[ledger] checkpoint_secs`).
    pub checkpoint: bool,
    /// Accounts the block changed.
    pub accounts: usize,
    /// Trie nodes the block wrote or removed (the state root's work).
    pub trie_nodes: usize,
}

impl std::fmt::Debug for LedgerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerNode")
            .field("chain_id", &self.ledger.chain_id())
            .field("block_time_secs", &self.block_time_secs)
            .finish()
    }
}

/// The ten development accounts (`dev0` … `dev9`).
pub fn dev_accounts() -> anyhow::Result<Vec<Address>> {
    (0..crate::auth::DEV_ACCOUNTS)
        .map(|i| {
            crate::auth::dev_key(i)
                .map(|k| k.address())
                .map_err(|e| anyhow::anyhow!(e))
        })
        .collect()
}

/// The genesis a config asks for (the timestamp only counts when the chain is new).
pub fn genesis_config(config: &Config) -> anyhow::Result<GenesisConfig> {
    let l = &config.ledger;
    let d = Allocation::default();
    Ok(GenesisConfig {
        chain_id: config.chain_id,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        allocation: Allocation {
            community: l.community.unwrap_or(d.community),
            investors: l.investors.unwrap_or(d.investors),
            team: l.team.unwrap_or(d.team),
            liquidity: l.liquidity.unwrap_or(d.liquidity),
            ecosystem: l.ecosystem.unwrap_or(d.ecosystem),
        },
        dev_accounts: if config.dev {
            dev_accounts()?
        } else {
            Vec::new()
        },
        // dev0 operates the system contracts in --dev; otherwise the configured operator.
        operator: match (config.dev, l.operator) {
            (_, Some(a)) => a,
            (true, None) => dev_accounts()?[0],
            (false, None) => commons_ledger::genesis::named_address("operator"),
        },
        test_accounts: l.genesis_test_accounts,
    })
}

/// The key the node signs its own ledger transactions with: `COMMONS_OPERATOR_KEY`, else
/// `[ledger] operator_key`, else dev0 in `--dev`, else none.
pub fn operator_key(
    config: &Config,
) -> anyhow::Result<Option<alloy_signer_local::PrivateKeySigner>> {
    let spec = std::env::var("COMMONS_OPERATOR_KEY")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| config.ledger.operator_key.clone());
    match spec {
        Some(spec) => {
            let password = std::env::var("COMMONS_OPERATOR_KEY_PASSWORD").ok();
            crate::auth::parse_key(&spec, password.as_deref())
                .map(Some)
                .map_err(|e| anyhow::anyhow!("the operator key: {e}"))
        }
        None if config.dev => Ok(Some(
            crate::auth::dev_key(0).map_err(|e| anyhow::anyhow!(e))?,
        )),
        None => Ok(None),
    }
}

impl LedgerNode {
    /// Open the ledger and start the sequencer and the DA writer.
    pub fn start(config: &Config) -> anyhow::Result<LedgerNode> {
        let path = config.data_dir.join("ledger.redb");
        let ledger = Arc::new(
            Ledger::open(
                &path,
                LedgerConfig {
                    genesis: genesis_config(config)?,
                    pool: PoolConfig::default(),
                    cache_bytes: (config.ledger.cache_mb as usize).saturating_mul(1 << 20),
                    trie_cache_bytes: (config.ledger.trie_cache_mb as usize)
                        .saturating_mul(1 << 20),
                },
            )
            .with_context(|| format!("cannot open the ledger {}", path.display()))?,
        );
        ledger.set_checkpoint_interval(Duration::from_secs_f64(
            config.ledger.checkpoint_secs.clamp(0.0, 3600.0),
        ));
        let da_dir = config.da_dir();
        let da = Arc::new(
            commons_ledger::da::DaWriter::open(
                Box::new(commons_ledger::da::DirDa::new(&da_dir)),
                &ledger,
                Duration::from_secs_f64(config.ledger.da_flush_secs.max(0.0)),
            )
            .with_context(|| format!("cannot open the DA directory {}", da_dir.display()))?,
        );
        let da_safe = da.safe_head();
        let block_time = Duration::from_secs_f64(config.ledger.block_time_secs.max(0.0));
        let sink = da.clone();
        let recent = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let record = recent.clone();
        let sequencer = Sequencer::spawn(
            ledger.clone(),
            block_time,
            Box::new(move |s| {
                sink.push(s);
                let t = s.timings;
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                metrics::histogram!("commons_ledger_block_seconds", "part" => "execute")
                    .record(t.execute.as_secs_f64());
                metrics::histogram!("commons_ledger_block_seconds", "part" => "state_root")
                    .record(t.state_root.as_secs_f64());
                metrics::histogram!("commons_ledger_block_seconds", "part" => "state_writes")
                    .record(t.state_writes.as_secs_f64());
                metrics::histogram!("commons_ledger_block_seconds", "part" => "store")
                    .record(t.store.as_secs_f64());
                metrics::histogram!("commons_ledger_block_seconds", "part" => "commit")
                    .record(t.commit.as_secs_f64());
                if t.checkpoint {
                    metrics::counter!("commons_ledger_checkpoints_total").increment(1);
                }
                metrics::counter!("commons_ledger_transactions_total").increment(s.user_txs as u64);
                metrics::gauge!("commons_ledger_head").set(s.header.number as f64);
                let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
                if r.len() >= RECENT_BLOCKS {
                    r.pop_front();
                }
                r.push_back(BlockTiming {
                    number: s.header.number,
                    txs: s.user_txs,
                    gas_used: s.header.gas_used,
                    sealed_at_ms: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0),
                    execute_ms: ms(t.execute),
                    state_root_ms: ms(t.state_root),
                    state_root_cpu_ms: ms(t.state_root_cpu),
                    state_writes_ms: ms(t.state_writes),
                    store_ms: ms(t.store),
                    commit_ms: ms(t.commit),
                    checkpoint: t.checkpoint,
                    accounts: t.accounts,
                    trie_nodes: t.trie_nodes,
                });
            }),
        );
        let accounts = if config.dev {
            dev_accounts()?
        } else {
            Vec::new()
        };
        Ok(LedgerNode {
            ledger,
            accounts,
            block_time_secs: config.ledger.block_time_secs,
            da_safe,
            da_dir,
            recent,
            sequencer: Mutex::new(Some(sequencer)),
            da: Some(da),
        })
    }

    /// Stop the sequencer after its current block and flush DA.
    pub fn stop(&self) {
        let seq = self
            .sequencer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(s) = seq {
            s.stop();
        }
        if let Some(da) = &self.da
            && let Err(e) = da.flush()
        {
            tracing::error!(error = %e, "flushing DA on stop failed");
        }
    }
}

/// Serve JSON-RPC on its own listener (`--rpc`): POST to any path.
pub async fn serve_rpc(
    node: Arc<LedgerNode>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let route = warp::post()
        .and(warp::body::content_length_limit(crate::rpc::MAX_BODY))
        .and(warp::body::bytes())
        .then(move |body: bytes::Bytes| {
            let node = node.clone();
            async move {
                let v = crate::rpc::handle_body(node, &body).await;
                warp::reply::json(&v)
            }
        });
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "JSON-RPC listening");
    Ok(tokio::spawn(async move {
        warp::serve(route).incoming(listener).run().await;
    }))
}

/// A state check as the API, `commons ledger verify` and `commons check` show it: its
/// fields, and `ok`.
pub fn state_check_json(c: &commons_ledger::chain::StateCheck) -> serde_json::Value {
    // Plain numbers and hex strings: serializing cannot fail.
    let mut v = serde_json::to_value(c).unwrap_or_default();
    v["ok"] = serde_json::json!(c.ok());
    v
}

/// The one-line error for a state check, as [`state_check_json`] shows it, that found a
/// mismatch (`None` when it did not).
pub fn state_check_failure(v: &serde_json::Value) -> Option<anyhow::Error> {
    (v["ok"] != true).then(|| {
        anyhow::anyhow!(
            "the ledger's state does not match block {}: header root {}, rebuilt {}, {} account(s) whose storage root is not their slots'",
            v["block"],
            v["header_root"].as_str().unwrap_or("?"),
            v["rebuilt_root"].as_str().unwrap_or("?"),
            v["storage_mismatches"].as_array().map_or(0, Vec::len)
        )
    })
}
