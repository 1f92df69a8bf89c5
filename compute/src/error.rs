//! The compute crate's error type.

/// What can go wrong loading models and adapters or serving requests.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file is missing, corrupt or inconsistent with its config.
    #[error("bad model: {0}")]
    BadModel(String),
    /// The model or adapter uses something this runtime does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An adapter is malformed or does not fit the base model.
    #[error("bad adapter: {0}")]
    BadAdapter(String),
    /// A request cannot be served as asked (prompt too long, bad parameters).
    #[error("{0}")]
    BadRequest(String),
    /// No adapter or model by that name.
    #[error("{0}")]
    NotFound(String),
    /// The queue is full; try again later.
    #[error("{0}")]
    Overloaded(String),
    /// The GPU backend failed (driver, NVRTC, device memory) or is not available.
    #[error("device: {0}")]
    Device(String),
    /// The engine thread is gone.
    #[error("the inference engine has stopped")]
    EngineStopped,
    /// Tokenizer or chat template failure.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// File system error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Result with the compute [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
