//! The one table from domain errors to gRPC status codes.
//!
//! | domain error | status |
//! |---|---|
//! | invalid definitions, bad reference, missing/mistyped key or column, bad spine | `INVALID_ARGUMENT` |
//! | unknown object (view, service, registry version, job) | `NOT_FOUND` |
//! | apply against a stale registry version | `ABORTED` |
//! | config or lake data that cannot work (source unreadable, transform fails) | `FAILED_PRECONDITION` |
//! | store down: Redis unreachable, registry or offline storage failing | `UNAVAILABLE` |
//! | memory limit reached in an offline query | `RESOURCE_EXHAUSTED` |
//! | stored data that cannot be read back (corrupt registry or online value) | `DATA_LOSS` |
//! | a bug in Quiver | `INTERNAL` |
//!
//! The message is the domain error's own, which says what to fix.

use tonic::{Code, Status};

/// Converts a domain error into the status a client sees.
pub trait IntoStatus {
    fn into_status(self) -> Status;
}

fn status(code: Code, e: impl std::fmt::Display) -> Status {
    Status::new(code, e.to_string())
}

impl IntoStatus for quiver_core::Error {
    fn into_status(self) -> Status {
        use quiver_core::Error as E;
        let code = match &self {
            E::Invalid(_) | E::InvalidArgument(_) => Code::InvalidArgument,
            E::NotFound { .. } => Code::NotFound,
            E::Conflict { .. } => Code::Aborted,
            E::Config { .. } | E::ProjectMismatch { .. } => Code::FailedPrecondition,
            E::Storage { .. } | E::Io { .. } => Code::Unavailable,
            E::CorruptRegistry { .. } => Code::DataLoss,
            E::Internal(_) => Code::Internal,
        };
        status(code, self)
    }
}

impl IntoStatus for quiver_online::Error {
    fn into_status(self) -> Status {
        use quiver_online::Error as E;
        let code = match &self {
            E::Core(_) => Code::Internal,
            E::InvalidInput(_) => Code::InvalidArgument,
            E::Unavailable(_) | E::Embedded { .. } => Code::Unavailable,
            E::Config(_) => Code::FailedPrecondition,
            E::Corrupt { .. } => Code::DataLoss,
            E::Internal(_) => Code::Internal,
        };
        match self {
            E::Core(inner) => inner.into_status(),
            other => status(code, other),
        }
    }
}

impl IntoStatus for quiver_offline::Error {
    fn into_status(self) -> Status {
        use quiver_offline::Error as E;
        let code = match self {
            E::Core(inner) => return inner.into_status(),
            E::Online(inner) => return inner.into_status(),
            E::InvalidInput(_) | E::File { .. } => Code::InvalidArgument,
            E::Source { .. } | E::Transform { .. } | E::Schema(_) => Code::FailedPrecondition,
            E::Store(_) => Code::Unavailable,
            E::DataFusion(ref e) if is_resources_exhausted(e) => Code::ResourceExhausted,
            E::DataFusion(_) | E::Arrow(_) | E::Internal(_) => Code::Internal,
        };
        status(code, self)
    }
}

fn is_resources_exhausted(e: &datafusion::error::DataFusionError) -> bool {
    matches!(e.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_))
}

/// Shorthand for handlers: `result.map_err(to_status)`.
pub fn to_status<E: IntoStatus>(e: E) -> Status {
    e.into_status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_domain_error_has_its_code() {
        let conflict = quiver_core::Error::Conflict { expected: 1, found: 2 };
        assert_eq!(conflict.into_status().code(), Code::Aborted);
        let missing =
            quiver_core::Error::NotFound { kind: "feature view", name: "x".into(), hint: String::new() };
        assert_eq!(missing.into_status().code(), Code::NotFound);
        let down = quiver_online::Error::Unavailable("connection refused".into());
        let s = down.into_status();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("connection refused"));
        let bad = quiver_offline::Error::InvalidInput("spine has no column 'driver_id'".into());
        assert_eq!(bad.into_status().code(), Code::InvalidArgument);
        let nested = quiver_offline::Error::Online(quiver_online::Error::Core(quiver_core::Error::Internal(
            "x".into(),
        )));
        assert_eq!(nested.into_status().code(), Code::Internal);
        let store = quiver_offline::Error::Store("disk full".into());
        assert_eq!(store.into_status().code(), Code::Unavailable);
        let exhausted = quiver_offline::Error::DataFusion(
            datafusion::error::DataFusionError::ResourcesExhausted("sort".into()),
        );
        assert_eq!(exhausted.into_status().code(), Code::ResourceExhausted);
    }
}
