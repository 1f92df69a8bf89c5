//! The redb store of Commons: the source of truth for blobs, datanets, contributions, rows,
//! versions, edits, quotas, nonces, console accounts and the change sequence.
//!
//! Every write goes through [`Store::write`], which runs it inside a group commit: one redb
//! write transaction and one fsync for every write waiting at that moment, and each write is
//! acknowledged only after that commit. Reads take a [`Snapshot`], one read transaction, so a
//! request sees one consistent state. This crate knows nothing of HTTP, signatures or the
//! ledger: callers verify who acts and hand in the evidence ([`model::SignedBy`]).
//!
//! ```no_run
//! # fn main() -> commons_storage::Result<()> {
//! let store = commons_storage::Store::create_fresh("db.redb".as_ref(), Default::default())?;
//! let snap = store.snapshot()?;
//! println!("{} datanets", snap.stats()?.datanets);
//! # Ok(()) }
//! ```

pub mod anchors;
pub mod error;
pub mod merkle;
pub mod model;
pub mod parse;
pub mod serving;
mod store;
pub mod tables;
mod writer;

pub use error::{Error, Result};
pub use store::{
    ContributionFilter, Diff, EditRequest, Limits, NewContribution, NewDatanet, ReviewOutcome,
    ReviewRequest, RolesRequest, RowPage, Snapshot, Stats, Store, TakeDownRequest, VerifyReport,
    valid_slug,
};
pub use writer::{Tables, WriteCtx};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 3;

/// Size of one blob chunk: large files are split so no single value gets huge.
pub const BLOB_CHUNK: usize = 1 << 20;

/// Encode a record in the storage format (postcard).
pub fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serialising our own plain structs into a Vec cannot fail.
    postcard::to_allocvec(v).unwrap_or_default()
}

/// Decode a record in the storage format.
pub fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| Error::Corrupt(format!("undecodable record: {e}")))
}

/// Wall-clock time, unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A 32-byte big-endian unsigned integer in decimal.
pub fn nonce_to_decimal(n: &[u8; 32]) -> String {
    let mut digits = Vec::new();
    let mut num = n.to_vec();
    while num.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}
