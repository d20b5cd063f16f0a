//! The one error type of `quiver-online`.

/// Errors raised by online stores and online reads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store cannot be reached or cannot answer now (Redis down, connection refused or
    /// dropped, timeout, a cluster resharding or loading). Retrying later may work.
    #[error("online store unavailable: {0}")]
    Unavailable(String),

    /// The store answered, but refused the command (a script error, a wrong reply type, a
    /// command the server does not allow). Retrying will not help: the store or Quiver is
    /// misconfigured, or this is a bug.
    #[error("online store refused a command: {0}")]
    Refused(String),

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
    /// Transient failures (the connection, a timeout, a cluster that is moving or down) are
    /// [`Error::Unavailable`]; wrong credentials or permissions are [`Error::Config`];
    /// anything else the server or client refused for good is [`Error::Refused`].
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind, RetryMethod, ServerErrorKind};
        let text = e.to_string();
        match e.kind() {
            ErrorKind::AuthenticationFailed
            | ErrorKind::InvalidClientConfig
            | ErrorKind::Server(ServerErrorKind::NoPerm) => return Error::Config(text),
            _ => {}
        }
        let transient = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_cluster_error()
            || !matches!(e.retry_method(), RetryMethod::NoRetry);
        if transient { Error::Unavailable(text) } else { Error::Refused(text) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_errors_are_told_apart_by_whether_retrying_can_help() {
        let refused = redis::RedisError::from((redis::ErrorKind::Client, "script failed"));
        assert!(matches!(Error::from(refused), Error::Refused(_)));
        let io =
            redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
        assert!(matches!(Error::from(io), Error::Unavailable(_)));
        let auth = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "bad password"));
        assert!(matches!(Error::from(auth), Error::Config(_)));
    }
}
