//! Errors of the ledger. [`TxError`] is a transaction refused at the door (the JSON-RPC edge
//! turns it into the codes and messages Ethereum clients know); [`Error`] is everything else.

/// Result with the ledger's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Why a transaction was refused before it entered the pool. The messages are the ones
/// geth uses, which clients match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The bytes are not an EIP-2718 transaction.
    #[error("rlp: {0}")]
    Malformed(String),
    /// Larger than the pool accepts.
    #[error("oversized data: transaction size {size}, limit {limit}")]
    Oversized {
        /// Bytes given.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// A deposit (type 0x7E) or another type users may not send.
    #[error("transaction type not supported")]
    TypeNotSupported,
    /// Signed for another chain, or without replay protection.
    #[error("invalid chain id for signer: have {have:?} want {want}")]
    WrongChain {
        /// The transaction's chain id (`None`: not replay-protected).
        have: Option<u64>,
        /// This chain's id.
        want: u64,
    },
    /// The signature does not recover.
    #[error("invalid sender: {0}")]
    BadSignature(String),
    /// Nonce below the account's.
    #[error("nonce too low: next nonce {state}, tx nonce {tx}")]
    NonceTooLow {
        /// Account nonce.
        state: u64,
        /// Transaction nonce.
        tx: u64,
    },
    /// Nonce too far ahead of the account's.
    #[error("nonce too high: next nonce {state}, tx nonce {tx}")]
    NonceTooHigh {
        /// Account nonce.
        state: u64,
        /// Transaction nonce.
        tx: u64,
    },
    /// Balance below gas * price + value.
    #[error("insufficient funds for gas * price + value: balance {balance}, tx cost {cost}")]
    InsufficientFunds {
        /// The sender's balance.
        balance: alloy_primitives::U256,
        /// What the transaction may cost.
        cost: alloy_primitives::U256,
    },
    /// Gas limit above the block's (or the per-transaction cap).
    #[error("exceeds block gas limit")]
    GasLimit,
    /// Gas limit below the intrinsic cost.
    #[error("intrinsic gas too low: gas {gas}, minimum needed {needed}")]
    IntrinsicGas {
        /// Gas given.
        gas: u64,
        /// Gas needed.
        needed: u64,
    },
    /// Max priority fee above max fee.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Fee cap below the minimum the pool takes.
    #[error("transaction underpriced")]
    Underpriced,
    /// Same sender and nonce as a pooled transaction without a large enough fee bump.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// Already in the pool or the chain.
    #[error("already known")]
    AlreadyKnown,
    /// The pool (or the sender's share of it) is full and this one pays too little.
    #[error("txpool is full")]
    PoolFull,
}

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transaction refused at the door.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// The database failed.
    #[error("ledger database: {0}")]
    Db(String),
    /// Stored data cannot be read back: the database is damaged or from another version.
    #[error("corrupt ledger data: {0}")]
    Corrupt(String),
    /// An invariant of this crate broke; this is a bug in Commons.
    #[error("internal ledger error (a bug in Commons): {0}")]
    Internal(String),
    /// The EVM failed for a reason other than the transaction.
    #[error("evm: {0}")]
    Evm(String),
    /// A block, transaction or state that is not there.
    #[error("{0}")]
    NotFound(String),
    /// Bad input to a query (range too large, unknown tag).
    #[error("{0}")]
    Invalid(String),
    /// eth_call / eth_estimateGas reverted: the revert data.
    #[error("execution reverted{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Reverted {
        /// ABI-decoded `Error(string)` reason, when there is one.
        reason: Option<String>,
        /// The raw revert data.
        data: alloy_primitives::Bytes,
    },
    /// eth_call / eth_estimateGas halted (out of gas, invalid opcode ...).
    #[error("{0}")]
    Halted(String),
    /// Reading or writing the DA directory failed.
    #[error("DA: {0}")]
    Da(String),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(e.to_string())
            }
        }
    )*};
}
db_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
