//! The one error type of `quiver-offline`.

/// Errors raised while scanning the lake or planning offline queries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source could not be read: no file matches its path, a file is unreadable, or its
    /// schema cannot be inferred. `message` says which and why.
    #[error("source '{source_name}': {message}")]
    Source { source_name: String, message: String },

    /// A feature view's SQL transform does not parse or plan against its source.
    #[error("feature view '{view}': transform: {message}")]
    Transform { view: String, message: String },

    /// A column a definition needs is missing or has the wrong type.
    #[error("{0}")]
    Schema(String),

    /// DataFusion failed while running a query that planned fine.
    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    /// Configuration, registry or definition error from `quiver-core`.
    #[error(transparent)]
    Core(#[from] quiver_core::Error),

    /// A condition that should be impossible: a bug in Quiver. Please report it.
    #[error("internal error (this is a bug in Quiver, please report it): {0}")]
    Internal(String),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
