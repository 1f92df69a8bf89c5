//! The storage error type: every way a read or a write can fail, each with a stable meaning.

use crate::parse::ParseError;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// redb reported an error (I/O, corruption, a broken transaction).
    #[error("database error: {0}")]
    Db(#[from] Box<redb::Error>),
    /// The group commit that carried this write failed; the write was not applied.
    #[error("commit failed, nothing was written: {0}")]
    Commit(String),
    /// A stored value does not decode, or a blob does not match its hash.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by another schema version than this binary's.
    #[error("database schema version {found} does not match this binary's {expected}")]
    Schema {
        /// Version stamped in the database (0 when none).
        found: u64,
        /// Version this binary reads and writes.
        expected: u64,
    },
    /// The thing asked for does not exist.
    #[error("{what} {key} not found")]
    NotFound {
        /// Kind of thing: "datanet", "version", ...
        what: &'static str,
        /// The key that was looked up.
        key: String,
    },
    /// A datanet with this slug exists already.
    #[error("a datanet with slug '{0}' exists already")]
    SlugTaken(String),
    /// The slug does not match `[a-z0-9][a-z0-9-]{1,62}`.
    #[error(
        "slug '{0}' is invalid: use 2-63 characters a-z, 0-9 and '-', starting with a letter or digit"
    )]
    InvalidSlug(String),
    /// The request is well-formed but not allowed for this actor.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (e.g. accepting a rejected contribution).
    #[error("{0}")]
    InvalidState(String),
    /// The request is malformed in a way the edge could not see.
    #[error("{0}")]
    Invalid(String),
    /// The signer used this nonce before.
    #[error("nonce {nonce} was already used by {signer}")]
    NonceReused {
        /// Signer address, 0x-hex.
        signer: String,
        /// The nonce, decimal.
        nonce: String,
    },
    /// A daily quota would be exceeded.
    #[error("{what}: resets at {reset_at_ms} (unix ms)")]
    QuotaExceeded {
        /// Which quota, in words.
        what: String,
        /// When the quota window resets, unix milliseconds.
        reset_at_ms: u64,
    },
    /// The upload is larger than the per-submission limit.
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The file could not be parsed into rows.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A broken invariant inside the store: a bug.
    #[error("internal error (a bug in Commons): {0}")]
    Internal(String),
}

/// Result with the storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the error came from the database itself, so the surrounding transaction may
    /// hold partial writes and must be aborted.
    pub fn is_fatal_for_transaction(&self) -> bool {
        matches!(
            self,
            Error::Db(_) | Error::Commit(_) | Error::Corrupt(_) | Error::Internal(_)
        )
    }

    pub(crate) fn not_found(what: &'static str, key: impl ToString) -> Self {
        Error::NotFound {
            what,
            key: key.to_string(),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
