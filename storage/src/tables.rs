//! redb table definitions and key encodings: the on-disk format of the store.
//!
//! Values named `&[u8]` hold postcard-encoded records from [`crate::model`]. Every table is
//! created by migration step 1; later steps add or transform tables and bump
//! [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).

use redb::TableDefinition;

/// Small named values: `schema_version`, the change sequence `seq`, id counters and totals.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Change log: sequence number → [`crate::model::Change`]. Derived indexes follow it.
pub const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
/// Blob metadata by blake3 hash → [`crate::model::BlobMeta`].
pub const BLOBS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("blobs");
/// Blob content in chunks of [`crate::BLOB_CHUNK`] bytes: (hash, chunk index) → bytes.
pub const BLOB_CHUNKS: TableDefinition<([u8; 32], u32), &[u8]> =
    TableDefinition::new("blob_chunks");
/// Datanets by id → [`crate::model::Datanet`].
pub const DATANETS: TableDefinition<u64, &[u8]> = TableDefinition::new("datanets");
/// Slug → datanet id.
pub const DATANET_SLUGS: TableDefinition<&str, u64> = TableDefinition::new("datanet_slugs");
/// (datanet id, edit number) → [`crate::model::Edit`].
pub const EDITS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("edits");
/// Contributions by id → [`crate::model::Contribution`].
pub const CONTRIBUTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("contributions");
/// (datanet id, contribution id) → status code (see [`crate::model::Status::code`]).
pub const CONTRIBUTIONS_BY_DATANET: TableDefinition<(u64, u64), u8> =
    TableDefinition::new("contributions_by_datanet");
/// (contributor address, contribution id) → datanet id.
pub const CONTRIBUTIONS_BY_CONTRIBUTOR: TableDefinition<([u8; 20], u64), u64> =
    TableDefinition::new("contributions_by_contributor");
/// Per-contributor totals → [`crate::model::ContributorStats`].
pub const CONTRIBUTORS: TableDefinition<[u8; 20], &[u8]> = TableDefinition::new("contributors");
/// Rows by global id → [`crate::model::Row`]. A contribution's rows have consecutive ids.
pub const ROWS: TableDefinition<u64, &[u8]> = TableDefinition::new("rows");
/// Version membership: (datanet id, row id) → (version added, version removed or
/// `u64::MAX`, row hash). A row is in version `v` when `added <= v < removed`.
pub const MEMBERSHIP: TableDefinition<(u64, u64), (u64, u64, [u8; 32])> =
    TableDefinition::new("membership");
/// (datanet id, version number) → [`crate::model::Version`].
pub const VERSIONS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("versions");
/// Daily quota use: (key, UTC day number) → (bytes, files). Keys are `c:0x<addr>` for a
/// contributor and `d:<datanet id>` for a datanet.
pub const QUOTAS: TableDefinition<(&str, u64), (u64, u64)> = TableDefinition::new("quotas");
/// Used signature nonces: (signer, nonce as 32 big-endian bytes) → unix ms when used.
pub const NONCES: TableDefinition<([u8; 20], [u8; 32]), u64> = TableDefinition::new("nonces");
/// Custodial console users by name → [`crate::model::User`].
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Console sessions: blake3 of the session token → [`crate::model::Session`].
pub const SESSIONS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("sessions");

/// Schema 2: adapter name → `AdapterRecord`.
pub const ADAPTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("adapters");
/// Schema 2: blake3(API key) → `ApiKeyRecord`.
pub const API_KEYS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("api_keys");
/// (datanet id, version number) → [`crate::anchors::Anchor`]: what the node sent to the
/// ledger for it. Version 0 stands for the datanet's registration in DatanetRegistry.
pub const ANCHORS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("ledger_anchors");

/// Create every table of schema 1 inside `txn` (opening a table creates it).
pub fn create_all(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(CHANGES)?;
    txn.open_table(BLOBS)?;
    txn.open_table(BLOB_CHUNKS)?;
    txn.open_table(DATANETS)?;
    txn.open_table(DATANET_SLUGS)?;
    txn.open_table(EDITS)?;
    txn.open_table(CONTRIBUTIONS)?;
    txn.open_table(CONTRIBUTIONS_BY_DATANET)?;
    txn.open_table(CONTRIBUTIONS_BY_CONTRIBUTOR)?;
    txn.open_table(CONTRIBUTORS)?;
    txn.open_table(ROWS)?;
    txn.open_table(MEMBERSHIP)?;
    txn.open_table(VERSIONS)?;
    txn.open_table(QUOTAS)?;
    txn.open_table(NONCES)?;
    txn.open_table(USERS)?;
    txn.open_table(SESSIONS)?;
    Ok(())
}

/// Create the tables schema 2 adds.
pub fn create_v2(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(ADAPTERS)?;
    txn.open_table(API_KEYS)?;
    Ok(())
}

/// Create the tables schema 3 adds.
pub fn create_v3(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(ANCHORS)?;
    Ok(())
}

/// Keys in [`META`].
pub mod meta {
    /// Schema version of the database.
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// Last change sequence number written.
    pub const SEQ: &str = "seq";
    /// Next datanet id.
    pub const NEXT_DATANET: &str = "next_datanet";
    /// Next contribution id.
    pub const NEXT_CONTRIBUTION: &str = "next_contribution";
    /// Next row id.
    pub const NEXT_ROW: &str = "next_row";
    /// Number of versions over all datanets.
    pub const VERSIONS: &str = "count_versions";
    /// Number of distinct blobs.
    pub const BLOBS: &str = "count_blobs";
    /// Bytes in distinct blobs.
    pub const BLOB_BYTES: &str = "count_blob_bytes";
}
