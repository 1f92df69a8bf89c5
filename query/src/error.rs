//! Errors of search and SQL.

/// What went wrong in a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] commons_storage::Error),
    /// The search query does not parse (unbalanced quotes, unknown field, …).
    #[error("invalid search query: {0}")]
    InvalidSearch(String),
    /// The search index failed.
    #[error("search index error: {0}")]
    Index(String),
    /// SQL the engine refuses or cannot plan (syntax, unknown table or column, types, writes).
    #[error("{0}")]
    Sql(String),
    /// A query ran past its time limit and was cancelled.
    #[error("query cancelled: it ran longer than the limit of {0} ms")]
    Timeout(u64),
    /// A query needed more memory than its limit.
    #[error("query cancelled: {0}")]
    ResourcesExhausted(String),
    /// A broken invariant: a bug.
    #[error("internal error (a bug in Commons): {0}")]
    Internal(String),
}

/// Result with the query [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
