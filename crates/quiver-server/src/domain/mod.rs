//! What the server does, without the wire: a [`Project`] (the registry held in memory, the
//! stores, the materialization jobs and the training sets) and the operations on it. Nothing
//! here knows tonic, protobuf or HTTP: the services in `*_svc.rs` decode a request, call one
//! operation, and encode its answer; every failure is an [`Error`], which [`crate::error`]
//! turns into a gRPC status through one table.
//!
//! - [`project`] — the project's stores and the registry version being served (swapped
//!   atomically, watched for versions applied elsewhere);
//! - [`registry`] — plan and apply;
//! - [`online`] — online reads, bounded before any row is built;
//! - [`training`] — training sets: one spine-upload path for gRPC and Flight, the work
//!   folder, tickets;
//! - [`jobs`] — background materialization jobs;
//! - [`push`] — rows pushed to a view's stores;
//! - [`quality`] — drift between two periods, and the views' declared drift checks.

pub mod jobs;
pub mod online;
pub mod project;
pub mod push;
pub mod quality;
pub mod registry;
pub mod training;

pub use project::{Project, ProjectOptions};

/// Why an operation failed. The domain crates' errors pass through unchanged; the rest are
/// the server's own, each a kind of failure a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] quiver_core::Error),
    #[error(transparent)]
    Offline(#[from] quiver_offline::Error),
    #[error(transparent)]
    Online(#[from] quiver_online::Error),
    /// The request is malformed or asks for something impossible; the message says what.
    #[error("{0}")]
    Invalid(String),
    /// The request names something this server does not have (a view, a job, a ticket).
    #[error("{0}")]
    NotFound(String),
    /// The request is fine but the server is not in a state to do it (nothing applied yet,
    /// a view already being materialized, a work folder in use).
    #[error("{0}")]
    NotReady(String),
    /// A limit of the server was reached (sizes, counts, calls in flight).
    #[error("{0}")]
    Limit(String),
    /// The request took longer than it may (an upload that stalled, the call deadline).
    #[error("{0}")]
    Timeout(String),
    /// No token, or one the server does not know.
    #[error("{0}")]
    NoCredentials(String),
    /// A known token whose role is too low.
    #[error("{0}")]
    Forbidden(String),
    /// A store failed part-way: the first step is done, the rest can be retried.
    #[error("{0}")]
    StoreDown(String),
    /// The server's own disk (its work folder) failed.
    #[error("{0}")]
    Disk(String),
    /// A method this server does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// Another error, worded for the client (server paths taken out); its kind is kept.
    #[error("{message}")]
    Reworded { kind: Box<Error>, message: String },
    /// A bug.
    #[error("internal error (this is a bug in Quiver, please report it): {0}")]
    Internal(String),
}

/// `Result` with the domain [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `detail` (an error holding store URLs, cluster addresses or paths) to the server's
/// log under a new reference, and returns the reference: 8 hex digits a caller can quote,
/// where the detail itself is never sent to a caller.
pub fn log_with_reference(what: &str, detail: &dyn std::fmt::Display) -> String {
    let mut bits = [0u8; 4];
    // Without randomness the reference is still a marker to search the log for.
    let _ = getrandom::fill(&mut bits);
    let reference = hex::encode(bits);
    tracing::warn!(reference = %reference, error = %detail, "{what}");
    reference
}

/// [`Error::StoreDown`] for `what` that failed in a store with `cause`: the caller reads what
/// failed and a reference, the server's log has the cause.
pub fn store_down(what: impl std::fmt::Display, cause: impl std::fmt::Display) -> Error {
    let reference = log_with_reference("a store failed", &cause);
    Error::StoreDown(format!("{what} (the server's log has the details under reference {reference})"))
}

/// The time an operation asks about, from nanoseconds since the epoch (0 = not set).
pub fn time_from_ns(ns: i64, what: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if ns == 0 {
        return Err(Error::Invalid(format!("{what} is not set (nanoseconds since the epoch)")));
    }
    Ok(chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(ns))
}
