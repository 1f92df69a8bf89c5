//! commons-ledger: the OP-style L2 of Commons executed by revm (op-revm) — genesis with the
//! OPEN allocation, state in redb with an incrementally updated Merkle-Patricia trie, blocks,
//! receipts and their indexes, the transaction pool, the sequencer, DA batches and
//! derivation. The system contracts' Solidity lives in `contracts/`.
//!
//! This crate knows nothing of HTTP or JSON-RPC wire shapes: it answers typed queries
//! ([`Ledger`]) and the binary's edge turns them into JSON-RPC.

pub mod db;
pub mod error;
pub mod trie;

pub use error::{Error, Result, TxError};
pub mod chain;
pub mod exec;
pub mod genesis;
pub mod pool;

pub use chain::{Ledger, LedgerConfig};
pub mod sequencer;

#[cfg(test)]
mod tests;

// The binary's JSON-RPC edge needs these types; re-exported so it shares this crate's pins.
pub use alloy_consensus;
pub use alloy_eips;
pub use op_alloy_consensus;
pub mod da;
pub mod system;
pub mod wal;
pub mod withdraw;

#[cfg(test)]
mod system_tests;
