//! The one error type of `quiver-core`.
//!
//! Each variant says when it is raised. Callers that serve users (the CLI, the gRPC layer)
//! map these variants to exit codes or status codes in one place each.

use crate::problem::Problems;

/// Errors raised by definition loading, validation, configuration and the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The definitions (or a config file) did not pass validation. Carries every problem
    /// found, not just the first, so a user fixes them in one go.
    #[error("{0}")]
    Invalid(Problems),

    /// The configuration file is missing, unreadable or malformed.
    #[error("config {path}: {message}")]
    Config { path: String, message: String },

    /// A compare-and-swap apply found the registry at another version than the one the
    /// caller planned against: someone else applied in between. Nothing was written.
    #[error(
        "registry conflict: expected version {expected} but the registry is at version {found}; \
         someone applied in between. Run `quiver plan` again to see the current state, then apply"
    )]
    Conflict { expected: u64, found: u64 },

    /// The registry holds data Quiver cannot read back (truncated file, bad JSON, hashes that
    /// do not match the content). Quiver refuses to go on rather than start a fresh history.
    #[error(
        "registry is corrupt: {location}: {reason}. Quiver will not overwrite it; \
         restore the file from a backup or move it away deliberately"
    )]
    CorruptRegistry { location: String, reason: String },

    /// The registry at this location was created for another project.
    #[error("registry at {location} belongs to project '{found}', but the config names project '{expected}'")]
    ProjectMismatch { location: String, expected: String, found: String },

    /// A named object (entity, source, view, service, registry version) does not exist.
    #[error("{kind} '{name}' not found{hint}")]
    NotFound { kind: &'static str, name: String, hint: String },

    /// A request named something malformed (a bad feature reference, a bad URL, ...).
    #[error("{0}")]
    InvalidArgument(String),

    /// The object store behind the registry failed (network, permissions, disk). The message
    /// says what to look at, by what the store answered.
    #[error("storage error at {location}: {} ({source})", crate::storage::what_to_check(location, source))]
    Storage {
        location: String,
        #[source]
        source: object_store::Error,
    },

    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A condition that should be impossible: a bug in Quiver. Please report it.
    #[error("internal error (this is a bug in Quiver, please report it): {0}")]
    Internal(String),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), source }
    }

    pub(crate) fn storage(location: impl std::fmt::Display, source: object_store::Error) -> Self {
        Error::Storage { location: location.to_string(), source }
    }
}
