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

    /// Something the caller named does not exist (a table version beyond the latest).
    #[error("{0}")]
    NotFound(String),

    /// The offline store (Delta Lake) could not be opened, read or written.
    #[error("offline store: {0}")]
    Store(String),

    /// Another process holds the lease on a view (or this process lost its own): the
    /// message names the holder and when its lease expires.
    #[error("{0}")]
    Busy(String),

    /// The online store failed while materialization wrote to it (the offline commit of
    /// that view is already done).
    #[error("{0}")]
    Online(#[from] quiver_online::Error),

    /// Rows broke a view's expectations under `on_failure: fail`: the message names the view,
    /// each broken expectation and its counts, and says that nothing was committed.
    #[error("{0}")]
    Expectations(String),

    /// Bad input from the caller: a spine without a needed column, an unknown feature,
    /// an empty window. The message says what to fix.
    #[error("{0}")]
    InvalidInput(String),

    /// DataFusion failed while running a query that planned fine.
    #[error("query failed: {0}")]
    DataFusion(datafusion::error::DataFusionError),

    /// An offline job needed more memory than the memory limit allows and could not spill
    /// its way around it. The message names Quiver's option, not DataFusion's.
    #[error(
        "the offline job ran out of memory under the memory limit; raise it with --memory-limit \
         (or QUIVER_MEMORY_LIMIT), e.g. --memory-limit 4GiB ({0})"
    )]
    Memory(String),

    /// The engine that runs offline plans on other machines (a Ballista cluster) could not
    /// be reached, or the job failed there. The message names the scheduler.
    #[error("offline engine: {0}")]
    Engine(String),

    /// Arrow failed (a cast, a column lookup) while building or running a plan.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    /// Reading or writing a local file (a spine, a training set, a manifest) failed.
    #[error("{path}: {message}")]
    File { path: String, message: String },

    /// Configuration, registry or definition error from `quiver-core`.
    #[error(transparent)]
    Core(#[from] quiver_core::Error),

    /// A condition that should be impossible: a bug in Quiver. Please report it.
    #[error("internal error (this is a bug in Quiver, please report it): {0}")]
    Internal(String),
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        match e.find_root() {
            datafusion::error::DataFusionError::ResourcesExhausted(message) => {
                // DataFusion's advice names its own setting, which Quiver users do not set.
                let message = message
                    .split(". Consider")
                    .next()
                    .unwrap_or(message)
                    .replace("datafusion.runtime.memory_limit", "the memory limit");
                Error::Memory(message)
            }
            root if is_shorter_than_listed(root) => {
                Error::DataFusion(datafusion::error::DataFusionError::Context(
                    "a file changed while the job read it: it is shorter than when the folder was \
                     listed (replaced or truncated mid-run); run the job again once the file is \
                     written"
                        .into(),
                    Box::new(e),
                ))
            }
            _ => Error::DataFusion(e),
        }
    }
}

/// A read past the end a listing gave for a file (from the object store, or from the
/// Parquet reader that asked it): the file was replaced by a shorter one, or truncated,
/// after the listing.
fn is_shorter_than_listed(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as D;
    matches!(e, D::ObjectStore(_) | D::ParquetError(_) | D::External(_))
        && e.to_string().contains("Out of range of file")
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_error_names_quivers_option() {
        let inner = datafusion::error::DataFusionError::ResourcesExhausted(
            "Failed to allocate additional 8.0 MB for ExternalSorterMerge[0]".into(),
        );
        let wrapped = datafusion::error::DataFusionError::Context("sorting".into(), Box::new(inner));
        let message = Error::from(wrapped).to_string();
        assert!(message.contains("--memory-limit"), "{message}");
        assert!(message.contains("ExternalSorterMerge"), "{message}");
        assert!(!message.contains("datafusion.runtime"), "{message}");
        let other = Error::from(datafusion::error::DataFusionError::Plan("no such column".into()));
        assert!(matches!(other, Error::DataFusion(_)), "{other:?}");
    }
}
