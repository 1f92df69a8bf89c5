//! [`Ledger`]: the chain on one redb file — genesis, admitting transactions to the pool,
//! building and committing blocks (one write transaction each), and the queries behind the
//! JSON-RPC methods.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use alloy_consensus::constants::KECCAK_EMPTY;
use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header, Transaction as _};
use alloy_eips::eip1559::BaseFeeParams;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_primitives::{Address, B256, Bloom, Bytes, Log, LogData, TxKind, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::EMPTY_ROOT_HASH;
use op_alloy_consensus::{
    L1InfoDepositSource, OpReceiptEnvelope, OpTxEnvelope, OpTxType, TxDeposit, UserDepositSource,
};
use op_revm::OpTransaction;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use revm::context::TxEnv;
use revm::context::result::ExecutionResult;
use revm::database::CacheDB;
use revm::database_interface::DatabaseCommit;
use revm::state::EvmState;
use serde::{Deserialize, Serialize};

use crate::db::*;
use crate::error::{Error, Result, TxError};
use crate::exec::{self, BlockParams};
use crate::genesis::{self, GenesisConfig};
use crate::pool::{Pool, PoolConfig, PoolTx};
use crate::trie::{self, KeyChange, NodeCache, NodeSource, Owner, TrieUpdate};
use crate::wal::{PoolLog, PoolRecord, Wal, WalRecord};

/// The most changed keys (accounts, and slots of the account asked about) a proof at an
/// older block puts back; older blocks are refused rather than kept waiting.
pub const MAX_PROOF_REPLAY: usize = 200_000;
/// Largest transaction the pool takes (bytes).
pub const MAX_TX_BYTES: usize = 128 * 1024;
/// Osaka's per-transaction gas cap (EIP-7825).
pub const TX_GAS_CAP: u64 = 1 << 24;
/// Most blocks one eth_getLogs may span.
pub const MAX_LOG_RANGE: u64 = 10_000;
/// Most logs one eth_getLogs returns.
pub const MAX_LOGS: usize = 10_000;
/// Gas of the L1-attributes deposit.
const L1_INFO_GAS: u64 = 1_000_000;
/// Deposits taken into one block at most.
const MAX_DEPOSITS_PER_BLOCK: usize = 256;

/// `meta` key: the first block whose state change sets are kept (0, except for a ledger
/// written before they existed).
const HISTORY_FROM: &str = "history_from";
/// Present once `account_txs` indexes every block (set at genesis, or by the backfill).
const ACCOUNT_TXS_COMPLETE: &str = "account_txs_complete";
/// The next block the `account_txs` backfill indexes (while it runs).
const ACCOUNT_TXS_BACKFILL: &str = "account_txs_backfill";
/// Blocks the backfill indexes per write transaction.
const BACKFILL_CHUNK: u64 = 500;
/// Table holding the genesis config (JSON).
const CONFIG: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("config");

/// A deposit from the L1 side (in `--dev`, from the local queue: `commons ledger deposit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositRequest {
    /// The L1 sender (the L2 account that runs the call).
    pub from: Address,
    /// Recipient; `None` creates a contract.
    pub to: Option<Address>,
    /// OPEN minted to `from` on L2, wei.
    pub mint: u128,
    /// Value sent with the call, wei.
    pub value: U256,
    /// Gas limit of the L2 call.
    pub gas_limit: u64,
    /// Call data.
    pub data: Bytes,
}

/// The head of the chain.
#[derive(Debug, Clone)]
pub struct Head {
    /// The header.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
}

/// A block as RPC shows it.
#[derive(Debug, Clone)]
pub struct BlockInfo {
    /// Header.
    pub header: Header,
    /// Hash.
    pub hash: B256,
    /// Transactions.
    pub txs: Vec<TxInfo>,
    /// RLP size of the block.
    pub size: u64,
}

/// A mined transaction.
#[derive(Debug, Clone)]
pub struct TxInfo {
    /// The transaction.
    pub tx: OpTxEnvelope,
    /// Hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Block hash, number and position (`None` while pending).
    pub block: Option<(B256, u64, u64)>,
    /// Base fee of its block (for the effective gas price).
    pub base_fee: Option<u64>,
    /// Deposits: the receipt's nonce (RPC shows it as the nonce of a deposit).
    pub deposit_nonce: Option<u64>,
}

/// A receipt as RPC shows it.
#[derive(Debug, Clone)]
pub struct ReceiptInfo {
    /// Stored receipt.
    pub receipt: StoredReceipt,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Position in the block.
    pub index: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Block number.
    pub block_number: u64,
    /// Sender.
    pub from: Address,
    /// Recipient.
    pub to: Option<Address>,
    /// Index in the block of its first log.
    pub first_log_index: u64,
    /// Bloom of its logs.
    pub logs_bloom: Bloom,
}

/// A log as RPC shows it.
#[derive(Debug, Clone)]
pub struct LogInfo {
    /// The log.
    pub log: StoredLog,
    /// Block hash.
    pub block_hash: B256,
    /// Block number.
    pub block_number: u64,
    /// Block timestamp.
    pub block_timestamp: u64,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Position of the transaction.
    pub tx_index: u64,
    /// Position of the log in the block.
    pub log_index: u64,
}

/// eth_getLogs' filter (range already resolved to numbers).
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// First block.
    pub from: u64,
    /// Last block.
    pub to: u64,
    /// Any of these addresses (empty: any).
    pub addresses: Vec<Address>,
    /// Per position: any of these topics (`None` or empty: any).
    pub topics: Vec<Option<Vec<B256>>>,
}

/// eth_call / eth_estimateGas input.
#[derive(Debug, Clone, Default)]
pub struct CallRequest {
    /// Sender (zero address when absent).
    pub from: Option<Address>,
    /// Recipient; `None` creates.
    pub to: Option<Address>,
    /// Gas limit.
    pub gas: Option<u64>,
    /// Legacy gas price.
    pub gas_price: Option<u128>,
    /// EIP-1559 fee cap.
    pub max_fee_per_gas: Option<u128>,
    /// EIP-1559 tip.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Value.
    pub value: Option<U256>,
    /// Call data.
    pub data: Option<Bytes>,
    /// Access list.
    pub access_list: Option<alloy_eips::eip2930::AccessList>,
}

/// eth_getProof's answer.
#[derive(Debug, Clone)]
pub struct AccountProof {
    /// The account (default when absent).
    pub account: StoredAccount,
    /// Nodes from the state root to the account.
    pub account_proof: Vec<Bytes>,
    /// Per requested slot: (slot, value, nodes).
    pub storage: Vec<(B256, U256, Vec<Bytes>)>,
}

/// eth_feeHistory's answer.
#[derive(Debug, Clone)]
pub struct FeeHistory {
    /// First block.
    pub oldest: u64,
    /// Base fees, one more than blocks (the next block's).
    pub base_fees: Vec<u128>,
    /// Gas used / limit per block.
    pub gas_used_ratio: Vec<f64>,
    /// Tips at the asked percentiles, per block.
    pub rewards: Vec<Vec<u128>>,
}

/// What a sealed block carries to the DA layer: enough to execute it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockPayload {
    /// Number.
    pub number: u64,
    /// Timestamp.
    pub timestamp: u64,
    /// Every transaction (deposits included), EIP-2718 bytes.
    pub txs: Vec<Vec<u8>>,
    /// The block hash the sequencer got (a follower checks it).
    pub hash: B256,
}

/// A committed block.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Header.
    pub header: Header,
    /// Hash.
    pub hash: B256,
    /// For DA.
    pub payload: BlockPayload,
    /// User transactions it took from the pool.
    pub user_txs: usize,
    /// Where the time went.
    pub timings: SealTimings,
}

/// What [`Ledger::verify_state`] found: the head's state rebuilt from the flat accounts and
/// slots, against the state root its header carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateCheck {
    /// The head block checked.
    pub block: u64,
    /// The state root in its header.
    pub header_root: B256,
    /// The state root rebuilt from every account.
    pub rebuilt_root: B256,
    /// Accounts in the state.
    pub accounts: u64,
    /// Accounts with storage slots.
    pub contracts_with_storage: u64,
    /// Storage slots in the state.
    pub slots: u64,
    /// Hashed addresses whose stored storage root is not the one their slots make (or
    /// slots whose account does not exist).
    pub storage_mismatches: Vec<B256>,
    /// How long the rebuild took.
    pub seconds: f64,
}

impl StateCheck {
    /// Whether the state matches its header: the account root and every storage root.
    pub fn ok(&self) -> bool {
        self.header_root == self.rebuilt_root && self.storage_mismatches.is_empty()
    }
}

/// How long the parts of sealing a block took.
#[derive(Debug, Clone, Copy, Default)]
pub struct SealTimings {
    /// Executing the transactions in revm.
    pub execute: std::time::Duration,
    /// Computing the state root: updating the storage tries and the account trie from the
    /// changed keys (walking and rewriting nodes, hashing).
    pub state_root: std::time::Duration,
    /// Writing the flat state (`accounts`, `storage`, `code`) and the change sets.
    pub state_writes: std::time::Duration,
    /// Writing the block itself: header, body, receipts, `tx_index`, `account_txs` and the
    /// log indexes. All but the header are written on a second thread while the state is
    /// applied, so this is what remained of them once the state was done, plus the header.
    pub store: std::time::Duration,
    /// Everything else up to and including the commit (the block log's fsync, redb's commit,
    /// and at a checkpoint the durable commit of everything since the last one).
    pub commit: std::time::Duration,
    /// Whether this block's commit was a checkpoint (durable in redb, the block log emptied).
    pub checkpoint: bool,
    /// Accounts the block changed.
    pub accounts: usize,
    /// Trie nodes (account and storage tries) the block wrote or removed: the state root's
    /// work, which grows with the changed keys and the depth of their paths, not the state.
    pub trie_nodes: usize,
    /// CPU time of the state root's work, on both threads that share it. Below
    /// [`SealTimings::state_root`] when part of it ran in parallel; above it when the
    /// sealing threads waited for a core (RPC threads share the machine's cores).
    pub state_root_cpu: std::time::Duration,
}

/// Settings of a ledger.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Genesis (used when the database is new; otherwise the stored one must agree on the
    /// chain id).
    pub genesis: GenesisConfig,
    /// Pool limits.
    pub pool: PoolConfig,
    /// Bytes of `ledger.redb` pages redb keeps in memory ([`DEFAULT_CACHE_BYTES`]): at a
    /// million accounts the tries and tables outgrow the default, and every miss is a read.
    pub cache_bytes: usize,
    /// Bytes of the account trie's nodes kept in memory for the state root
    /// ([`DEFAULT_TRIE_CACHE_BYTES`]; see [`trie::NodeCache`]); 0 reads them all from redb.
    pub trie_cache_bytes: usize,
}

/// The default of [`LedgerConfig::cache_bytes`] (redb's own default).
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// The default of [`LedgerConfig::trie_cache_bytes`]: the whole account trie up to a few
/// million accounts (a million took about 70 MB, BENCHMARKS.md).
pub const DEFAULT_TRIE_CACHE_BYTES: usize = 512 << 20;

/// The chain.
pub struct Ledger {
    db: Database,
    genesis: GenesisConfig,
    pool: Mutex<Pool>,
    head: RwLock<Head>,
    /// Bumped when work arrives for the sequencer (a transaction, a deposit).
    wake: (Mutex<u64>, Condvar),
    /// Serialises block production (the sequencer, or derivation).
    sealing: Mutex<()>,
    /// Pool writes waiting for their group commit.
    journal: Mutex<Journal>,
    /// The pool journal (`ledger.pool.log`, see [`crate::wal`]), held by the submitter that
    /// commits a group. A file of its own: submitters never wait for a block's commit.
    journal_writer: Mutex<PoolLog>,
    /// The block log and when redb last committed durably.
    wal: Mutex<WalState>,
    /// How long blocks may stay durable through the log alone (ms).
    checkpoint_ms: AtomicU64,
    /// Trie nodes written by the blocks since the last checkpoint, not yet in the `trie`
    /// table (see [`NodeOverlay`]).
    nodes: RwLock<NodeOverlay>,
    /// The account trie's nodes in memory, as of the last committed block. Lock order:
    /// after `nodes`.
    trie_cache: RwLock<NodeCache>,
}

/// Trie node writes held in memory between checkpoints: full node key → `Some(encoded)`, or
/// `None` for a node removed. The nodes near the root are rewritten by every block; kept
/// here, they reach redb once per checkpoint instead of once per block, and a block's
/// state root costs no B-tree writes for its trie. Nothing is lost in a crash: the blocks
/// since the last checkpoint are in the block log, and executing them again rebuilds this.
type NodeOverlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Where `apply_state` puts trie node writes.
struct TrieStage<'a> {
    /// `None`: straight into the `trie` table (genesis); otherwise the nodes of earlier
    /// blocks still in memory, which reads consult first.
    held: Option<&'a NodeOverlay>,
    /// The account trie's cached nodes, consulted before anything else.
    cache: Option<&'a NodeCache>,
    /// This block's node writes, in order.
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Storage tries this block wiped (their owner prefixes): held nodes under them are gone.
    wiped: Vec<Vec<u8>>,
    /// Time spent in trie updates (the state root), apart from the flat state writes.
    times: TrieTimes,
}

/// Wall time of trie updates, and their CPU time on every thread that did them.
#[derive(Debug, Clone, Copy, Default)]
struct TrieTimes {
    wall: std::time::Duration,
    cpu: std::time::Duration,
}

/// Wall and CPU time of one stretch of trie work, added to the stage's when it ends.
struct TrieClock {
    wall: std::time::Instant,
    cpu: std::time::Duration,
}

impl TrieClock {
    fn start() -> Self {
        TrieClock {
            wall: std::time::Instant::now(),
            cpu: trie::thread_cpu_time(),
        }
    }

    fn stop(self, times: &mut TrieTimes) {
        times.wall += self.wall.elapsed();
        times.cpu += trie::thread_cpu_time().saturating_sub(self.cpu);
    }
}

impl<'a> TrieStage<'a> {
    fn direct() -> Self {
        TrieStage {
            held: None,
            cache: None,
            pending: Vec::new(),
            wiped: Vec::new(),
            times: TrieTimes::default(),
        }
    }

    fn held(nodes: &'a NodeOverlay, cache: &'a NodeCache) -> Self {
        TrieStage {
            held: Some(nodes),
            cache: Some(cache),
            pending: Vec::new(),
            wiped: Vec::new(),
            times: TrieTimes::default(),
        }
    }

    fn write(
        &mut self,
        table: &mut redb::Table<&'static [u8], &'static [u8]>,
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<()> {
        if self.held.is_some() {
            self.pending.extend(writes);
            return Ok(());
        }
        for (k, v) in writes {
            match v {
                Some(v) => table.insert(k.as_slice(), v.as_slice())?,
                None => table.remove(k.as_slice())?,
            };
        }
        Ok(())
    }
}

/// The end of a prefix range: `prefix` followed by 0xff (nibble paths never hold 0xff).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut hi = prefix.to_vec();
    hi.push(0xff);
    hi
}

/// Fold a block's node writes into the held nodes.
fn merge_nodes(
    nodes: &mut NodeOverlay,
    wiped: &[Vec<u8>],
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) {
    for lo in wiped {
        let gone: Vec<Vec<u8>> = nodes
            .range(lo.clone()..prefix_end(lo))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            nodes.remove(&k);
        }
    }
    nodes.extend(pending);
}

/// Reads trie nodes through the cache, the held ones, then the table.
struct Layered<'a, S> {
    table: &'a S,
    cache: Option<&'a NodeCache>,
    held: Option<&'a NodeOverlay>,
    wiped: &'a [Vec<u8>],
}

impl<S: NodeSource> NodeSource for Layered<'_, S> {
    fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        // The cache holds the account trie only, which is never wiped.
        if let Some(hit) = self.cache.and_then(|c| c.get(key)) {
            return Ok(hit.map(<[u8]>::to_vec));
        }
        if let Some(held) = self.held
            && !self.wiped.iter().any(|w| key.starts_with(w))
            && let Some(v) = held.get(key)
        {
            return Ok(v.clone());
        }
        self.table.node(key)
    }

    // The accounts table is committed with the same blocks as the held nodes, so it agrees
    // with them.
    fn account_leaf(&self, path: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.table.account_leaf(path)
    }
}

/// The trie and accounts tables of a write transaction, as a node source.
struct WriteTables<'a> {
    trie: &'a redb::Table<'a, &'static [u8], &'static [u8]>,
    accounts: &'a redb::Table<'a, [u8; 32], &'static [u8]>,
}

impl NodeSource for WriteTables<'_> {
    fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.trie.node(key)
    }

    fn account_leaf(&self, path: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        crate::db::account_leaf(self.accounts, path)
    }
}

/// How often the state is committed to redb durably (the block log covers the blocks in
/// between). Longer: pages dirtied by several blocks are written once; shorter: less to
/// execute again after a crash. At a million accounts under full blocks, 8 s gave 12–16 %
/// more transfers/s than 2 s (BENCHMARKS.md), for up to 8 s of blocks to execute again after
/// a crash; databases with a write-ahead log checkpoint far less often than that.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(8);

/// A checkpoint is also due once the block log is this large.
const WAL_MAX_BYTES: u64 = 256 << 20;

struct WalState {
    log: Wal,
    last_durable: std::time::Instant,
}

/// Accepted transactions waiting to be written to the pool table. Each fsync is shared by
/// every submitter that queued while the previous one ran (group commit), so concurrent
/// `eth_sendRawTransaction` calls do not pay one fsync each, and each call still returns
/// only once its transaction is durable.
#[derive(Default)]
struct Journal {
    /// (hash, raw bytes, pool entries it replaced or evicted).
    entries: Vec<(B256, Bytes, Vec<B256>)>,
    /// Pool entries the sequencer dropped as no longer valid, written with the next group
    /// (without waiting for it: one a crash brings back is dropped again on reload).
    gone: Vec<B256>,
    /// Tickets handed out (the newest entry's).
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A group whose commit failed: tickets `lo..=hi` and why.
    failed: Option<(u64, u64, String)>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("chain_id", &self.genesis.chain_id)
            .finish()
    }
}

/// One transaction of a block being built.
enum Candidate {
    Deposit(TxDeposit),
    User(Arc<PoolTx>),
}

/// An account's changes over a block.
#[derive(Default)]
struct Change {
    info: Option<revm::state::AccountInfo>,
    deleted: bool,
    wipe: bool,
    storage: BTreeMap<U256, U256>,
    code: Option<Bytes>,
}

fn absorb(changes: &mut BTreeMap<Address, Change>, state: &EvmState) {
    for (addr, acc) in state {
        if !acc.is_touched() {
            continue;
        }
        let c = changes.entry(*addr).or_default();
        if acc.is_selfdestructed() {
            *c = Change {
                deleted: true,
                wipe: true,
                ..Default::default()
            };
            continue;
        }
        if acc.info.is_empty() {
            // EIP-161: touched empty accounts are removed.
            c.deleted = true;
            c.info = None;
            continue;
        }
        c.deleted = false;
        c.info = Some(acc.info.clone());
        if acc.info.code_hash != KECCAK_EMPTY
            && let Some(code) = &acc.info.code
        {
            c.code = Some(code.original_bytes());
        }
        for (k, v) in &acc.storage {
            if v.is_changed() {
                c.storage.insert(*k, v.present_value);
            }
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The made-up L1 block hash of the dev L1 origin `n` (there is no real L1 in `--dev`).
pub fn dev_l1_hash(n: u64) -> B256 {
    let mut b = b"commons dev L1 block ".to_vec();
    b.extend_from_slice(&n.to_be_bytes());
    keccak256(b)
}

/// Calldata of the L1-attributes deposit (`setL1BlockValuesJovian` layout: packed scalars,
/// sequence number, L1 timestamp, number, base fee, blob base fee, hash, batcher hash,
/// operator fee scalars, DA footprint scalar).
fn l1_info_calldata(seq: u64, l1_number: u64, l1_time: u64, l1_hash: B256) -> Bytes {
    let mut d = Vec::with_capacity(178);
    d.extend_from_slice(&[0x3d, 0xb6, 0xbe, 0x2b]);
    d.extend_from_slice(&0u32.to_be_bytes()); // base fee scalar
    d.extend_from_slice(&0u32.to_be_bytes()); // blob base fee scalar
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&l1_time.to_be_bytes());
    d.extend_from_slice(&l1_number.to_be_bytes());
    d.extend_from_slice(&[0u8; 32]); // L1 base fee: no L1 data fee in dev
    d.extend_from_slice(&[0u8; 32]); // blob base fee
    d.extend_from_slice(l1_hash.as_slice());
    d.extend_from_slice(&[0u8; 32]); // batcher hash
    d.extend_from_slice(&0u32.to_be_bytes()); // operator fee scalar
    d.extend_from_slice(&0u64.to_be_bytes()); // operator fee constant
    d.extend_from_slice(&0u16.to_be_bytes()); // DA footprint gas scalar
    d.into()
}

/// Parse the L1-attributes calldata back: (sequence number, L1 number, L1 timestamp, L1 hash).
pub fn parse_l1_info(input: &[u8]) -> Option<(u64, u64, u64, B256)> {
    if input.len() < 4 + 8 + 8 + 8 + 8 + 64 + 32 {
        return None;
    }
    let u = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&input[at..at + 8]);
        u64::from_be_bytes(b)
    };
    Some((u(12), u(28), u(20), B256::from_slice(&input[100..132])))
}

/// Base fee of the block after `parent` (OP's Canyon parameters), never below the floor.
pub fn next_base_fee(parent: &Header) -> u64 {
    let fee = alloy_eips::eip1559::calc_next_block_base_fee(
        parent.gas_used,
        parent.gas_limit,
        parent.base_fee_per_gas.unwrap_or(genesis::INITIAL_BASE_FEE),
        BaseFeeParams::optimism_canyon(),
    );
    fee.max(genesis::MIN_BASE_FEE)
}

/// Output root of a block: keccak(version 0 ‖ state root ‖ message passer storage root ‖
/// block hash). The header's withdrawals root holds the message passer's storage root.
pub fn output_root(header: &Header, hash: B256) -> B256 {
    let mut b = [0u8; 128];
    b[32..64].copy_from_slice(header.state_root.as_slice());
    b[64..96].copy_from_slice(
        header
            .withdrawals_root
            .unwrap_or(EMPTY_ROOT_HASH)
            .as_slice(),
    );
    b[96..].copy_from_slice(hash.as_slice());
    keccak256(b)
}

fn receipt_envelope(r: &StoredReceipt) -> OpReceiptEnvelope {
    let logs: Vec<Log> = r.logs.iter().map(to_log).collect();
    let ty = OpTxType::try_from(r.tx_type).unwrap_or(OpTxType::Legacy);
    let version = r.deposit_nonce.map(|_| 1);
    OpReceiptEnvelope::from_parts(
        r.status,
        r.cumulative_gas_used,
        logs.iter(),
        ty,
        r.deposit_nonce,
        version,
    )
}

/// A stored log as alloy's.
pub fn to_log(l: &StoredLog) -> Log {
    Log {
        address: Address::from(l.address),
        data: LogData::new_unchecked(
            l.topics.iter().map(|t| B256::from(*t)).collect(),
            l.data.clone().into(),
        ),
    }
}

/// The bloom of a receipt's logs.
pub fn receipt_bloom(r: &StoredReceipt) -> Bloom {
    let logs: Vec<Log> = r.logs.iter().map(to_log).collect();
    alloy_primitives::logs_bloom(logs.iter())
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Err(e) = self.checkpoint() {
            tracing::warn!(error = %e, "the last checkpoint failed; the block log keeps the blocks");
        }
    }
}

/// The pool journal's file beside the ledger's: `ledger.redb` → `ledger.pool.log`.
fn pool_path(ledger: &Path) -> std::path::PathBuf {
    ledger.with_extension("pool.log")
}

/// Where versions before the journal kept the pool: `ledger.pool.redb`.
fn legacy_pool_path(ledger: &Path) -> std::path::PathBuf {
    ledger.with_extension("pool.redb")
}

/// The pool journal is rewritten as one record of what is pending once it grows past this.
/// Reload reads it whole, skipping mined entries with one index lookup each.
const POOL_LOG_MAX_BYTES: u64 = 8 << 20;

fn decode_tx(raw: &[u8]) -> Result<OpTxEnvelope> {
    OpTxEnvelope::decode_2718_exact(raw).map_err(|e| Error::Corrupt(format!("stored tx: {e}")))
}

impl Ledger {
    /// Open (or create, with genesis) the ledger database at `path`.
    pub fn open(path: &Path, cfg: LedgerConfig) -> Result<Ledger> {
        let db = redb::Builder::new()
            .set_cache_size(cfg.cache_bytes)
            .create(path)?;
        let stored: Option<GenesisConfig> = {
            let r = db.begin_read()?;
            match open_ro(&r, CONFIG)? {
                None => None,
                Some(t) => match t.get("genesis")? {
                    None => None,
                    Some(v) => Some(
                        serde_json::from_slice(v.value())
                            .map_err(|e| Error::Corrupt(format!("genesis config: {e}")))?,
                    ),
                },
            }
        };
        let genesis = match stored {
            Some(g) => {
                if g.chain_id != cfg.genesis.chain_id {
                    return Err(Error::Invalid(format!(
                        "the ledger in {} has chain id {}, the config says {}",
                        path.display(),
                        g.chain_id,
                        cfg.genesis.chain_id
                    )));
                }
                g
            }
            None => {
                Self::write_genesis(&db, &cfg.genesis)?;
                cfg.genesis.clone()
            }
        };
        Self::mark_history_start(&db)?;
        Self::backfill_account_txs(&db)?;
        let head = Self::read_head(&db)?;
        let (mut pool_log, mut pooled) = PoolLog::open(&pool_path(path))?;
        pooled.extend(Self::move_pool(&db, path, &mut pool_log)?);
        let (log, logged) = Wal::open(&path.with_extension("wal"))?;
        let started = std::time::Instant::now();
        let trie_cache = Self::load_trie_cache(&db, cfg.trie_cache_bytes)?;
        tracing::info!(
            nodes = trie_cache.len(),
            mb = trie_cache.bytes() >> 20,
            depths = trie_cache.covers(),
            ms = started.elapsed().as_millis() as u64,
            "loaded the account trie's node cache"
        );
        let ledger = Ledger {
            db,
            genesis,
            pool: Mutex::new(Pool::new(cfg.pool)),
            head: RwLock::new(head),
            wake: (Mutex::new(0), Condvar::new()),
            sealing: Mutex::new(()),
            journal: Mutex::new(Journal::default()),
            journal_writer: Mutex::new(pool_log),
            wal: Mutex::new(WalState {
                log,
                last_durable: std::time::Instant::now(),
            }),
            checkpoint_ms: AtomicU64::new(CHECKPOINT_EVERY.as_millis() as u64),
            nodes: RwLock::new(NodeOverlay::new()),
            trie_cache: RwLock::new(trie_cache),
        };
        ledger.replay(logged)?;
        ledger.reload_pool(pooled)?;
        Ok(ledger)
    }

    /// The genesis config in force.
    pub fn genesis(&self) -> &GenesisConfig {
        &self.genesis
    }

    /// Chain id.
    pub fn chain_id(&self) -> u64 {
        self.genesis.chain_id
    }

    /// A ledger written before change sets existed has none for its old blocks: record where
    /// they start, so older blocks are refused rather than answered with newer values.
    fn mark_history_start(db: &Database) -> Result<()> {
        let w = db.begin_write()?;
        {
            let mut m = w.open_table(META)?;
            if m.get(HISTORY_FROM)?.is_some() {
                return Ok(());
            }
            let head = m.get("head")?.map(|v| v.value()).unwrap_or(0);
            m.insert(HISTORY_FROM, head)?;
        }
        w.commit()?;
        Ok(())
    }

    fn read_head(db: &Database) -> Result<Head> {
        let r = db.begin_read()?;
        let n = open_ro(&r, META)?
            .and_then(|t| t.get("head").ok().flatten().map(|v| v.value()))
            .ok_or_else(|| Error::Corrupt("no head block".into()))?;
        let header =
            read_header(&r, n)?.ok_or_else(|| Error::Corrupt("head header missing".into()))?;
        Ok(Head {
            hash: header.hash_slow(),
            header,
        })
    }

    fn write_genesis(db: &Database, g: &GenesisConfig) -> Result<()> {
        let w = db.begin_write()?;
        let mut changes = BTreeMap::new();
        for (addr, bal) in g.balances() {
            changes.insert(
                addr,
                Change {
                    info: Some(revm::state::AccountInfo {
                        balance: bal,
                        nonce: 0,
                        code_hash: KECCAK_EMPTY,
                        account_id: None,
                        code: None,
                    }),
                    ..Default::default()
                },
            );
        }
        for (addr, code, storage) in crate::system::genesis_accounts(g.operator)? {
            changes.insert(
                addr,
                Change {
                    info: Some(revm::state::AccountInfo {
                        balance: U256::ZERO,
                        nonce: 1,
                        code_hash: keccak256(&code),
                        account_id: None,
                        code: Some(revm::bytecode::Bytecode::new_raw(code.clone())),
                    }),
                    storage: storage.into_iter().collect(),
                    code: Some(code),
                    ..Default::default()
                },
            );
        }
        let (state_root, passer_root) =
            apply_state(&w, changes, 0, false, &mut TrieStage::direct(), None)?;
        let header = Header {
            parent_hash: B256::ZERO,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: Address::ZERO,
            state_root,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            logs_bloom: Bloom::ZERO,
            difficulty: U256::ZERO,
            number: 0,
            gas_limit: genesis::GAS_LIMIT,
            gas_used: 0,
            timestamp: g.timestamp,
            extra_data: Bytes::new(),
            mix_hash: B256::ZERO,
            nonce: Default::default(),
            base_fee_per_gas: Some(genesis::INITIAL_BASE_FEE),
            withdrawals_root: Some(passer_root),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            block_access_list_hash: None,
            slot_number: None,
        };
        store_block(&w, &header, &StoredBody::default(), &[], &[])?;
        {
            let mut c = w.open_table(CONFIG)?;
            let json = serde_json::to_vec(g).map_err(|e| Error::Internal(e.to_string()))?;
            c.insert("genesis", json.as_slice())?;
            let mut m = w.open_table(META)?;
            m.insert("l1_number", 0)?;
            m.insert("l1_seq", 0)?;
            m.insert("deposit_next", 0)?;
            m.insert(HISTORY_FROM, 0)?;
            m.insert(ACCOUNT_TXS_COMPLETE, 1)?;
        }
        w.commit()?;
        Ok(())
    }

    /// A ledger written before the `account_txs` index existed has none for its old blocks:
    /// index them from the stored bodies and receipts, [`BACKFILL_CHUNK`] blocks per durable
    /// commit with the progress recorded, so an interrupted backfill resumes where it
    /// stopped. Runs at open, on the durable state, before the block log is replayed (the
    /// replayed blocks index themselves).
    fn backfill_account_txs(db: &Database) -> Result<()> {
        let (head, mut next) = {
            let r = db.begin_read()?;
            let meta = open_ro(&r, META)?.ok_or_else(|| Error::Corrupt("no meta table".into()))?;
            if meta.get(ACCOUNT_TXS_COMPLETE)?.is_some() {
                return Ok(());
            }
            let head = meta.get("head")?.map(|v| v.value()).unwrap_or(0);
            let next = meta
                .get(ACCOUNT_TXS_BACKFILL)?
                .map(|v| v.value())
                .unwrap_or(1);
            (head, next)
        };
        if next <= head {
            tracing::info!(
                from = next,
                to = head,
                "indexing the transactions of each account"
            );
        }
        while next <= head {
            let end = (next + BACKFILL_CHUNK).min(head + 1);
            let r = db.begin_read()?;
            let w = db.begin_write()?;
            {
                let mut at = w.open_table(ACCOUNT_TXS)?;
                for n in next..end {
                    let body = read_body(&r, n)?;
                    let receipts = read_receipts(&r, n)?;
                    for (i, raw) in body.txs.iter().enumerate() {
                        let sender = body.senders.get(i).copied().ok_or_else(|| {
                            Error::Corrupt(format!("block {n} has no sender for tx {i}"))
                        })?;
                        let to = decode_tx(raw)?.to().map(|a| a.0.0);
                        let created = receipts.get(i).and_then(|r| r.contract_address);
                        for a in [Some(sender), to, created].into_iter().flatten() {
                            at.insert((a, n, i as u32), ())?;
                        }
                    }
                }
                w.open_table(META)?.insert(ACCOUNT_TXS_BACKFILL, end)?;
            }
            w.commit()?;
            next = end;
        }
        let w = db.begin_write()?;
        {
            let mut m = w.open_table(META)?;
            m.insert(ACCOUNT_TXS_COMPLETE, 1)?;
            m.remove(ACCOUNT_TXS_BACKFILL)?;
        }
        w.commit()?;
        Ok(())
    }

    /// Load the persisted pool, dropping what is no longer valid.
    /// Execute again the logged blocks redb lost in a crash (those after its durable head),
    /// then checkpoint so the log can be emptied.
    fn replay(&self, logged: Vec<WalRecord>) -> Result<()> {
        let mut replayed = 0usize;
        for r in logged {
            let head = self.head().header.number;
            if r.payload.number <= head {
                continue;
            }
            if r.payload.number != head + 1 {
                return Err(Error::Corrupt(format!(
                    "the block log jumps from block {head} to {}",
                    r.payload.number
                )));
            }
            self.apply_logged(&r.payload, &r.consumed, false)?;
            replayed += 1;
        }
        if replayed > 0 {
            tracing::info!(
                blocks = replayed,
                head = self.head().header.number,
                "executed again the blocks of the block log"
            );
        }
        self.checkpoint()
    }

    /// Commit a block's write transaction: logged and fsynced in the block log, then
    /// committed to redb without an fsync, except when a checkpoint is due; its trie node
    /// writes join the held nodes, or at a checkpoint go to the table with them. Returns
    /// whether it was a checkpoint.
    fn commit_block(
        &self,
        mut w: WriteTransaction,
        payload: &BlockPayload,
        consumed: &[u64],
        log: bool,
        pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        wiped: Vec<Vec<u8>>,
    ) -> Result<bool> {
        let mut wal = self.lock_wal();
        if log {
            wal.log.append(&WalRecord {
                payload: payload.clone(),
                consumed: consumed.to_vec(),
            })?;
        }
        let every = std::time::Duration::from_millis(self.checkpoint_ms.load(Ordering::Relaxed));
        let due = wal.last_durable.elapsed() >= every || wal.log.len() >= WAL_MAX_BYTES;
        let mut nodes = self.write_nodes();
        if due {
            // Merged into a copy: if the commit fails, the held nodes still match redb.
            let mut all = nodes.clone();
            merge_nodes(&mut all, &wiped, pending.clone());
            write_nodes_to(&w, &all)?;
            w.commit()?;
            self.write_cache().apply(&pending);
            nodes.clear();
            wal.log.clear()?;
            wal.last_durable = std::time::Instant::now();
        } else {
            w.set_durability(Durability::None)
                .map_err(|e| Error::Db(e.to_string()))?;
            w.commit()?;
            self.write_cache().apply(&pending);
            merge_nodes(&mut nodes, &wiped, pending);
        }
        Ok(due)
    }

    /// Commit everything to redb durably — the held trie nodes included — and empty the
    /// block log (also done every [`CHECKPOINT_EVERY`] while sealing, and when the ledger
    /// is dropped).
    pub fn checkpoint(&self) -> Result<()> {
        let _g = self.sealing.lock().unwrap_or_else(|p| p.into_inner());
        self.commit_durable(self.db.begin_write()?)
    }

    /// Commit `w` durably with the held trie nodes: every durable commit of the ledger
    /// file must carry them, or redb would hold a state without its trie. Lock order
    /// everywhere: redb's writer, the block log, the held nodes.
    fn commit_durable(&self, w: WriteTransaction) -> Result<()> {
        let mut wal = self.lock_wal();
        let mut nodes = self.write_nodes();
        write_nodes_to(&w, &nodes)?;
        // A durable commit also makes every earlier non-durable one durable.
        w.commit()?;
        nodes.clear();
        wal.log.clear()?;
        wal.last_durable = std::time::Instant::now();
        Ok(())
    }

    fn write_nodes(&self) -> std::sync::RwLockWriteGuard<'_, NodeOverlay> {
        // Changed only by whole-map operations after a commit succeeded.
        self.nodes.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_nodes(&self) -> std::sync::RwLockReadGuard<'_, NodeOverlay> {
        self.nodes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, NodeCache> {
        // Changed only after a commit succeeded, by whole-block applies.
        self.trie_cache.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, NodeCache> {
        self.trie_cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The account trie's node cache: (nodes held, bytes as counted against the budget,
    /// path lengths covered; 65 covers every path).
    pub fn trie_cache_stats(&self) -> (usize, usize, usize) {
        let c = self.read_cache();
        (c.len(), c.bytes(), c.covers())
    }

    /// Load the account trie's stored nodes into a [`NodeCache`] of `budget` bytes: one pass
    /// to size each depth, one to load the depths that fit.
    fn load_trie_cache(db: &Database, budget: usize) -> Result<NodeCache> {
        if budget == 0 {
            return Ok(NodeCache::new(0, 0));
        }
        let r = db.begin_read()?;
        let Some(t) = open_ro(&r, TRIE)? else {
            return Ok(NodeCache::new(0, budget));
        };
        let (lo, hi) = (
            Owner::Accounts.prefix(),
            prefix_end(&Owner::Accounts.prefix()),
        );
        let mut per_depth = [0usize; 65];
        for e in t.range(lo.as_slice()..hi.as_slice())? {
            let (k, v) = e?;
            let d = k.value().len().saturating_sub(1).min(64);
            per_depth[d] += NodeCache::cost(d, v.value().len());
        }
        let covers = NodeCache::depths_within(&per_depth, budget);
        let mut cache = NodeCache::new(covers, budget);
        if covers > 0 {
            for e in t.range(lo.as_slice()..hi.as_slice())? {
                let (k, v) = e?;
                cache.insert_loaded(&k.value()[1..], v.value());
            }
        }
        Ok(cache)
    }

    /// How long blocks may be durable through the block log alone before a checkpoint
    /// (default [`CHECKPOINT_EVERY`]; tests lengthen it to exercise replay).
    pub fn set_checkpoint_interval(&self, every: std::time::Duration) {
        self.checkpoint_ms
            .store(every.as_millis() as u64, Ordering::Relaxed);
    }

    fn lock_wal(&self) -> std::sync::MutexGuard<'_, WalState> {
        // Each change to the state is one assignment, so a panic leaves it consistent.
        self.wal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pending transactions that older versions kept in redb — in `ledger.redb`'s `pool`
    /// table, later in `ledger.pool.redb` — are appended to the journal, then the table and
    /// the file go (a crash in between appends them again; reload takes each hash once).
    fn move_pool(db: &Database, path: &Path, log: &mut PoolLog) -> Result<Option<PoolRecord>> {
        let read = |db: &Database| -> Result<Option<Vec<Vec<u8>>>> {
            let r = db.begin_read()?;
            let Some(t) = open_ro(&r, POOL)? else {
                return Ok(None);
            };
            let mut raws = Vec::new();
            for e in t.iter()? {
                raws.push(e?.1.value().to_vec());
            }
            Ok(Some(raws))
        };
        let in_ledger = read(db)?;
        let old_file = legacy_pool_path(path);
        let in_file = if old_file.exists() {
            Some(read(&Database::open(&old_file)?)?.unwrap_or_default())
        } else {
            None
        };
        if in_ledger.is_none() && in_file.is_none() {
            return Ok(None);
        }
        let added: Vec<Vec<u8>> = in_ledger
            .iter()
            .chain(&in_file)
            .flatten()
            .cloned()
            .collect();
        let record = PoolRecord {
            added,
            gone: Vec::new(),
        };
        if !record.added.is_empty() {
            log.append(&record)?;
        }
        if in_ledger.is_some() {
            let w = db.begin_write()?;
            w.delete_table(POOL)?;
            w.commit()?;
        }
        if in_file.is_some() {
            std::fs::remove_file(&old_file)
                .map_err(|e| Error::Db(format!("removing {}: {e}", old_file.display())))?;
        }
        Ok(Some(record))
    }

    /// Put back the journaled pool: what was added and has not left since, in arrival order,
    /// less what the chain already holds and what is no longer valid; then start the journal
    /// over from what is pending.
    fn reload_pool(&self, records: Vec<PoolRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut live: std::collections::HashMap<B256, (usize, Vec<u8>)> =
            std::collections::HashMap::new();
        let mut seq = 0usize;
        for r in records {
            // Within a group, what left is applied first: an entry that replaced one from the
            // same group comes back with it, and the reload's own insert replaces it again;
            // nothing acknowledged is lost.
            for g in &r.gone {
                live.remove(g);
            }
            for raw in r.added {
                live.insert(keccak256(&raw), (seq, raw));
                seq += 1;
            }
        }
        let mut entries: Vec<(B256, (usize, Vec<u8>))> = live.into_iter().collect();
        entries.sort_unstable_by_key(|(_, (n, _))| *n);
        let r = self.db.begin_read()?;
        let mined = open_ro(&r, TX_INDEX)?;
        let view = StateView::new(&r)?;
        for (hash, (_, raw)) in entries {
            if let Some(t) = &mined
                && t.get(hash.0)?.is_some()
            {
                continue;
            }
            // `check_tx` looks at the pool itself, so the lock is taken per entry.
            if let Ok((tx, state_nonce)) = self.check_tx(&raw, &view) {
                let _ = self.lock_pool().insert(tx, state_nonce);
            }
        }
        drop(view);
        drop(mined);
        drop(r);
        let mut log = self.lock_pool_log();
        self.compact_pool_log(&mut log)
    }

    /// Rewrite the pool journal as one record of the pooled transactions, oldest first.
    fn compact_pool_log(&self, log: &mut PoolLog) -> Result<()> {
        let mut pending = self.lock_pool().all();
        pending.sort_unstable_by_key(|t| t.seq);
        let added: Vec<Vec<u8>> = pending.iter().map(|t| t.raw.to_vec()).collect();
        let records = if added.is_empty() {
            Vec::new()
        } else {
            vec![PoolRecord {
                added,
                gone: Vec::new(),
            }]
        };
        log.rewrite(&records)
    }

    fn lock_pool_log(&self) -> std::sync::MutexGuard<'_, PoolLog> {
        // A failed append truncates its partial record, so the log stays whole.
        self.journal_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Note pool entries that left other than by being mined, for the next group commit.
    /// Mined ones are not written: reload skips what the chain holds.
    fn forget_pooled(&self, hashes: Vec<B256>) {
        if !hashes.is_empty() {
            self.lock_journal().gone.extend(hashes);
        }
    }

    fn lock_journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        // Every change to the journal is one assignment, so a panic leaves it consistent.
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        // A panic while holding the pool leaves it consistent (every change is one call).
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The head block.
    pub fn head(&self) -> Head {
        self.head.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Validate a raw transaction against the state; returns it ready for the pool.
    fn check_tx(&self, raw: &[u8], view: &StateView) -> Result<(PoolTx, u64)> {
        let tx = self.decode_submitted(raw)?;
        self.check_decoded(raw, keccak256(raw), tx, view)
    }

    /// The checks that need neither the state nor the sender: size, encoding, type, chain,
    /// and whether a full pool could take it at all. An overloaded node turns a submission
    /// away here, before opening a read snapshot or recovering the sender (the bulk of a
    /// submission's cost).
    fn decode_submitted(&self, raw: &[u8]) -> Result<OpTxEnvelope> {
        if raw.len() > MAX_TX_BYTES {
            return Err(TxError::Oversized {
                size: raw.len(),
                limit: MAX_TX_BYTES,
            }
            .into());
        }
        let tx =
            OpTxEnvelope::decode_2718_exact(raw).map_err(|e| TxError::Malformed(e.to_string()))?;
        if tx.is_deposit() {
            return Err(TxError::TypeNotSupported.into());
        }
        let want = self.genesis.chain_id;
        match tx.chain_id() {
            Some(c) if c == want => {}
            have => return Err(TxError::WrongChain { have, want }.into()),
        }
        let max_fee = tx.max_fee_per_gas();
        if self
            .lock_pool()
            .refuses(tx.max_priority_fee_per_gas().unwrap_or(max_fee))
        {
            return Err(TxError::PoolFull.into());
        }
        Ok(tx)
    }

    /// The rest of [`Ledger::check_tx`], on a transaction `decode_submitted` passed
    /// (`hash`: keccak of `raw`).
    fn check_decoded(
        &self,
        raw: &[u8],
        hash: B256,
        tx: OpTxEnvelope,
        view: &StateView,
    ) -> Result<(PoolTx, u64)> {
        let max_fee = tx.max_fee_per_gas();
        let tip = tx.max_priority_fee_per_gas().unwrap_or(max_fee);
        let sender = alloy_consensus::transaction::SignerRecoverable::recover_signer(&tx)
            .map_err(|e| TxError::BadSignature(e.to_string()))?;
        let gas_limit = tx.gas_limit();
        if gas_limit > genesis::GAS_LIMIT || gas_limit > TX_GAS_CAP {
            return Err(TxError::GasLimit.into());
        }
        let env = exec::tx_env(&tx, sender)?;
        let needed = revm::context_interface::cfg::gas::calculate_initial_tx_gas_for_tx(
            &env.base,
            exec::SPEC.into(),
        );
        let needed = needed.initial_total_gas.max(needed.floor_gas);
        if gas_limit < needed {
            return Err(TxError::IntrinsicGas {
                gas: gas_limit,
                needed,
            }
            .into());
        }
        if tip > max_fee {
            return Err(TxError::TipAboveFeeCap.into());
        }
        if max_fee < u128::from(genesis::MIN_BASE_FEE) {
            return Err(TxError::Underpriced.into());
        }
        let account = view.account(&sender)?.unwrap_or_default();
        if tx.nonce() < account.nonce {
            return Err(TxError::NonceTooLow {
                state: account.nonce,
                tx: tx.nonce(),
            }
            .into());
        }
        let cost = U256::from(gas_limit) * U256::from(max_fee) + tx.value();
        if account.balance < cost {
            return Err(TxError::InsufficientFunds {
                balance: account.balance,
                cost,
            }
            .into());
        }
        Ok((
            PoolTx {
                hash,
                raw: Bytes::copy_from_slice(raw),
                nonce: tx.nonce(),
                tx,
                sender,
                gas_limit,
                max_fee,
                tip,
                seq: 0,
            },
            account.nonce,
        ))
    }

    /// eth_sendRawTransaction: validate, add to the pool, persist; returns the hash.
    pub fn submit_raw(&self, raw: &[u8]) -> Result<B256> {
        self.submit_raws(&[raw])
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("a submission gave no answer".into())))
    }

    /// Several eth_sendRawTransaction calls (a JSON-RPC batch): each is checked and pooled as
    /// [`Ledger::submit_raw`] would, and the answers come back in order. They share one read
    /// snapshot and one pool-journal append, so a batch pays those once rather than per
    /// transaction, and the thread that runs it does not hand off per transaction either.
    pub fn submit_raws(&self, raws: &[&[u8]]) -> Vec<Result<B256>> {
        let snapshot = self.db.begin_read().map_err(Error::from).and_then(|r| {
            let index = open_ro(&r, TX_INDEX)?;
            let view = StateView::accounts_only(&r)?;
            Ok((r, index, view))
        });
        let (r, index, view) = match snapshot {
            Ok(s) => s,
            Err(e) => {
                // The first answer keeps the error as it came; the rest repeat its message.
                let why = e.to_string();
                let mut first = Some(e);
                return raws
                    .iter()
                    .map(|_| Err(first.take().unwrap_or_else(|| Error::Db(why.clone()))))
                    .collect();
            }
        };
        let mut answers: Vec<Result<B256>> = Vec::with_capacity(raws.len());
        let mut accepted = Vec::new();
        for raw in raws {
            answers.push(
                self.pool_one(raw, index.as_ref(), &view)
                    .map(|(hash, gone)| {
                        accepted.push((hash, Bytes::copy_from_slice(raw), gone));
                        hash
                    }),
            );
        }
        drop(view);
        drop(index);
        drop(r);
        if accepted.is_empty() {
            return answers;
        }
        if let Err(e) = self.persist_pooled(accepted) {
            // The transactions stay pooled (a sequencer may mine them), but none was
            // acknowledged: a restart may lose them, which is what the caller is told.
            let why = e.to_string();
            for a in answers.iter_mut().filter(|a| a.is_ok()) {
                *a = Err(Error::Db(why.clone()));
            }
        }
        self.wake();
        answers
    }

    /// Check one submitted transaction against `view` and put it in the pool; returns its
    /// hash and the pooled transactions it replaced or evicted.
    fn pool_one(
        &self,
        raw: &[u8],
        index: Option<&redb::ReadOnlyTable<[u8; 32], (u64, u32)>>,
        view: &StateView,
    ) -> Result<(B256, Vec<B256>)> {
        let tx = self.decode_submitted(raw)?;
        let hash = keccak256(raw);
        if let Some(t) = index
            && t.get(hash.0)?.is_some()
        {
            return Err(TxError::AlreadyKnown.into());
        }
        // Decoding and recovering the sender (most of the work) need no lock: concurrent
        // submissions recover in parallel, and the sequencer never waits behind them for the
        // pool. The state nonce is the read snapshot's either way.
        let (tx, state_nonce) = self.check_decoded(raw, hash, tx, view)?;
        let inserted = self.lock_pool().insert(tx, state_nonce)?;
        let gone = inserted
            .replaced
            .iter()
            .chain(&inserted.evicted)
            .copied()
            .collect();
        Ok((hash, gone))
    }

    /// Write pooled transactions (hash, raw bytes, what each replaced or evicted) to the pool
    /// journal in a group commit; returns once they are durable (or their group failed).
    fn persist_pooled(&self, entries: Vec<(B256, Bytes, Vec<B256>)>) -> Result<()> {
        let ticket = {
            let mut j = self.lock_journal();
            j.issued += 1;
            j.entries.extend(entries);
            j.issued
        };
        let mut log = self.lock_pool_log();
        let (batch, gone, lo, hi) = {
            let mut j = self.lock_journal();
            if let Some((flo, fhi, why)) = &j.failed
                && (*flo..=*fhi).contains(&ticket)
            {
                return Err(Error::Db(format!("writing the pool failed: {why}")));
            }
            if j.durable >= ticket {
                return Ok(());
            }
            (
                std::mem::take(&mut j.entries),
                std::mem::take(&mut j.gone),
                j.durable + 1,
                j.issued,
            )
        };
        let mut record = PoolRecord {
            added: Vec::with_capacity(batch.len()),
            gone,
        };
        for (_, raw, gone) in batch {
            record.added.push(raw.to_vec());
            record.gone.extend(gone);
        }
        let written = log.append(&record);
        if written.is_ok() && log.len() > POOL_LOG_MAX_BYTES {
            // The group is durable already; a failed rewrite leaves the longer log.
            if let Err(e) = self.compact_pool_log(&mut log) {
                tracing::warn!(error = %e, "rewriting the pool journal failed");
            }
        }
        let mut j = self.lock_journal();
        match written {
            Ok(()) => {
                j.durable = hi;
                Ok(())
            }
            Err(e) => {
                j.durable = hi;
                j.failed = Some((lo, hi, e.to_string()));
                Err(e)
            }
        }
    }

    /// Queue an L1 deposit (dev: the local L1 queue); it enters the next block.
    pub fn queue_deposit(&self, d: &DepositRequest) -> Result<u64> {
        if d.gas_limit > genesis::GAS_LIMIT / 2 || d.gas_limit < 21_000 {
            return Err(Error::Invalid(format!(
                "deposit gas limit {} outside 21000..={}",
                d.gas_limit,
                genesis::GAS_LIMIT / 2
            )));
        }
        let w = self.db.begin_write()?;
        let n = {
            let mut m = w.open_table(META)?;
            let n = m.get("deposit_next")?.map(|v| v.value()).unwrap_or(0);
            m.insert("deposit_next", n + 1)?;
            n
        };
        {
            let mut t = w.open_table(DEPOSITS)?;
            let bytes = postcard::to_allocvec(d).map_err(|e| Error::Internal(e.to_string()))?;
            t.insert(n, bytes.as_slice())?;
        }
        self.commit_durable(w)?;
        self.wake();
        Ok(n)
    }

    fn wake(&self) {
        let (m, c) = &self.wake;
        let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        c.notify_all();
    }

    /// Wait until work arrives or `timeout` passes; returns the wake counter.
    pub fn wait_for_work(&self, seen: u64, timeout: std::time::Duration) -> u64 {
        let (m, c) = &self.wake;
        let g = m.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = c
            .wait_timeout_while(g, timeout, |n| *n == seen)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }

    /// Whether the pool holds a transaction that could go into the next block, or a deposit
    /// is queued.
    pub fn has_work(&self) -> Result<bool> {
        let r = self.db.begin_read()?;
        if let Some(t) = open_ro(&r, DEPOSITS)?
            && t.first()?.is_some()
        {
            return Ok(true);
        }
        let view = StateView::new(&r)?;
        let base_fee = next_base_fee(&self.head().header);
        let pool = self.lock_pool();
        let best = pool.best(base_fee, |a| {
            view.account(a).ok().flatten().map(|a| a.nonce).unwrap_or(0)
        });
        Ok(!best.is_empty())
    }

    /// Build the next block from queued deposits and the pool and commit it. `max_user_txs`
    /// bounds the pool transactions taken (1 with `--block-time 0`).
    pub fn seal(&self, max_user_txs: Option<usize>) -> Result<Sealed> {
        let _g = self.sealing.lock().unwrap_or_else(|p| p.into_inner());
        let parent = self.head();
        let timestamp = now_secs().max(parent.header.timestamp);
        let r = self.db.begin_read()?;
        let view = StateView::new(&r)?;
        let meta = open_ro(&r, META)?.ok_or_else(|| Error::Corrupt("no meta table".into()))?;
        let get = |k: &str| -> Result<u64> { Ok(meta.get(k)?.map(|v| v.value()).unwrap_or(0)) };
        let (mut l1_number, mut l1_seq) = (get("l1_number")?, get("l1_seq")?);
        let mut deposits = Vec::new();
        if let Some(t) = open_ro(&r, DEPOSITS)? {
            for e in t.iter()?.take(MAX_DEPOSITS_PER_BLOCK) {
                let (k, v) = e?;
                let d: DepositRequest = postcard::from_bytes(v.value())
                    .map_err(|e| Error::Corrupt(format!("queued deposit: {e}")))?;
                deposits.push((k.value(), d));
            }
        }
        // Deposits arrive with a new L1 origin (an epoch); other blocks repeat the origin.
        if deposits.is_empty() {
            l1_seq += 1;
        } else {
            l1_number += 1;
            l1_seq = 0;
        }
        let l1_hash = dev_l1_hash(l1_number);
        let mut cands = vec![Candidate::Deposit(TxDeposit {
            source_hash: L1InfoDepositSource::new(l1_hash, l1_seq).source_hash(),
            from: genesis::L1_ATTRIBUTES_DEPOSITOR,
            to: TxKind::Call(genesis::L1_BLOCK),
            mint: 0,
            value: U256::ZERO,
            gas_limit: L1_INFO_GAS,
            is_system_transaction: false,
            input: l1_info_calldata(l1_seq, l1_number, timestamp, l1_hash),
        })];
        for (i, (_, d)) in deposits.iter().enumerate() {
            cands.push(Candidate::Deposit(TxDeposit {
                source_hash: UserDepositSource::new(l1_hash, i as u64).source_hash(),
                from: d.from,
                to: exec::kind(d.to),
                mint: d.mint,
                value: d.value,
                gas_limit: d.gas_limit,
                is_system_transaction: false,
                input: d.data.clone(),
            }));
        }
        let base_fee = next_base_fee(&parent.header);
        {
            let pool = self.lock_pool();
            let best = pool.best(base_fee, |a| {
                view.account(a).ok().flatten().map(|a| a.nonce).unwrap_or(0)
            });
            let n = max_user_txs.unwrap_or(usize::MAX);
            cands.extend(best.into_iter().take(n).map(Candidate::User));
        }
        let consumed: Vec<u64> = deposits.iter().map(|(k, _)| *k).collect();
        let minted: u128 = deposits.iter().map(|(_, d)| d.mint).sum();
        let sealed = self.build_and_commit(
            &parent, timestamp, base_fee, cands, view, &consumed, minted, l1_number, l1_seq, None,
            true,
        );
        drop(r);
        sealed
    }

    /// Execute a block given in full (derivation from DA): every transaction must apply.
    pub fn apply_payload(&self, p: &BlockPayload) -> Result<Sealed> {
        self.apply_logged(p, &[], true)
    }

    /// [`Ledger::apply_payload`], also removing the deposit-queue entries the block consumed;
    /// `log: false` when the block comes from the block log itself (replay).
    fn apply_logged(&self, p: &BlockPayload, consumed: &[u64], log: bool) -> Result<Sealed> {
        let _g = self.sealing.lock().unwrap_or_else(|p| p.into_inner());
        let parent = self.head();
        if p.number != parent.header.number + 1 {
            return Err(Error::Invalid(format!(
                "block {} does not follow the head {}",
                p.number, parent.header.number
            )));
        }
        let mut cands = Vec::new();
        let mut minted = 0u128;
        let (mut l1_number, mut l1_seq) = (0, 0);
        for (i, raw) in p.txs.iter().enumerate() {
            let tx = decode_tx(raw)?;
            match tx {
                OpTxEnvelope::Deposit(d) => {
                    let d = d.into_inner();
                    if i == 0 {
                        let (seq, n, _, _) = parse_l1_info(&d.input).ok_or_else(|| {
                            Error::Invalid("tx 0 is not an L1-attributes deposit".into())
                        })?;
                        l1_number = n;
                        l1_seq = seq;
                    }
                    minted += d.mint;
                    cands.push(Candidate::Deposit(d));
                }
                other => {
                    let sender =
                        alloy_consensus::transaction::SignerRecoverable::recover_signer(&other)
                            .map_err(|e| Error::Invalid(format!("bad signature in DA: {e}")))?;
                    cands.push(Candidate::User(Arc::new(PoolTx {
                        hash: keccak256(raw),
                        raw: Bytes::copy_from_slice(raw),
                        nonce: other.nonce(),
                        gas_limit: other.gas_limit(),
                        max_fee: other.max_fee_per_gas(),
                        tip: other
                            .max_priority_fee_per_gas()
                            .unwrap_or(other.max_fee_per_gas()),
                        tx: other,
                        sender,
                        seq: 0,
                    })));
                }
            }
        }
        let base_fee = next_base_fee(&parent.header);
        let r = self.db.begin_read()?;
        let view = StateView::new(&r)?;
        let n = cands.len();
        let sealed = self.build_and_commit(
            &parent,
            p.timestamp,
            base_fee,
            cands,
            view,
            consumed,
            minted,
            l1_number,
            l1_seq,
            Some(n),
            log,
        )?;
        if sealed.hash != p.hash {
            return Err(Error::Invalid(format!(
                "block {} re-executes to hash {} but DA says {}",
                p.number, sealed.hash, p.hash
            )));
        }
        Ok(sealed)
    }

    #[allow(clippy::too_many_arguments)] // one private call site per mode; a struct adds nothing
    fn build_and_commit(
        &self,
        parent: &Head,
        timestamp: u64,
        base_fee: u64,
        cands: Vec<Candidate>,
        view: StateView,
        consumed_deposits: &[u64],
        minted: u128,
        l1_number: u64,
        l1_seq: u64,
        must_include: Option<usize>,
        log: bool,
    ) -> Result<Sealed> {
        let started = std::time::Instant::now();
        let number = parent.header.number + 1;
        let prevrandao = keccak256([parent.hash.as_slice(), b"prevrandao"].concat());
        let params = BlockParams {
            number,
            timestamp,
            base_fee,
            gas_limit: genesis::GAS_LIMIT,
            prevrandao,
            beneficiary: genesis::SEQUENCER_FEE_VAULT,
        };
        let block_env = exec::block_env(&params);
        let cfg = exec::cfg(self.genesis.chain_id);
        let mut cache = CacheDB::new(&view);
        let mut changes: BTreeMap<Address, Change> = BTreeMap::new();
        let mut body = StoredBody::default();
        let mut receipts: Vec<StoredReceipt> = Vec::new();
        let mut cumulative = 0u64;
        let mut dropped: Vec<B256> = Vec::new();
        let mut mined: Vec<B256> = Vec::new();
        let mut user_txs = 0;
        // (address, tx index) for the account history index.
        let mut involved: Vec<([u8; 20], u32)> = Vec::new();
        for cand in cands {
            let (env, raw, sender, ty, deposit_nonce, gas_limit, price) = match &cand {
                Candidate::Deposit(d) => {
                    let nonce = revm::Database::basic(&mut cache, d.from)
                        .map_err(|e| Error::Evm(e.to_string()))?
                        .map(|a| a.nonce)
                        .unwrap_or(0);
                    let mut raw = Vec::new();
                    d.encode_2718(&mut raw);
                    (
                        exec::deposit_env(d)?,
                        raw,
                        d.from,
                        op_alloy_consensus::DEPOSIT_TX_TYPE_ID,
                        Some(nonce),
                        d.gas_limit,
                        0u128,
                    )
                }
                Candidate::User(t) => {
                    if t.gas_limit > genesis::GAS_LIMIT - cumulative {
                        if must_include.is_some() {
                            return Err(Error::Invalid("block over its gas limit".into()));
                        }
                        continue;
                    }
                    let price = t.effective_tip(base_fee).unwrap_or(0) + u128::from(base_fee);
                    (
                        exec::tx_env(&t.tx, t.sender)?,
                        t.raw.to_vec(),
                        t.sender,
                        t.tx.tx_type() as u8,
                        None,
                        t.gas_limit,
                        price,
                    )
                }
            };
            let _ = gas_limit;
            let out = exec::transact(&mut cache, &block_env, &cfg, env)?;
            let res = match out {
                Ok(r) => r,
                Err(why) => {
                    if must_include.is_some() {
                        return Err(Error::Invalid(format!("a DA transaction fails: {why}")));
                    }
                    if let Candidate::User(t) = &cand {
                        tracing::debug!(tx = %t.hash, %why, "dropping a pool transaction");
                        dropped.push(t.hash);
                    }
                    continue;
                }
            };
            absorb(&mut changes, &res.state);
            cache.commit(res.state);
            let gas_used = res.result.tx_gas_used();
            cumulative += gas_used;
            let logs: Vec<StoredLog> = res
                .result
                .logs()
                .iter()
                .map(|l| StoredLog {
                    address: l.address.0.0,
                    topics: l.topics().iter().map(|t| t.0).collect(),
                    data: l.data.data.to_vec(),
                })
                .collect();
            let contract_address = match &res.result {
                ExecutionResult::Success {
                    output: revm::context::result::Output::Create(_, Some(a)),
                    ..
                } => Some(a.0.0),
                _ => None,
            };
            receipts.push(StoredReceipt {
                tx_type: ty,
                status: res.result.is_success(),
                cumulative_gas_used: cumulative,
                gas_used,
                effective_gas_price: price,
                logs,
                contract_address,
                deposit_nonce,
            });
            if let Candidate::User(t) = &cand {
                mined.push(t.hash);
                user_txs += 1;
            }
            let i = body.txs.len() as u32;
            let to = match &cand {
                Candidate::Deposit(d) => d.to.to().copied(),
                Candidate::User(t) => t.tx.to(),
            };
            for a in [Some(sender.0.0), to.map(|a| a.0.0), contract_address]
                .into_iter()
                .flatten()
            {
                involved.push((a, i));
            }
            body.senders.push(sender.0.0);
            body.txs.push(raw);
        }
        drop(cache);
        let execute = started.elapsed();

        let changed_accounts = changes.len();
        let w = self.db.begin_write()?;
        let state_started = std::time::Instant::now();
        // The block's body, receipts and indexes go in on a second thread while this one
        // applies the state: they touch other tables (redb lets a write transaction's tables
        // be written from several threads) and need nothing the state gives. The wait for
        // them after the state counts as `store`, so the timings still add up to the block.
        let (state, wait_started, blocked) = std::thread::scope(|s| {
            let blocked = std::thread::Builder::new()
                .name("block-store".into())
                .spawn_scoped(s, || store_indexes(&w, number, &body, &receipts, &involved));
            let state = {
                let held = self.read_nodes();
                let cache = self.read_cache();
                let mut stage = TrieStage::held(&held, &cache);
                apply_state(&w, changes, number, true, &mut stage, Some(&view))
                    .map(|(root, passer)| (root, passer, stage.pending, stage.wiped, stage.times))
            };
            let wait_started = std::time::Instant::now();
            // Without its thread the block fails whole: nothing of it is committed.
            let blocked = match blocked {
                Ok(t) => t.join().unwrap_or_else(|_| {
                    Err(Error::Internal("the block store thread panicked".into()))
                }),
                Err(e) => Err(Error::Internal(format!(
                    "starting the block store thread: {e}"
                ))),
            };
            (state, wait_started, blocked)
        });
        let (state_root, passer_root, pending, wiped, trie_times) = state?;
        let trie_nodes = pending.len();
        let (transactions_root, receipts_root, logs_bloom) = blocked?;
        let state_time = wait_started.saturating_duration_since(state_started);
        drop(view);
        let header = Header {
            parent_hash: parent.hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: genesis::SEQUENCER_FEE_VAULT,
            state_root,
            transactions_root,
            receipts_root,
            logs_bloom,
            difficulty: U256::ZERO,
            number,
            gas_limit: genesis::GAS_LIMIT,
            gas_used: cumulative,
            timestamp,
            extra_data: Bytes::new(),
            mix_hash: prevrandao,
            nonce: Default::default(),
            base_fee_per_gas: Some(base_fee),
            withdrawals_root: Some(passer_root),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            block_access_list_hash: None,
            slot_number: None,
        };
        let hash = store_header(&w, &header)?;
        let store = wait_started.elapsed();
        {
            let mut m = w.open_table(META)?;
            m.insert("l1_number", l1_number)?;
            m.insert("l1_seq", l1_seq)?;
            let mut d = w.open_table(DEPOSITS)?;
            for k in consumed_deposits {
                d.remove(*k)?;
            }
            if minted > 0 {
                let mut s = w.open_table(SUPPLY)?;
                let before = s
                    .get("minted")?
                    .map(|v| U256::from_be_bytes(v.value()))
                    .unwrap_or_default();
                s.insert("minted", (before + U256::from(minted)).to_be_bytes::<32>())?;
            }
        }
        let payload = BlockPayload {
            number,
            timestamp,
            txs: body.txs.clone(),
            hash,
        };
        let checkpoint = self.commit_block(w, &payload, consumed_deposits, log, pending, wiped)?;
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = Head {
            header: header.clone(),
            hash,
        };
        let mut forget: Vec<B256> = dropped.clone();
        {
            let mut pool = self.lock_pool();
            for h in mined.iter().chain(&dropped) {
                pool.remove(h);
            }
            // Replacements of mined nonces can no longer run.
            let senders: BTreeSet<Address> =
                body.senders.iter().map(|s| Address::from(*s)).collect();
            if !senders.is_empty() {
                let r = self.db.begin_read()?;
                let view = StateView::new(&r)?;
                for s in senders {
                    let n = view.account(&s)?.map(|a| a.nonce).unwrap_or(0);
                    forget.extend(pool.prune_sender(&s, n));
                }
            }
        }
        self.forget_pooled(forget);
        Ok(Sealed {
            payload,
            header,
            hash,
            user_txs,
            timings: SealTimings {
                execute,
                state_root: trie_times.wall,
                state_writes: state_time.saturating_sub(trie_times.wall),
                store,
                commit: started
                    .elapsed()
                    .saturating_sub(execute + state_time + store),
                checkpoint,
                accounts: changed_accounts,
                trie_nodes,
                state_root_cpu: trie_times.cpu,
            },
        })
    }

    // ---- queries -------------------------------------------------------------------------

    /// A read snapshot of the state at the head.
    pub fn state(&self) -> Result<(redb::ReadTransaction, StateView)> {
        let r = self.db.begin_read()?;
        let v = StateView::new(&r)?;
        Ok((r, v))
    }

    /// Rebuild the head's state root from the flat state alone — every account and every
    /// storage slot, through alloy-trie's `HashBuilder`, without the stored trie nodes —
    /// and compare it with the head header's. The operator's check of a ledger after a
    /// disk or power fault, and the benchmark's measure of what a root computed from the
    /// whole state would cost beside the per-block one (BENCHMARKS.md). Reads one
    /// snapshot, so blocks go on being sealed while it runs.
    pub fn verify_state(&self) -> Result<StateCheck> {
        verify_snapshot(&self.db.begin_read()?)
    }

    /// A read snapshot of the state after block `block` (the head when `None`);
    /// [`Error::NotFound`] for a block after the head.
    pub fn state_at(&self, block: Option<u64>) -> Result<(redb::ReadTransaction, StateView)> {
        let r = self.db.begin_read()?;
        let Some(n) = block else {
            let v = StateView::new(&r)?;
            return Ok((r, v));
        };
        // The head of this snapshot, not `self.head()`: a block sealed since is not in it.
        let meta = open_ro(&r, META)?.ok_or_else(|| Error::Corrupt("no meta table".into()))?;
        let head = meta
            .get("head")?
            .map(|v| v.value())
            .ok_or_else(|| Error::Corrupt("no head block".into()))?;
        let from = meta.get(HISTORY_FROM)?.map(|v| v.value()).unwrap_or(0);
        if n < from {
            return Err(Error::NotFound(format!(
                "historical state is not available before block {from}: this ledger was written before it kept change sets"
            )));
        }
        let v = match n.cmp(&head) {
            std::cmp::Ordering::Greater => {
                return Err(Error::NotFound("header not found".into()));
            }
            std::cmp::Ordering::Equal => StateView::new(&r)?,
            std::cmp::Ordering::Less => StateView::at(&r, n)?,
        };
        Ok((r, v))
    }

    /// An account at the head (default when absent).
    pub fn account(&self, addr: &Address) -> Result<StoredAccount> {
        self.account_at(addr, None)
    }

    /// An account after block `block` (the head when `None`; default when absent).
    pub fn account_at(&self, addr: &Address, block: Option<u64>) -> Result<StoredAccount> {
        let (_r, v) = self.state_at(block)?;
        Ok(v.account(addr)?.unwrap_or(StoredAccount {
            code_hash: KECCAK_EMPTY,
            storage_root: EMPTY_ROOT_HASH,
            ..Default::default()
        }))
    }

    /// The nonce the sender's next transaction should use, counting the pool.
    pub fn pending_nonce(&self, addr: &Address) -> Result<u64> {
        let n = self.account(addr)?.nonce;
        Ok(self.lock_pool().pending_nonce(addr, n))
    }

    /// A storage slot at the head.
    pub fn storage_at(&self, addr: &Address, slot: U256) -> Result<U256> {
        self.slot_at(addr, slot, None)
    }

    /// A storage slot after block `block` (the head when `None`).
    pub fn slot_at(&self, addr: &Address, slot: U256, block: Option<u64>) -> Result<U256> {
        let (_r, v) = self.state_at(block)?;
        v.slot(addr, &slot)
    }

    /// Code at the head.
    pub fn code(&self, addr: &Address) -> Result<Bytes> {
        self.code_at(addr, None)
    }

    /// Code after block `block` (the head when `None`).
    pub fn code_at(&self, addr: &Address, block: Option<u64>) -> Result<Bytes> {
        let (_r, v) = self.state_at(block)?;
        let Some(a) = v.account(addr)? else {
            return Ok(Bytes::new());
        };
        if a.code_hash == KECCAK_EMPTY {
            return Ok(Bytes::new());
        }
        Ok(v.code(&a.code_hash)?.unwrap_or_default().into())
    }

    /// Total OPEN in existence: genesis plus deposits' mints.
    pub fn expected_supply(&self) -> Result<U256> {
        let r = self.db.begin_read()?;
        let minted = open_ro(&r, SUPPLY)?
            .and_then(|t| {
                t.get("minted")
                    .ok()
                    .flatten()
                    .map(|v| U256::from_be_bytes(v.value()))
            })
            .unwrap_or_default();
        Ok(U256::from(genesis::TOTAL_SUPPLY) + minted)
    }

    /// Sum of all balances (reads every account).
    pub fn total_balance(&self) -> Result<U256> {
        let (_r, v) = self.state()?;
        v.total_balance()
    }

    /// Header and hash of block `n`.
    pub fn header(&self, n: u64) -> Result<Option<(Header, B256)>> {
        let r = self.db.begin_read()?;
        Ok(read_header(&r, n)?.map(|h| {
            let hash = h.hash_slow();
            (h, hash)
        }))
    }

    /// The number of the block with `hash`.
    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>> {
        let r = self.db.begin_read()?;
        let Some(t) = open_ro(&r, BLOCK_NUMBERS)? else {
            return Ok(None);
        };
        Ok(t.get(hash.0)?.map(|v| v.value()))
    }

    /// A block with its transactions.
    pub fn block(&self, n: u64) -> Result<Option<BlockInfo>> {
        let r = self.db.begin_read()?;
        let Some(header) = read_header(&r, n)? else {
            return Ok(None);
        };
        let hash = header.hash_slow();
        let body = read_body(&r, n)?;
        let receipts = read_receipts(&r, n)?;
        let mut txs = Vec::with_capacity(body.txs.len());
        let mut size = alloy_rlp::Encodable::length(&header) + 3;
        for (i, raw) in body.txs.iter().enumerate() {
            size += raw.len();
            txs.push(TxInfo {
                tx: decode_tx(raw)?,
                hash: keccak256(raw),
                from: Address::from(body.senders.get(i).copied().unwrap_or_default()),
                block: Some((hash, n, i as u64)),
                base_fee: header.base_fee_per_gas,
                deposit_nonce: receipts.get(i).and_then(|r| r.deposit_nonce),
            });
        }
        Ok(Some(BlockInfo {
            header,
            hash,
            txs,
            size: size as u64,
        }))
    }

    /// A transaction by hash (mined, or pending in the pool).
    pub fn transaction(&self, hash: &B256) -> Result<Option<TxInfo>> {
        let r = self.db.begin_read()?;
        let at = match open_ro(&r, TX_INDEX)? {
            None => None,
            Some(t) => t.get(hash.0)?.map(|v| v.value()),
        };
        let Some((n, i)) = at else {
            return Ok(self.lock_pool().get(hash).map(|t| TxInfo {
                tx: t.tx.clone(),
                hash: t.hash,
                from: t.sender,
                block: None,
                base_fee: None,
                deposit_nonce: None,
            }));
        };
        let header =
            read_header(&r, n)?.ok_or_else(|| Error::Corrupt("indexed block missing".into()))?;
        let body = read_body(&r, n)?;
        let receipts = read_receipts(&r, n)?;
        let i = i as usize;
        let raw = body
            .txs
            .get(i)
            .ok_or_else(|| Error::Corrupt("indexed tx missing".into()))?;
        Ok(Some(TxInfo {
            tx: decode_tx(raw)?,
            hash: *hash,
            from: Address::from(body.senders.get(i).copied().unwrap_or_default()),
            block: Some((header.hash_slow(), n, i as u64)),
            base_fee: header.base_fee_per_gas,
            deposit_nonce: receipts.get(i).and_then(|r| r.deposit_nonce),
        }))
    }

    /// The transactions that `addr` sent, received or created, newest first: at most
    /// `limit`, all strictly before `before` (block number, index in the block) when given.
    /// Pass the position of the last one returned as the next `before` to page on.
    pub fn account_transactions(
        &self,
        addr: &Address,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<TxInfo>> {
        let r = self.db.begin_read()?;
        let Some(t) = open_ro(&r, ACCOUNT_TXS)? else {
            return Ok(Vec::new());
        };
        let a = addr.0.0;
        let (bn, bi) = before.unwrap_or((u64::MAX, u32::MAX));
        let mut out = Vec::new();
        // Consecutive entries are often in one block: read it once.
        let mut block: Option<(u64, Header, B256, StoredBody, Vec<StoredReceipt>)> = None;
        for e in t.range((a, 0, 0)..(a, bn, bi))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (n, i) = {
                let k = e?.0.value();
                (k.1, k.2)
            };
            if block.as_ref().is_none_or(|b| b.0 != n) {
                let header = read_header(&r, n)?
                    .ok_or_else(|| Error::Corrupt(format!("indexed block {n} missing")))?;
                let hash = header.hash_slow();
                block = Some((n, header, hash, read_body(&r, n)?, read_receipts(&r, n)?));
            }
            let Some((_, header, hash, body, receipts)) = &block else {
                continue;
            };
            let i = i as usize;
            let raw = body
                .txs
                .get(i)
                .ok_or_else(|| Error::Corrupt("indexed tx missing".into()))?;
            out.push(TxInfo {
                tx: decode_tx(raw)?,
                hash: keccak256(raw),
                from: Address::from(body.senders.get(i).copied().unwrap_or_default()),
                block: Some((*hash, n, i as u64)),
                base_fee: header.base_fee_per_gas,
                deposit_nonce: receipts.get(i).and_then(|r| r.deposit_nonce),
            });
        }
        Ok(out)
    }

    /// The newest `limit` logs emitted by `addr`, newest first (the console's recent events
    /// of a contract; eth_getLogs needs a block range and answers oldest first).
    pub fn recent_logs(&self, addr: &Address, limit: usize) -> Result<Vec<LogInfo>> {
        let r = self.db.begin_read()?;
        let Some(t) = open_ro(&r, LOG_ADDRESSES)? else {
            return Ok(Vec::new());
        };
        let a = addr.0.0;
        let mut out = Vec::new();
        for e in t.range((a, 0)..=(a, u64::MAX))?.rev() {
            if out.len() >= limit {
                break;
            }
            let n = e?.0.value().1;
            let header = read_header(&r, n)?
                .ok_or_else(|| Error::Corrupt(format!("indexed block {n} missing")))?;
            let hash = header.hash_slow();
            let body = read_body(&r, n)?;
            let mut in_block = Vec::new();
            let mut log_index = 0u64;
            for (i, rc) in read_receipts(&r, n)?.into_iter().enumerate() {
                for l in rc.logs {
                    let idx = log_index;
                    log_index += 1;
                    if l.address != a {
                        continue;
                    }
                    in_block.push(LogInfo {
                        log: l,
                        block_hash: hash,
                        block_number: n,
                        block_timestamp: header.timestamp,
                        tx_hash: keccak256(body.txs.get(i).map(Vec::as_slice).unwrap_or_default()),
                        tx_index: i as u64,
                        log_index: idx,
                    });
                }
            }
            out.extend(in_block.into_iter().rev().take(limit - out.len()));
        }
        Ok(out)
    }

    /// The receipts of block `n`, as RPC shows them.
    pub fn block_receipts(&self, n: u64) -> Result<Option<Vec<ReceiptInfo>>> {
        let r = self.db.begin_read()?;
        let Some(header) = read_header(&r, n)? else {
            return Ok(None);
        };
        let hash = header.hash_slow();
        let body = read_body(&r, n)?;
        let receipts = read_receipts(&r, n)?;
        let mut out = Vec::new();
        let mut log_index = 0u64;
        for (i, rc) in receipts.into_iter().enumerate() {
            let raw = body
                .txs
                .get(i)
                .ok_or_else(|| Error::Corrupt("receipt without tx".into()))?;
            let tx = decode_tx(raw)?;
            let n_logs = rc.logs.len() as u64;
            out.push(ReceiptInfo {
                logs_bloom: receipt_bloom(&rc),
                receipt: rc,
                tx_hash: keccak256(raw),
                index: i as u64,
                block_hash: hash,
                block_number: n,
                from: Address::from(body.senders.get(i).copied().unwrap_or_default()),
                to: tx.to(),
                first_log_index: log_index,
            });
            log_index += n_logs;
        }
        Ok(Some(out))
    }

    /// A receipt by transaction hash.
    pub fn receipt(&self, hash: &B256) -> Result<Option<ReceiptInfo>> {
        let at = {
            let r = self.db.begin_read()?;
            match open_ro(&r, TX_INDEX)? {
                None => None,
                Some(t) => t.get(hash.0)?.map(|v| v.value()),
            }
        };
        let Some((n, i)) = at else { return Ok(None) };
        let mut all = self.block_receipts(n)?.unwrap_or_default();
        if (i as usize) >= all.len() {
            return Err(Error::Corrupt(format!(
                "tx index names receipt {i} of block {n}"
            )));
        }
        Ok(Some(all.swap_remove(i as usize)))
    }

    /// eth_getLogs.
    pub fn logs(&self, f: &LogFilter) -> Result<Vec<LogInfo>> {
        if f.to < f.from {
            return Ok(Vec::new());
        }
        if f.to - f.from >= MAX_LOG_RANGE {
            return Err(Error::Invalid(format!(
                "query exceeds max block range {MAX_LOG_RANGE}"
            )));
        }
        let r = self.db.begin_read()?;
        // Candidate blocks from the indexes when the filter names addresses or topics.
        let mut blocks: Option<BTreeSet<u64>> = None;
        if !f.addresses.is_empty() {
            let mut s = BTreeSet::new();
            if let Some(t) = open_ro(&r, LOG_ADDRESSES)? {
                for a in &f.addresses {
                    for e in t.range((a.0.0, f.from)..=(a.0.0, f.to))? {
                        s.insert(e?.0.value().1);
                    }
                }
            }
            blocks = Some(s);
        } else if let Some(Some(ts)) = f
            .topics
            .iter()
            .find(|t| t.as_ref().is_some_and(|v| !v.is_empty()))
        {
            let mut s = BTreeSet::new();
            if let Some(t) = open_ro(&r, LOG_TOPICS)? {
                for topic in ts {
                    for e in t.range((topic.0, f.from)..=(topic.0, f.to))? {
                        s.insert(e?.0.value().1);
                    }
                }
            }
            blocks = Some(s);
        }
        let blocks: Vec<u64> = match blocks {
            Some(s) => s.into_iter().collect(),
            None => (f.from..=f.to).collect(),
        };
        let mut out = Vec::new();
        for n in blocks {
            let Some(header) = read_header(&r, n)? else {
                break;
            };
            let hash = header.hash_slow();
            let body = read_body(&r, n)?;
            let mut log_index = 0u64;
            for (i, rc) in read_receipts(&r, n)?.into_iter().enumerate() {
                for l in rc.logs {
                    let idx = log_index;
                    log_index += 1;
                    if !f.addresses.is_empty() && !f.addresses.iter().any(|a| a.0.0 == l.address) {
                        continue;
                    }
                    let topics_ok = f.topics.iter().enumerate().all(|(p, want)| match want {
                        None => true,
                        Some(v) if v.is_empty() => true,
                        Some(v) => l.topics.get(p).is_some_and(|t| v.iter().any(|w| w.0 == *t)),
                    });
                    if !topics_ok {
                        continue;
                    }
                    out.push(LogInfo {
                        log: l,
                        block_hash: hash,
                        block_number: n,
                        block_timestamp: header.timestamp,
                        tx_hash: keccak256(body.txs.get(i).map(Vec::as_slice).unwrap_or_default()),
                        tx_index: i as u64,
                        log_index: idx,
                    });
                    if out.len() > MAX_LOGS {
                        return Err(Error::Invalid(format!(
                            "query returned more than {MAX_LOGS} results"
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// eth_getProof after block `block` (the head when `None`).
    ///
    /// The trie table holds the newest nodes only. For an older block, every account (and
    /// every slot of `addr`) changed since is set back to its value at that block, from the
    /// change sets, in a trie update over the newest nodes that is never written; its root
    /// must be the block's state root, and the proof is walked through it. The work grows
    /// with what changed since the block, so it is refused past [`MAX_PROOF_REPLAY`] keys.
    pub fn proof(
        &self,
        addr: &Address,
        slots: &[B256],
        block: Option<u64>,
    ) -> Result<AccountProof> {
        // Held while the read transaction opens: a block's commit and the merge of its trie
        // nodes happen under the write lock, so the two agree.
        let held = self.read_nodes();
        let r = self.db.begin_read()?;
        let now = StateView::new(&r)?;
        let meta = open_ro(&r, META)?.ok_or_else(|| Error::Corrupt("no meta table".into()))?;
        let head = meta
            .get("head")?
            .map(|v| v.value())
            .ok_or_else(|| Error::Corrupt("no head block".into()))?;
        let n = block.unwrap_or(head);
        if n > head {
            return Err(Error::NotFound("header not found".into()));
        }
        let ha = keccak256(addr);
        let then = if n < head {
            StateView::at(&r, n)?
        } else {
            StateView::new(&r)?
        };
        let account = then.account(addr)?.unwrap_or(StoredAccount {
            code_hash: KECCAK_EMPTY,
            storage_root: EMPTY_ROOT_HASH,
            ..Default::default()
        });
        if n == head {
            let nodes = Layered {
                table: &now,
                cache: None,
                held: Some(&held),
                wiped: &[],
            };
            let account_proof = trie::proof(&nodes, Owner::Accounts, &ha)?
                .into_iter()
                .map(Bytes::from)
                .collect();
            let mut storage = Vec::new();
            for s in slots {
                let value = now.slot(addr, &U256::from_be_bytes(s.0))?;
                let proof = if account.storage_root == EMPTY_ROOT_HASH {
                    Vec::new()
                } else {
                    trie::proof(&nodes, Owner::Storage(ha), &keccak256(s))?
                        .into_iter()
                        .map(Bytes::from)
                        .collect()
                };
                storage.push((*s, value, proof));
            }
            return Ok(AccountProof {
                account,
                account_proof,
                storage,
            });
        }

        // Putting keys back takes a while: work over a copy of the held nodes rather than
        // keep the sequencer from merging its next block's.
        let copy: NodeOverlay = held.clone();
        drop(held);
        let held = copy;
        let nodes = Layered {
            table: &now,
            cache: None,
            held: Some(&held),
            wiped: &[],
        };
        // What changed after block n: every account, and the slots of this one.
        let unavailable = |why: String| {
            Error::NotFound(format!(
                "historical state is not available for eth_getProof at block {n}: {why}"
            ))
        };
        let lists = open_ro(&r, BLOCK_CHANGES)?;
        let mut changed: BTreeSet<[u8; 32]> = BTreeSet::new();
        let mut changed_slots: BTreeSet<[u8; 32]> = BTreeSet::new();
        let mut replayed = 0usize;
        for b in n + 1..=head {
            let list = lists
                .as_ref()
                .map(|t| t.get(b))
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    unavailable(format!(
                        "block {b} was made before this ledger listed the keys each block changes"
                    ))
                })?;
            let list: Vec<([u8; 32], Vec<[u8; 32]>)> = postcard::from_bytes(list.value())
                .map_err(|e| Error::Corrupt(format!("change list of block {b}: {e}")))?;
            for (a, s) in list {
                replayed += 1 + s.len();
                if a == ha.0 {
                    changed_slots.extend(s);
                }
                changed.insert(a);
            }
            if replayed > MAX_PROOF_REPLAY {
                return Err(unavailable(format!(
                    "more than {MAX_PROOF_REPLAY} accounts and slots changed in the {} blocks since; proofs are served for recent blocks",
                    head - n
                )));
            }
        }
        let header =
            read_header(&r, n)?.ok_or_else(|| Error::Corrupt(format!("header {n} missing")))?;
        let mut up = TrieUpdate::new(&nodes, Owner::Accounts);
        for a in &changed {
            let rlp = then.account_hashed(a)?.map(|acc| acc.trie_rlp());
            up.set(&B256::from(*a), rlp.as_deref())?;
        }
        let root = up.root()?;
        if root != header.state_root {
            return Err(Error::Corrupt(format!(
                "the state put back to block {n} has root {root}, the block has {}",
                header.state_root
            )));
        }
        let account_proof = up.proof(&ha)?.into_iter().map(Bytes::from).collect();
        let mut storage = Vec::new();
        if account.storage_root == EMPTY_ROOT_HASH {
            for s in slots {
                storage.push((*s, U256::ZERO, Vec::new()));
            }
        } else {
            let mut sup = TrieUpdate::new(&nodes, Owner::Storage(ha));
            for hs in &changed_slots {
                let v = then.slot_hashed(&ha.0, hs)?;
                let rlp = (!v.is_zero()).then(|| alloy_rlp::encode(v));
                sup.set(&B256::from(*hs), rlp.as_deref())?;
            }
            let sroot = sup.root()?;
            if sroot != account.storage_root {
                return Err(Error::Corrupt(format!(
                    "the storage of {addr} put back to block {n} has root {sroot}, the account has {}",
                    account.storage_root
                )));
            }
            for s in slots {
                let value = then.slot(addr, &U256::from_be_bytes(s.0))?;
                let proof = sup
                    .proof(&keccak256(s))?
                    .into_iter()
                    .map(Bytes::from)
                    .collect();
                storage.push((*s, value, proof));
            }
        }
        Ok(AccountProof {
            account,
            account_proof,
            storage,
        })
    }

    fn call_env(&self, req: &CallRequest, gas: u64) -> Result<OpTransaction<TxEnv>> {
        let mut b = TxEnv::builder()
            .caller(req.from.unwrap_or_default())
            .gas_limit(gas)
            .kind(exec::kind(req.to))
            .value(req.value.unwrap_or_default())
            .data(req.data.clone().unwrap_or_default())
            .chain_id(Some(self.genesis.chain_id));
        match (req.gas_price, req.max_fee_per_gas) {
            (_, Some(max)) => {
                b = b
                    .tx_type(Some(2))
                    .max_fee_per_gas(max)
                    .gas_priority_fee(Some(req.max_priority_fee_per_gas.unwrap_or(0)));
            }
            (Some(p), None) => b = b.tx_type(Some(0)).gas_price(p),
            (None, None) => {
                b = b
                    .tx_type(Some(2))
                    .max_fee_per_gas(0)
                    .gas_priority_fee(Some(0))
            }
        }
        if let Some(al) = &req.access_list {
            b = b.access_list(al.clone());
        }
        let base = b.build_fill();
        let mut op = OpTransaction::new(base);
        op.enveloped_tx = Some(Bytes::new());
        Ok(op)
    }

    fn run_call(
        &self,
        req: &CallRequest,
        gas: u64,
        block: Option<u64>,
    ) -> Result<std::result::Result<ExecutionResult<op_revm::OpHaltReason>, String>> {
        let (r, view) = self.state_at(block)?;
        // A call runs on top of a state as the block after it would: at the head, a block
        // sealed now; after an older block, the block that did follow it.
        let next = match view.block() {
            Some(n) => read_header(&r, n + 1)?,
            None => None,
        };
        let params = match next {
            Some(h) => BlockParams {
                number: h.number,
                timestamp: h.timestamp,
                base_fee: h.base_fee_per_gas.unwrap_or(genesis::INITIAL_BASE_FEE),
                gas_limit: genesis::GAS_LIMIT,
                prevrandao: h.mix_hash,
                beneficiary: genesis::SEQUENCER_FEE_VAULT,
            },
            None => {
                let head = self.head();
                BlockParams {
                    number: head.header.number + 1,
                    timestamp: now_secs().max(head.header.timestamp),
                    base_fee: next_base_fee(&head.header),
                    gas_limit: genesis::GAS_LIMIT,
                    prevrandao: head.header.mix_hash,
                    beneficiary: genesis::SEQUENCER_FEE_VAULT,
                }
            }
        };
        let mut cache = CacheDB::new(&view);
        let block = exec::block_env(&params);
        let mut cfg = exec::cfg(self.genesis.chain_id);
        cfg.disable_nonce_check = true;
        // A call without a price pays nothing (geth's eth_call); with one it is checked.
        cfg.disable_base_fee = req.gas_price.is_none() && req.max_fee_per_gas.is_none();
        let env = self.call_env(req, gas)?;
        Ok(exec::transact(&mut cache, &block, &cfg, env)?.map(|r| r.result))
    }

    /// eth_call at the head: the return data, or a revert / halt error.
    pub fn call(&self, req: &CallRequest) -> Result<Bytes> {
        self.call_at(req, None)
    }

    /// eth_call on the state after block `block` (the head when `None`).
    pub fn call_at(&self, req: &CallRequest, block: Option<u64>) -> Result<Bytes> {
        let gas = req.gas.unwrap_or(TX_GAS_CAP).min(TX_GAS_CAP);
        match self.run_call(req, gas, block)? {
            Ok(r) => exec::call_outcome(&r),
            Err(why) => Err(Error::Halted(why)),
        }
    }

    /// eth_estimateGas at the head: the least gas limit with which the call succeeds.
    pub fn estimate_gas(&self, req: &CallRequest) -> Result<u64> {
        self.estimate_gas_at(req, None)
    }

    /// eth_estimateGas on the state after block `block` (the head when `None`).
    pub fn estimate_gas_at(&self, req: &CallRequest, block: Option<u64>) -> Result<u64> {
        let cap = req.gas.unwrap_or(TX_GAS_CAP).min(TX_GAS_CAP);
        let first = match self.run_call(req, cap, block)? {
            Ok(r) => r,
            Err(why) => return Err(Error::Halted(why)),
        };
        if !first.is_success() {
            exec::call_outcome(&first)?;
            return Err(Error::Halted("execution failed".into()));
        }
        let used = first.tx_gas_used();
        let ok = |g: u64| -> Result<bool> {
            Ok(matches!(self.run_call(req, g, block)?, Ok(r) if r.is_success()))
        };
        // Most calls succeed with a little more than they used; try that before searching.
        let guess = (used.saturating_add(used / 63) + 2_300).min(cap);
        let (mut lo, mut hi) = if ok(guess)? {
            (used.saturating_sub(1), guess)
        } else {
            (guess, cap)
        };
        if ok(used)? {
            return Ok(used);
        }
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if ok(mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }

    /// eth_feeHistory over `count` blocks ending at `newest`.
    pub fn fee_history(&self, count: u64, newest: u64, percentiles: &[f64]) -> Result<FeeHistory> {
        let count = count.clamp(1, 1024).min(newest + 1);
        let oldest = newest + 1 - count;
        let mut h = FeeHistory {
            oldest,
            base_fees: Vec::new(),
            gas_used_ratio: Vec::new(),
            rewards: Vec::new(),
        };
        let mut last = None;
        for n in oldest..=newest {
            let Some(b) = self.block(n)? else { break };
            let base = b.header.base_fee_per_gas.unwrap_or_default();
            h.base_fees.push(u128::from(base));
            h.gas_used_ratio
                .push(b.header.gas_used as f64 / b.header.gas_limit.max(1) as f64);
            if !percentiles.is_empty() {
                let receipts = self.block_receipts(n)?.unwrap_or_default();
                let mut tips: Vec<(u128, u64)> = b
                    .txs
                    .iter()
                    .zip(&receipts)
                    .filter(|(t, _)| !t.tx.is_deposit())
                    .map(|(t, r)| {
                        let max = t.tx.max_fee_per_gas();
                        let tip = t.tx.max_priority_fee_per_gas().unwrap_or(max);
                        (
                            tip.min(max.saturating_sub(u128::from(base))),
                            r.receipt.gas_used,
                        )
                    })
                    .collect();
                tips.sort();
                let total: u64 = tips.iter().map(|t| t.1).sum();
                let row = percentiles
                    .iter()
                    .map(|p| {
                        let target = (total as f64 * p / 100.0) as u64;
                        let mut acc = 0u64;
                        for (tip, g) in &tips {
                            acc += g;
                            if acc >= target {
                                return *tip;
                            }
                        }
                        tips.last().map(|t| t.0).unwrap_or(0)
                    })
                    .collect();
                h.rewards.push(row);
            }
            last = Some(b.header);
        }
        if let Some(l) = last {
            h.base_fees.push(u128::from(next_base_fee(&l)));
        }
        Ok(h)
    }

    /// The suggested gas price: the next base fee plus the suggested tip.
    pub fn gas_price(&self) -> u128 {
        u128::from(next_base_fee(&self.head().header)) + genesis::SUGGESTED_TIP
    }

    /// Pooled transactions.
    pub fn pool_len(&self) -> usize {
        self.lock_pool().len()
    }

    /// Deposits waiting in the queue.
    pub fn queued_deposits(&self) -> Result<u64> {
        let r = self.db.begin_read()?;
        Ok(match open_ro(&r, DEPOSITS)? {
            None => 0,
            Some(t) => redb::ReadableTableMetadata::len(&t)?,
        })
    }

    /// The payload of block `n` (for DA).
    pub fn payload(&self, n: u64) -> Result<Option<BlockPayload>> {
        let r = self.db.begin_read()?;
        let Some(h) = read_header(&r, n)? else {
            return Ok(None);
        };
        let body = read_body(&r, n)?;
        Ok(Some(BlockPayload {
            number: n,
            timestamp: h.timestamp,
            txs: body.txs,
            hash: h.hash_slow(),
        }))
    }
}

/// [`Ledger::verify_state`] over a read snapshot of a ledger database.
fn verify_snapshot(r: &redb::ReadTransaction) -> Result<StateCheck> {
    let started = std::time::Instant::now();
    let meta = open_ro(r, META)?.ok_or_else(|| Error::Corrupt("no meta table".into()))?;
    let block = meta
        .get("head")?
        .map(|v| v.value())
        .ok_or_else(|| Error::Corrupt("no head block".into()))?;
    let header = read_header(r, block)?
        .ok_or_else(|| Error::Corrupt(format!("no header for the head block {block}")))?;
    // Storage roots from the slots, in key order: all of one account's slots are
    // adjacent, so one builder at a time.
    let mut storage_roots: BTreeMap<[u8; 32], B256> = BTreeMap::new();
    let mut slots = 0u64;
    if let Some(t) = open_ro(r, STORAGE)? {
        let mut current: Option<([u8; 32], alloy_trie::HashBuilder)> = None;
        for e in t.iter()? {
            let (k, v) = e?;
            let (ha, slot) = k.value();
            if current.as_ref().is_some_and(|(a, _)| *a != ha)
                && let Some((a, mut hb)) = current.take()
            {
                storage_roots.insert(a, hb.root());
            }
            let hb = &mut current
                .get_or_insert_with(|| (ha, alloy_trie::HashBuilder::default()))
                .1;
            hb.add_leaf(
                alloy_trie::Nibbles::unpack(slot),
                &alloy_rlp::encode(U256::from_be_bytes(v.value())),
            );
            slots += 1;
        }
        if let Some((a, mut hb)) = current {
            storage_roots.insert(a, hb.root());
        }
    }
    let contracts_with_storage = storage_roots.len() as u64;
    let mut storage_mismatches = Vec::new();
    let mut accounts = 0u64;
    let mut hb = alloy_trie::HashBuilder::default();
    if let Some(t) = open_ro(r, ACCOUNTS)? {
        for e in t.iter()? {
            let (k, v) = e?;
            let ha = k.value();
            let a = StoredAccount::decode(v.value())?;
            let rebuilt = storage_roots.remove(&ha).unwrap_or(EMPTY_ROOT_HASH);
            if rebuilt != a.storage_root {
                storage_mismatches.push(B256::from(ha));
            }
            // The stored storage root, so that a bad one shows above and not here too.
            hb.add_leaf(alloy_trie::Nibbles::unpack(ha), &a.trie_rlp());
            accounts += 1;
        }
    }
    // Slots of an account that does not exist.
    storage_mismatches.extend(storage_roots.into_keys().map(B256::from));
    Ok(StateCheck {
        block,
        header_root: header.state_root,
        rebuilt_root: hb.root(),
        accounts,
        contracts_with_storage,
        slots,
        storage_mismatches,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Check a ledger file that no node has open: redb's own integrity check (`true`: clean),
/// then the state of its last durable block against that block's root, as
/// [`Ledger::verify_state`]. Blocks sealed after it are in the block log and are executed
/// again when the node starts, so the check covers what is on disk, not the head a running
/// node had.
pub fn verify_file(path: &Path) -> Result<(bool, StateCheck)> {
    let mut db = Database::open(path)?;
    let clean = db.check_integrity()?;
    let check = verify_snapshot(&db.begin_read()?)?;
    Ok((clean, check))
}

fn read_header(r: &redb::ReadTransaction, n: u64) -> Result<Option<Header>> {
    let Some(t) = open_ro(r, HEADERS)? else {
        return Ok(None);
    };
    match t.get(n)? {
        None => Ok(None),
        Some(v) => Header::decode(&mut v.value())
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("header {n}: {e}"))),
    }
}

fn read_body(r: &redb::ReadTransaction, n: u64) -> Result<StoredBody> {
    let Some(t) = open_ro(r, BODIES)? else {
        return Ok(StoredBody::default());
    };
    match t.get(n)? {
        None => Ok(StoredBody::default()),
        Some(v) => {
            postcard::from_bytes(v.value()).map_err(|e| Error::Corrupt(format!("body {n}: {e}")))
        }
    }
}

fn read_receipts(r: &redb::ReadTransaction, n: u64) -> Result<Vec<StoredReceipt>> {
    let Some(t) = open_ro(r, RECEIPTS)? else {
        return Ok(Vec::new());
    };
    match t.get(n)? {
        None => Ok(Vec::new()),
        Some(v) => postcard::from_bytes(v.value())
            .map_err(|e| Error::Corrupt(format!("receipts {n}: {e}"))),
    }
}

/// Write a block's header, body, receipts and indexes; `involved` lists the (address, tx
/// index) pairs of the account history index. Returns the block hash.
fn store_block(
    w: &WriteTransaction,
    header: &Header,
    body: &StoredBody,
    receipts: &[StoredReceipt],
    involved: &[([u8; 20], u32)],
) -> Result<B256> {
    store_indexes(w, header.number, body, receipts, involved)?;
    store_header(w, header)
}

/// Write block `n`'s body, receipts, `tx_index`, `account_txs` and log indexes: the part of
/// [`store_block`] that does not need the header. Returns the header's transactions root,
/// receipts root and logs bloom, computed from the same body and receipts.
fn store_indexes(
    w: &WriteTransaction,
    n: u64,
    body: &StoredBody,
    receipts: &[StoredReceipt],
    involved: &[([u8; 20], u32)],
) -> Result<(B256, B256, Bloom)> {
    let envelopes: Vec<OpReceiptEnvelope> = receipts.iter().map(receipt_envelope).collect();
    let receipts_root =
        alloy_trie::root::ordered_trie_root_with_encoder(&envelopes, |r, buf| r.encode_2718(buf));
    let transactions_root =
        alloy_trie::root::ordered_trie_root_with_encoder(&body.txs, |t, buf| {
            buf.extend_from_slice(t)
        });
    let mut logs_bloom = Bloom::ZERO;
    for r in receipts {
        logs_bloom |= receipt_bloom(r);
    }
    let body_bytes = postcard::to_allocvec(body).map_err(|e| Error::Internal(e.to_string()))?;
    w.open_table(BODIES)?.insert(n, body_bytes.as_slice())?;
    let rc_bytes =
        postcard::to_allocvec(&receipts.to_vec()).map_err(|e| Error::Internal(e.to_string()))?;
    w.open_table(RECEIPTS)?.insert(n, rc_bytes.as_slice())?;
    let mut ix = w.open_table(TX_INDEX)?;
    for (i, raw) in body.txs.iter().enumerate() {
        ix.insert(keccak256(raw).0, (n, i as u32))?;
    }
    let mut at = w.open_table(ACCOUNT_TXS)?;
    for (a, i) in involved {
        at.insert((*a, n, *i), ())?;
    }
    let mut la = w.open_table(LOG_ADDRESSES)?;
    let mut lt = w.open_table(LOG_TOPICS)?;
    for r in receipts {
        for l in &r.logs {
            la.insert((l.address, n), ())?;
            for t in &l.topics {
                lt.insert((*t, n), ())?;
            }
        }
    }
    Ok((transactions_root, receipts_root, logs_bloom))
}

/// Write a block's header and make it the head: the part of [`store_block`] that needs the
/// header. Returns the block hash.
fn store_header(w: &WriteTransaction, header: &Header) -> Result<B256> {
    let hash = header.hash_slow();
    let n = header.number;
    w.open_table(HEADERS)?
        .insert(n, alloy_rlp::encode(header).as_slice())?;
    w.open_table(CANONICAL)?.insert(n, hash.0)?;
    w.open_table(BLOCK_NUMBERS)?.insert(hash.0, n)?;
    w.open_table(META)?.insert("head", n)?;
    Ok(hash)
}

/// Write held trie nodes into the `trie` table (in key order, as the map keeps them).
fn write_nodes_to(w: &WriteTransaction, nodes: &NodeOverlay) -> Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    let mut t = w.open_table(TRIE)?;
    for (k, v) in nodes {
        match v {
            Some(v) => t.insert(k.as_slice(), v.as_slice())?,
            None => t.remove(k.as_slice())?,
        };
    }
    Ok(())
}

/// Apply a block's account changes to the flat state and the tries; returns the state root
/// and the L2ToL1MessagePasser's storage root. With `history`, the prior value of every
/// changed account and slot goes into the change sets under `block` (genesis has none).
/// `before` is a snapshot of the state the block started from, through which the account
/// trie's walk may use a second thread ([`TrieUpdate::set_split`]).
fn apply_state(
    w: &WriteTransaction,
    changes: BTreeMap<Address, Change>,
    block: u64,
    history: bool,
    stage: &mut TrieStage<'_>,
    before: Option<&StateView>,
) -> Result<(B256, B256)> {
    let mut accounts = w.open_table(ACCOUNTS)?;
    let mut storage = w.open_table(STORAGE)?;
    let mut code = w.open_table(CODE)?;
    let mut tries = w.open_table(TRIE)?;
    let mut acc_hist = w.open_table(ACCOUNT_HISTORY)?;
    let mut slot_hist = w.open_table(STORAGE_HISTORY)?;
    let mut leaves: Vec<KeyChange> = Vec::new();
    // Account writes wait until the account trie is updated: where the trie has no stored
    // leaf it reads the leaf from `accounts`, which must still hold the state before the
    // block.
    let mut account_writes: Vec<(B256, Option<StoredAccount>)> = Vec::new();
    // The keys this block's change sets hold, for proofs at older blocks.
    let mut listed: Vec<([u8; 32], Vec<[u8; 32]>)> = Vec::new();
    // In hashed-address order: the account table and the trie are keyed by it, so the
    // B-tree inserts and the trie walks below go forward through their keys.
    let mut changes: Vec<(B256, Change)> = changes
        .into_iter()
        .map(|(a, c)| (keccak256(a), c))
        .collect();
    changes.sort_unstable_by_key(|c| c.0);
    for (ha, ch) in changes {
        let old = match accounts.get(ha.0)? {
            None => None,
            Some(v) => Some(StoredAccount::decode(v.value())?),
        };
        // Slots whose prior values went into the change set.
        let mut slots_listed: Vec<[u8; 32]> = Vec::new();
        let record_account = |hist: &mut redb::Table<([u8; 32], u64), &[u8]>,
                              new: Option<&StoredAccount>,
                              slots: Vec<[u8; 32]>,
                              listed: &mut Vec<([u8; 32], Vec<[u8; 32]>)>|
         -> Result<()> {
            if !history {
                return Ok(());
            }
            let changed = old.as_ref() != new;
            if changed {
                match &old {
                    Some(o) => hist.insert((ha.0, block), o.encode().as_slice())?,
                    None => hist.insert((ha.0, block), [].as_slice())?,
                };
            }
            if changed || !slots.is_empty() {
                listed.push((ha.0, slots));
            }
            Ok(())
        };
        let mut storage_root = old.map(|a| a.storage_root).unwrap_or(EMPTY_ROOT_HASH);
        // Slots whose prior value the wipe below already recorded.
        let mut wiped = std::collections::HashSet::new();
        if ch.wipe || ch.deleted {
            if storage_root != EMPTY_ROOT_HASH {
                if history {
                    for e in storage.range((ha.0, [0u8; 32])..=(ha.0, [0xffu8; 32]))? {
                        let (k, v) = e?;
                        let hs = k.value().1;
                        slot_hist.insert((ha.0, hs, block), v.value())?;
                        wiped.insert(hs);
                        slots_listed.push(hs);
                    }
                }
                storage.retain_in((ha.0, [0u8; 32])..=(ha.0, [0xffu8; 32]), |_, _| false)?;
                let lo = Owner::Storage(ha).prefix();
                let hi = prefix_end(&lo);
                tries.retain_in(lo.as_slice()..hi.as_slice(), |_, _| false)?;
                if stage.held.is_some() {
                    stage.wiped.push(lo);
                }
            }
            storage_root = EMPTY_ROOT_HASH;
        }
        let Some(info) = ch.info.filter(|_| !ch.deleted) else {
            if old.is_some() {
                record_account(&mut acc_hist, None, slots_listed, &mut listed)?;
                account_writes.push((ha, None));
                leaves.push(KeyChange {
                    key: ha,
                    value: None,
                    existed: true,
                });
            }
            continue;
        };
        if !ch.storage.is_empty() {
            let writes = {
                let tables = WriteTables {
                    trie: &tries,
                    accounts: &accounts,
                };
                let src = Layered {
                    table: &tables,
                    cache: stage.cache,
                    held: stage.held,
                    wiped: &stage.wiped,
                };
                let mut up = TrieUpdate::new(&src, Owner::Storage(ha));
                let t = TrieClock::start();
                let hashed: Vec<B256> = ch
                    .storage
                    .keys()
                    .map(|slot| keccak256(slot.to_be_bytes::<32>()))
                    .collect();
                for (hs, val) in hashed.iter().zip(ch.storage.values()) {
                    let leaf = (!val.is_zero()).then(|| alloy_rlp::encode(val));
                    up.set(hs, leaf.as_deref())?;
                }
                t.stop(&mut stage.times);
                for (hs, val) in hashed.iter().zip(ch.storage.values()) {
                    // redb hands back the value it replaced: the change set costs no read.
                    let prior = if val.is_zero() {
                        storage.remove((ha.0, hs.0))?.map(|g| g.value())
                    } else {
                        storage
                            .insert((ha.0, hs.0), val.to_be_bytes::<32>())?
                            .map(|g| g.value())
                    };
                    let prior = prior.unwrap_or([0u8; 32]);
                    if history && prior != val.to_be_bytes::<32>() && !wiped.contains(&hs.0) {
                        slot_hist.insert((ha.0, hs.0, block), prior)?;
                        slots_listed.push(hs.0);
                    }
                }
                let t = TrieClock::start();
                storage_root = up.root()?;
                let writes = up.into_writes();
                t.stop(&mut stage.times);
                writes
            };
            let t = TrieClock::start();
            stage.write(&mut tries, writes)?;
            t.stop(&mut stage.times);
        }
        if let Some(c) = &ch.code {
            code.insert(info.code_hash.0, c.as_ref())?;
        }
        let sa = StoredAccount {
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
            storage_root,
        };
        record_account(&mut acc_hist, Some(&sa), slots_listed, &mut listed)?;
        // The trie leaf is made of exactly these fields: unchanged, the path needs no walk.
        if old.as_ref() != Some(&sa) {
            leaves.push(KeyChange {
                key: ha,
                value: Some(sa.trie_rlp()),
                existed: old.is_some(),
            });
            account_writes.push((ha, Some(sa)));
        }
    }
    let t = TrieClock::start();
    let (root, writes, helper_cpu) = {
        let tables = WriteTables {
            trie: &tries,
            accounts: &accounts,
        };
        let src = Layered {
            table: &tables,
            cache: stage.cache,
            held: stage.held,
            wiped: &stage.wiped,
        };
        let mut up = TrieUpdate::new(&src, Owner::Accounts);
        // The account trie's walk can use the second core: a snapshot of the state before
        // this block sees the same trie and accounts as this transaction does here, since
        // account writes wait until after the trie (above) and node writes are held.
        let split = match before {
            Some(view) => up.set_split(
                &Layered {
                    table: view,
                    cache: stage.cache,
                    held: stage.held,
                    wiped: &stage.wiped,
                },
                &leaves,
            )?,
            None => false,
        };
        if !split {
            for u in &leaves {
                up.set_known(&u.key, u.value.as_deref(), u.existed)?;
            }
        }
        let root = up.root()?;
        let helper_cpu = up.helper_cpu();
        (root, up.into_writes(), helper_cpu)
    };
    stage.write(&mut tries, writes)?;
    t.stop(&mut stage.times);
    stage.times.cpu += helper_cpu;
    for (ha, a) in account_writes {
        match a {
            Some(a) => accounts.insert(ha.0, a.encode().as_slice())?,
            None => accounts.remove(ha.0)?,
        };
    }
    if history {
        let list = postcard::to_allocvec(&listed)
            .map_err(|e| Error::Internal(format!("encoding a block's change list: {e}")))?;
        w.open_table(BLOCK_CHANGES)?
            .insert(block, list.as_slice())?;
    }
    let passer = match accounts.get(keccak256(genesis::L2_TO_L1_MESSAGE_PASSER).0)? {
        None => EMPTY_ROOT_HASH,
        Some(v) => StoredAccount::decode(v.value())?.storage_root,
    };
    Ok((root, passer))
}
