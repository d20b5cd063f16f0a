//! The one error type of `quiver-testkit`.

/// Errors of the test services. Tests usually `unwrap` them; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not start: its temporary folder, the loopback socket, its runtime or
    /// its thread.
    #[error("cannot start the S3 server: {0}")]
    Start(String),

    /// A bucket name S3 would reject, or a bucket that exists already.
    #[error("bucket '{name}': {reason}")]
    Bucket { name: String, reason: String },

    /// A local file or folder could not be read or created.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The S3 client could not be built, or a request to the server failed.
    #[error("S3 request failed: {0}")]
    ObjectStore(#[from] object_store::Error),

    /// [`crate::S3Settings::from_env`] found an `AWS_*` variable missing (the process was not
    /// started by [`crate::child::run_test_with_env`] with a server's variables).
    #[error("{0}")]
    Env(String),

    /// A test re-run in a child process failed, or did not run at all.
    #[error(
        "test '{test}' in a child process {reason}\n--- child stdout ---\n{stdout}\n--- child stderr ---\n{stderr}"
    )]
    Child { test: String, reason: String, stdout: String, stderr: String },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), source }
    }
}
