//! commons-query: full-text search (tantivy) and SQL (DataFusion) over the store, and the
//! PostgreSQL wire-protocol server.
//!
//! Everything here is derived from or reads `commons-storage`: the search index follows the
//! storage change sequence, stores the last sequence it absorbed in its commit payload, catches
//! up on start, and is rebuilt when its directory is deleted. SQL reads redb snapshots through
//! table providers (one module per table) and never writes.

pub mod error;
pub mod pg;
pub mod search;
pub mod sql;

pub use error::{Error, Result};
