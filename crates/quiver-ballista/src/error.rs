//! Errors of the Ballista integration: bad input, a scheduler that cannot be reached, a job
//! that failed on the cluster.

use datafusion::error::DataFusionError;

/// What went wrong, with the scheduler's URL wherever one was involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address, port, count or timeout out of bounds.
    #[error("{0}")]
    InvalidInput(String),
    /// Nothing answered at the scheduler's address within the connect timeout.
    #[error("Ballista scheduler {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The scheduler took the plan but the job failed, or the plan could not be sent.
    #[error("Ballista job on scheduler {url} failed: {source}")]
    Job {
        url: String,
        #[source]
        source: DataFusionError,
    },
    /// Starting or running a scheduler or an executor failed.
    #[error("{0}")]
    Cluster(String),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
