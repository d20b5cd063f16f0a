//! The one table from errors to gRPC status codes. Every status the server sends is made
//! here, from a domain [`Error`]; the message is the error's own, which says what to fix.
//!
//! | error | status |
//! |---|---|
//! | invalid definitions, bad reference, missing/mistyped key or column, bad spine, bad request | `INVALID_ARGUMENT` |
//! | unknown object (view, service, registry version, offline table version, job, ticket) | `NOT_FOUND` |
//! | apply against a stale registry version | `ABORTED` |
//! | nothing applied yet, a view busy in another job or process (its lease), config or lake data that cannot work | `FAILED_PRECONDITION` |
//! | a store that cannot answer now: Redis unreachable, registry or offline storage failing | `UNAVAILABLE` |
//! | a store that refused a command (a Redis script error, a wrong reply) | `INTERNAL` |
//! | the server's own disk (work folder) failing | `INTERNAL` |
//! | a server limit, or the memory limit of an offline query | `RESOURCE_EXHAUSTED` |
//! | an upload that stalled | `DEADLINE_EXCEEDED` |
//! | no token or an unknown one / a role too low | `UNAUTHENTICATED` / `PERMISSION_DENIED` |
//! | a method not offered | `UNIMPLEMENTED` |
//! | stored data that cannot be read back (corrupt registry or online value) | `DATA_LOSS` |
//! | a bug in Quiver | `INTERNAL` |

use tonic::{Code, Status};

use crate::domain::Error;

/// The status code of an error.
pub fn code(error: &Error) -> Code {
    match error {
        Error::Core(e) => core_code(e),
        Error::Offline(e) => offline_code(e),
        Error::Online(e) => online_code(e),
        Error::Invalid(_) => Code::InvalidArgument,
        Error::NotFound(_) => Code::NotFound,
        Error::NotReady(_) => Code::FailedPrecondition,
        Error::Limit(_) => Code::ResourceExhausted,
        Error::Timeout(_) => Code::DeadlineExceeded,
        Error::NoCredentials(_) => Code::Unauthenticated,
        Error::Forbidden(_) => Code::PermissionDenied,
        Error::StoreDown(_) => Code::Unavailable,
        Error::Disk(_) => Code::Internal,
        Error::Unsupported(_) => Code::Unimplemented,
        Error::Reworded { kind, .. } => code(kind),
        Error::Internal(_) => Code::Internal,
    }
}

fn core_code(e: &quiver_core::Error) -> Code {
    use quiver_core::Error as E;
    match e {
        E::Invalid(_) | E::InvalidArgument(_) => Code::InvalidArgument,
        E::NotFound { .. } => Code::NotFound,
        E::Conflict { .. } => Code::Aborted,
        E::Config { .. } | E::ProjectMismatch { .. } => Code::FailedPrecondition,
        E::Storage { .. } | E::Io { .. } => Code::Unavailable,
        E::CorruptRegistry { .. } => Code::DataLoss,
        E::Internal(_) => Code::Internal,
    }
}

fn online_code(e: &quiver_online::Error) -> Code {
    use quiver_online::Error as E;
    match e {
        E::Core(inner) => core_code(inner),
        E::InvalidInput(_) => Code::InvalidArgument,
        E::Unavailable(_) | E::Embedded { .. } => Code::Unavailable,
        E::Refused(_) => Code::Internal,
        E::Config(_) => Code::FailedPrecondition,
        E::Corrupt { .. } => Code::DataLoss,
        E::Internal(_) => Code::Internal,
    }
}

fn offline_code(e: &quiver_offline::Error) -> Code {
    use quiver_offline::Error as E;
    match e {
        E::Core(inner) => core_code(inner),
        E::Online(inner) => online_code(inner),
        // The rows broke the view's declared expectations (a refused push).
        E::InvalidInput(_) | E::Expectations(_) => Code::InvalidArgument,
        E::NotFound(_) => Code::NotFound,
        E::Source { .. } | E::Transform { .. } | E::Schema(_) => Code::FailedPrecondition,
        // The store, or the cluster that runs offline plans, cannot serve now.
        E::Store(_) | E::Engine(_) => Code::Unavailable,
        E::Busy(_) => Code::FailedPrecondition,
        // In the server, files are its own (the spine it stored, the set it built).
        E::File { .. } => Code::Internal,
        E::Memory(_) => Code::ResourceExhausted,
        E::DataFusion(e) if is_resources_exhausted(e) => Code::ResourceExhausted,
        E::DataFusion(_) | E::Arrow(_) | E::Internal(_) => Code::Internal,
    }
}

fn is_resources_exhausted(e: &datafusion::error::DataFusionError) -> bool {
    matches!(e.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_))
}

/// The status a client sees for `error`.
pub fn to_status(error: impl Into<Error>) -> Status {
    let error = error.into();
    Status::new(code(&error), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_has_its_code() {
        let cases: Vec<(Error, Code)> = vec![
            (quiver_core::Error::Conflict { expected: 1, found: 2 }.into(), Code::Aborted),
            (
                quiver_core::Error::NotFound { kind: "feature view", name: "x".into(), hint: String::new() }
                    .into(),
                Code::NotFound,
            ),
            (quiver_online::Error::Unavailable("connection refused".into()).into(), Code::Unavailable),
            (quiver_online::Error::Refused("ERR script failed".into()).into(), Code::Internal),
            (
                quiver_offline::Error::InvalidInput("spine has no column 'driver_id'".into()).into(),
                Code::InvalidArgument,
            ),
            (
                quiver_offline::Error::Online(quiver_online::Error::Core(quiver_core::Error::Internal(
                    "x".into(),
                )))
                .into(),
                Code::Internal,
            ),
            (quiver_offline::Error::Store("disk full".into()).into(), Code::Unavailable),
            (quiver_offline::Error::Engine("scheduler unreachable".into()).into(), Code::Unavailable),
            (quiver_offline::Error::NotFound("table version 9".into()).into(), Code::NotFound),
            (
                quiver_offline::Error::File { path: "spine.parquet".into(), message: "gone".into() }.into(),
                Code::Internal,
            ),
            (
                quiver_offline::Error::DataFusion(datafusion::error::DataFusionError::ResourcesExhausted(
                    "sort".into(),
                ))
                .into(),
                Code::ResourceExhausted,
            ),
            (
                quiver_offline::Error::from(datafusion::error::DataFusionError::ResourcesExhausted(
                    "sort".into(),
                ))
                .into(),
                Code::ResourceExhausted,
            ),
            (Error::Disk("no space".into()), Code::Internal),
            (Error::NotReady("nothing applied".into()), Code::FailedPrecondition),
            (Error::Limit("too many".into()), Code::ResourceExhausted),
            (Error::Timeout("stalled".into()), Code::DeadlineExceeded),
            (Error::NoCredentials("no token".into()), Code::Unauthenticated),
            (Error::Forbidden("role".into()), Code::PermissionDenied),
            (Error::Unsupported("DoExchange".into()), Code::Unimplemented),
            (
                Error::Reworded { kind: Box::new(Error::Invalid("/srv/x".into())), message: "x".into() },
                Code::InvalidArgument,
            ),
        ];
        for (error, expected) in cases {
            let text = error.to_string();
            let status = to_status(error);
            assert_eq!(status.code(), expected, "{text}");
            assert_eq!(status.message(), text, "the message is the error's own");
        }
    }
}
