//! commons-query: full-text search (tantivy) and SQL (DataFusion) over the store, and the
//! PostgreSQL wire-protocol server. Its indexes are derived state: they follow the storage
//! change sequence, record the last sequence they absorbed, and are rebuilt when deleted.
//!
//! Not built yet: the query issue fills this crate.
