//! The one error type of `quiver-sample`.
//!
//! Generation fails only for two reasons: the spec asks for something the lake cannot hold
//! (checked up front, before any file is touched), or the file system refuses a write. The
//! `Internal` variant is reserved for broken invariants inside this crate.

use std::path::PathBuf;

/// Everything that can go wrong while generating a sample lake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Raised by [`crate::generate_lake`] (before anything is written) when a
    /// [`crate::SampleSpec`] cannot describe a lake: zero rows, drivers, customers or days,
    /// entity counts whose ids would not fit in `int64`, a `start` with a fractional second,
    /// or a time window reaching outside the years 0001–9999.
    #[error("invalid sample spec: {reason}")]
    InvalidSpec {
        /// What is wrong with the spec, in words a user can act on.
        reason: String,
    },

    /// Raised when creating a table folder, creating, writing, renaming or removing a file,
    /// or listing a table folder fails.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder being worked on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Raised when the Parquet writer rejects a batch or fails to write a file's footer
    /// (usually an I/O failure underneath).
    #[error("parquet error on {}: {source}", path.display())]
    Parquet {
        /// The Parquet file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// A bug in `quiver-sample`: an invariant the generator relies on does not hold
    /// (for example a record batch whose columns do not match the table's schema).
    #[error("internal error in quiver-sample (this is a bug): {0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adapter for `map_err`: tags an I/O error with the path it happened on.
pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}
