//! commons-ledger: the OP-style L2 executed by revm — blocks, state in redb, the transaction
//! pool, the sequencer, DA batches, derivation and the Ethereum JSON-RPC methods. The system
//! contracts' Solidity lives in `contracts/`.
//!
//! Not built yet: the ledger issue fills this crate.
