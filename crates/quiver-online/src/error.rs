//! The one error type of `quiver-online`.

/// Errors raised by online stores and online reads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store cannot be reached or answered with an error (Redis down, connection
    /// refused, timeout). Callers map this to "unavailable": retrying later may work.
    #[error("online store unavailable: {0}")]
    Unavailable(String),

    /// The embedded store's file cannot be opened, read or written.
    #[error("embedded online store {path}: {message}")]
    Embedded { path: String, message: String },

    /// A stored value cannot be decoded: written by an unknown format version, or damaged.
    #[error("stored online value for {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },

    /// Bad input from the caller: a missing join key, a key value of the wrong type, an
    /// unknown view or feature. The message names it.
    #[error("{0}")]
    InvalidInput(String),

    /// Configuration that cannot work (a malformed Redis URL).
    #[error("online store config: {0}")]
    Config(String),

    /// Definitions or registry error from `quiver-core`.
    #[error(transparent)]
    Core(#[from] quiver_core::Error),

    /// A condition that should be impossible: a bug in Quiver. Please report it.
    #[error("internal error (this is a bug in Quiver, please report it): {0}")]
    Internal(String),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Unavailable(e.to_string())
    }
}
