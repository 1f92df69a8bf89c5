//! The ledger's redb tables and key encodings (its on-disk format), and the state as revm
//! reads it.
//!
//! The ledger has its own redb file (`DATA_DIR/ledger.redb`): the sequencer is its only
//! writer, one write transaction per sealed block, so block production never waits on the
//! datanet store's group commits. Pending transactions are journaled in a log of their own
//! (`ledger.pool.log`, see [`crate::wal`]), so `eth_sendRawTransaction` never waits on a
//! block's commit.
//!
//! **Durability.** A block's transaction commits without an fsync; the block is durable
//! once its payload is fsynced in the block log (`ledger.wal`, see [`crate::wal`]). Every
//! [`crate::chain::CHECKPOINT_EVERY`] (and with any other durable write, and on close) redb
//! commits durably and the log is emptied. Trie nodes written since the last checkpoint are
//! held in memory and reach the `trie` table with the next durable commit, so the table is
//! always the trie of the durable state; after a crash, the logged blocks are executed again.
//!
//! Everything here is the source of truth except [`LOG_ADDRESSES`], [`LOG_TOPICS`] and
//! [`ACCOUNT_TXS`], which are indexes over [`BODIES`] and [`RECEIPTS`].
//!
//! **History.** `accounts` and `storage` hold the newest state. Each block also writes, in
//! its own transaction, the value every key had before the block changed it (a change set in
//! [`ACCOUNT_HISTORY`] and [`STORAGE_HISTORY`]). The value of a key after block `n` is then
//! the first change-set entry of that key from a block after `n` (one range lookup), or the
//! newest value when no later block changed it. The trie keeps the newest nodes only; a
//! proof at an older block puts back the values of every key changed since (listed per
//! block in [`BLOCK_CHANGES`]) in a trie update over the newest nodes, checks that it
//! reaches that block's state root, and walks the update.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | u64 (`head`, `l1_number`, `l1_seq`, `deposit_next`, `genesis_time`, `history_from`: the first block with change sets, `account_txs_complete`: set once `account_txs` covers every block, `account_txs_backfill`: the next block a running backfill indexes) |
//! | `accounts` | keccak(address) | nonce u64 BE ‖ balance 32 ‖ code hash 32 ‖ storage root 32 |
//! | `storage` | (keccak(address), keccak(slot)) | value, 32 bytes BE (zero values absent) |
//! | `code` | code hash | bytecode |
//! | `trie` | owner ‖ nibble path (see [`crate::trie`]) | trie node (the account trie's leaves are not stored: they are read from `accounts`) |
//! | `headers` | number | RLP header |
//! | `canonical` | number | block hash |
//! | `block_numbers` | block hash | number |
//! | `bodies` | number | postcard [`StoredBody`] |
//! | `receipts` | number | postcard `Vec<StoredReceipt>` |
//! | `tx_index` | tx hash | (number, index) |
//! | `log_addresses` | (address, number) | () — blocks with logs of an address |
//! | `log_topics` | (topic, number) | () — blocks with logs carrying a topic |
//! | `account_history` | (keccak(address), number) | the account before block `number` changed it: 104-byte record, or empty when it did not exist |
//! | `storage_history` | (keccak(address), keccak(slot), number) | the slot's value before block `number` changed it (zero: absent) |
//! | `block_changes` | number | postcard list of (keccak(address), [keccak(slot)]) whose prior values the block's change sets hold |
//! | `account_txs` | (address, number, index) | () — transactions an address sent, received or created |
//! | `pool` | tx hash | raw signed transaction: only in ledgers of older versions, moved to the pool journal on open |
//! | `deposits` | queue number | postcard [`crate::DepositRequest`] (dev L1 queue) |
//! | `supply` | name | U256 BE (`minted` by deposits) |

use alloy_primitives::{Address, B256, U256, keccak256};
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition};
use revm::bytecode::Bytecode;
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::state::AccountInfo;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::trie::NodeSource;

/// Small named counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Accounts by hashed address.
pub const ACCOUNTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("accounts");
/// Storage slots by (hashed address, hashed slot).
pub const STORAGE: TableDefinition<([u8; 32], [u8; 32]), [u8; 32]> =
    TableDefinition::new("storage");
/// Contract code by hash.
pub const CODE: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("code");
/// Trie nodes by owner and path.
pub const TRIE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("trie");
/// RLP headers by number.
pub const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
/// Block hash by number.
pub const CANONICAL: TableDefinition<u64, [u8; 32]> = TableDefinition::new("canonical");
/// Block number by hash.
pub const BLOCK_NUMBERS: TableDefinition<[u8; 32], u64> = TableDefinition::new("block_numbers");
/// Transactions of a block.
pub const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
/// Receipts of a block.
pub const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
/// Where a transaction is: (block number, index).
pub const TX_INDEX: TableDefinition<[u8; 32], (u64, u32)> = TableDefinition::new("tx_index");
/// Blocks holding logs of an address.
pub const LOG_ADDRESSES: TableDefinition<([u8; 20], u64), ()> =
    TableDefinition::new("log_addresses");
/// Blocks holding logs with a topic.
pub const LOG_TOPICS: TableDefinition<([u8; 32], u64), ()> = TableDefinition::new("log_topics");
/// The prior value of each account a block changed.
pub const ACCOUNT_HISTORY: TableDefinition<([u8; 32], u64), &[u8]> =
    TableDefinition::new("account_history");
/// The prior value of each storage slot a block changed.
pub const STORAGE_HISTORY: TableDefinition<([u8; 32], [u8; 32], u64), [u8; 32]> =
    TableDefinition::new("storage_history");
/// Per block, the keys its change sets hold: postcard `Vec<(keccak(address), Vec<keccak(slot)>)>`.
pub const BLOCK_CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("block_changes");
/// Transactions by the addresses they involve: sender, recipient, created contract.
pub const ACCOUNT_TXS: TableDefinition<([u8; 20], u64, u32), ()> =
    TableDefinition::new("account_txs");
/// Pending transactions.
pub const POOL: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("pool");
/// The dev L1 deposit queue.
pub const DEPOSITS: TableDefinition<u64, &[u8]> = TableDefinition::new("deposits");
/// Supply counters.
pub const SUPPLY: TableDefinition<&str, [u8; 32]> = TableDefinition::new("supply");

/// An account as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredAccount {
    /// Nonce.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// keccak of the code (`KECCAK_EMPTY` for none).
    pub code_hash: B256,
    /// Root of the storage trie.
    pub storage_root: B256,
}

impl StoredAccount {
    /// The fixed 104-byte encoding.
    pub fn encode(&self) -> [u8; 104] {
        let mut out = [0u8; 104];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..72].copy_from_slice(self.code_hash.as_slice());
        out[72..].copy_from_slice(self.storage_root.as_slice());
        out
    }

    /// Read the 104-byte encoding.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != 104 {
            return Err(Error::Corrupt(format!(
                "account record of {} bytes",
                b.len()
            )));
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&b[..8]);
        Ok(StoredAccount {
            nonce: u64::from_be_bytes(nonce),
            balance: U256::from_be_slice(&b[8..40]),
            code_hash: B256::from_slice(&b[40..72]),
            storage_root: B256::from_slice(&b[72..]),
        })
    }

    /// The account's leaf in the state trie.
    pub fn trie_rlp(&self) -> Vec<u8> {
        alloy_rlp::encode(alloy_trie::TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root: self.storage_root,
            code_hash: self.code_hash,
        })
    }
}

/// A block's transactions as stored: EIP-2718 bytes and recovered senders.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredBody {
    /// Each transaction, EIP-2718 encoded.
    pub txs: Vec<Vec<u8>>,
    /// The sender of each.
    pub senders: Vec<[u8; 20]>,
}

/// A log as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredLog {
    /// Emitting contract.
    pub address: [u8; 20],
    /// Topics.
    pub topics: Vec<[u8; 32]>,
    /// Data.
    pub data: Vec<u8>,
}

/// A receipt as stored, with what RPC needs beside the consensus fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredReceipt {
    /// EIP-2718 type.
    pub tx_type: u8,
    /// Success.
    pub status: bool,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Gas used by this transaction.
    pub gas_used: u64,
    /// Price per gas paid.
    pub effective_gas_price: u128,
    /// Logs.
    pub logs: Vec<StoredLog>,
    /// Address of a created contract.
    pub contract_address: Option<[u8; 20]>,
    /// Deposits: the sender's nonce before the deposit (post-Regolith receipts).
    pub deposit_nonce: Option<u64>,
}

/// Open a table of a read transaction; a table never written yet reads as absent.
pub fn open_ro<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The storage table as read.
type StorageTable = ReadOnlyTable<([u8; 32], [u8; 32]), [u8; 32]>;

/// The account change sets as read.
type AccountHistory = ReadOnlyTable<([u8; 32], u64), &'static [u8]>;
/// The storage change sets as read.
type StorageHistory = ReadOnlyTable<([u8; 32], [u8; 32], u64), [u8; 32]>;

/// The state after one block (the newest unless [`StateView::at`] says otherwise), read from
/// one read transaction, as revm reads it.
pub struct StateView {
    accounts: Option<ReadOnlyTable<[u8; 32], &'static [u8]>>,
    storage: Option<StorageTable>,
    code: Option<ReadOnlyTable<[u8; 32], &'static [u8]>>,
    canonical: Option<ReadOnlyTable<u64, [u8; 32]>>,
    trie: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
    /// `Some(n)`: answer as of block `n`, older than the newest, through the change sets.
    at: Option<u64>,
    account_history: Option<AccountHistory>,
    storage_history: Option<StorageHistory>,
}

impl std::fmt::Debug for StateView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateView")
    }
}

/// The error revm sees from [`StateView`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DbFault(pub String);

impl DBErrorMarker for DbFault {}

impl From<Error> for DbFault {
    fn from(e: Error) -> Self {
        DbFault(e.to_string())
    }
}

impl StateView {
    /// Open the state tables of `tx`.
    pub fn new(tx: &ReadTransaction) -> Result<Self> {
        Ok(StateView {
            storage: open_ro(tx, STORAGE)?,
            code: open_ro(tx, CODE)?,
            canonical: open_ro(tx, CANONICAL)?,
            trie: open_ro(tx, TRIE)?,
            ..Self::accounts_only(tx)?
        })
    }

    /// Only the accounts of `tx` (nonces, balances, code hashes): what admitting a
    /// transaction to the pool reads. Opening a table costs a lookup in redb's table tree;
    /// at thousands of submissions a second the other four were a few percent of the
    /// RPC side's CPU. Slots and code read as empty through this view.
    pub fn accounts_only(tx: &ReadTransaction) -> Result<Self> {
        Ok(StateView {
            accounts: open_ro(tx, ACCOUNTS)?,
            storage: None,
            code: None,
            canonical: None,
            trie: None,
            at: None,
            account_history: None,
            storage_history: None,
        })
    }

    /// The state as it was after block `n`, which must be older than the newest block of
    /// `tx` (the caller checks; the newest state needs no change sets).
    pub fn at(tx: &ReadTransaction, n: u64) -> Result<Self> {
        let mut v = Self::new(tx)?;
        v.at = Some(n);
        v.account_history = open_ro(tx, ACCOUNT_HISTORY)?;
        v.storage_history = open_ro(tx, STORAGE_HISTORY)?;
        Ok(v)
    }

    /// The block this view answers for, when older than the newest.
    pub fn block(&self) -> Option<u64> {
        self.at
    }

    /// The stored account at `address`.
    pub fn account(&self, address: &Address) -> Result<Option<StoredAccount>> {
        self.account_hashed(&keccak256(address).0)
    }

    /// The stored account whose hashed address is `ha`.
    pub fn account_hashed(&self, ha: &[u8; 32]) -> Result<Option<StoredAccount>> {
        let ha = *ha;
        if let (Some(n), Some(h)) = (self.at, &self.account_history)
            && let Some(e) = h.range((ha, n.saturating_add(1))..=(ha, u64::MAX))?.next()
        {
            let (_, v) = e?;
            return match v.value() {
                [] => Ok(None),
                b => StoredAccount::decode(b).map(Some),
            };
        }
        let Some(t) = &self.accounts else {
            return Ok(None);
        };
        match t.get(ha)? {
            None => Ok(None),
            Some(v) => StoredAccount::decode(v.value()).map(Some),
        }
    }

    /// A storage slot.
    pub fn slot(&self, address: &Address, slot: &U256) -> Result<U256> {
        self.slot_hashed(
            &keccak256(address).0,
            &keccak256(slot.to_be_bytes::<32>()).0,
        )
    }

    /// A storage slot by hashed address and hashed slot.
    pub fn slot_hashed(&self, ha: &[u8; 32], hs: &[u8; 32]) -> Result<U256> {
        let (ha, hs) = (*ha, *hs);
        if let (Some(n), Some(h)) = (self.at, &self.storage_history)
            && let Some(e) = h
                .range((ha, hs, n.saturating_add(1))..=(ha, hs, u64::MAX))?
                .next()
        {
            return Ok(U256::from_be_bytes(e?.1.value()));
        }
        let Some(t) = &self.storage else {
            return Ok(U256::ZERO);
        };
        Ok(t.get((ha, hs))?
            .map(|v| U256::from_be_bytes(v.value()))
            .unwrap_or_default())
    }

    /// Code by hash.
    pub fn code(&self, hash: &B256) -> Result<Option<Vec<u8>>> {
        let Some(t) = &self.code else {
            return Ok(None);
        };
        Ok(t.get(hash.0)?.map(|v| v.value().to_vec()))
    }

    /// Sum of every balance (the supply check; reads the whole account table).
    pub fn total_balance(&self) -> Result<U256> {
        let Some(t) = &self.accounts else {
            return Ok(U256::ZERO);
        };
        let mut sum = U256::ZERO;
        for r in t.iter()? {
            let (_, v) = r?;
            sum += StoredAccount::decode(v.value())?.balance;
        }
        Ok(sum)
    }
}

impl NodeSource for StateView {
    fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(t) = &self.trie else {
            return Ok(None);
        };
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    /// From the newest accounts, as the trie is the newest (even in a view at an older block).
    fn account_leaf(&self, path: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        match &self.accounts {
            None => Ok(None),
            Some(t) => account_leaf(t, path),
        }
    }
}

/// The account trie's leaf under the nibble prefix `path`, from the `accounts` table: (the
/// rest of the key's nibbles, the leaf value). Where the trie has a leaf, exactly one
/// account lies under its path.
pub fn account_leaf(
    accounts: &impl ReadableTable<[u8; 32], &'static [u8]>,
    path: &[u8],
) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let (lo, hi) = crate::trie::prefix_range(path);
    let Some(e) = accounts.range(lo..=hi)?.next() else {
        return Ok(None);
    };
    let (k, v) = e?;
    let key = crate::trie::nibbles(&B256::from(k.value()));
    let rest = key
        .get(path.len()..)
        .ok_or_else(|| Error::Corrupt("an account trie path longer than a key".into()))?;
    Ok(Some((
        rest.to_vec(),
        StoredAccount::decode(v.value())?.trie_rlp(),
    )))
}

impl NodeSource for redb::Table<'_, &'static [u8], &'static [u8]> {
    fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get(key)?.map(|v| v.value().to_vec()))
    }
}

impl DatabaseRef for StateView {
    type Error = DbFault;

    fn basic_ref(&self, address: Address) -> std::result::Result<Option<AccountInfo>, DbFault> {
        Ok(self.account(&address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            account_id: None,
            code: None,
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> std::result::Result<Bytecode, DbFault> {
        match self.code(&code_hash)? {
            Some(c) => Ok(Bytecode::new_raw(c.into())),
            None => Ok(Bytecode::default()),
        }
    }

    fn storage_ref(&self, address: Address, index: U256) -> std::result::Result<U256, DbFault> {
        Ok(self.slot(&address, &index)?)
    }

    fn block_hash_ref(&self, number: u64) -> std::result::Result<B256, DbFault> {
        let Some(t) = &self.canonical else {
            return Ok(B256::ZERO);
        };
        Ok(t.get(number)
            .map_err(|e| DbFault(e.to_string()))?
            .map(|v| B256::from(v.value()))
            .unwrap_or_default())
    }
}
