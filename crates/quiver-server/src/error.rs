//! The one table from errors to gRPC status codes. Every status the server sends is made
//! here, from a domain [`Error`] (the HTTP endpoint uses the same table and messages).
//!
//! What the caller reads ([`client_message`]): an error about the request or about what the
//! caller may do carries its own message, which says what to fix. A fault on the server's
//! side (a store or cluster that cannot answer, stored data that cannot be read back, the
//! server's own disk, a bug) is told by its kind and a reference; the whole error, with the
//! store URLs, cluster addresses and paths it may hold, goes to the server's log under the
//! same reference and never to the caller. A `StoreDown` error keeps its message: the server
//! words it for the caller, with the store's error left out.
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
    Status::new(code(&error), client_message(&error))
}

/// How a bug is told to the caller (its details go to the log).
const BUG: &str = "internal error (this is a bug in Quiver, please report it)";

/// The message a client reads for `error`: see the module documentation.
pub fn client_message(error: &Error) -> String {
    let Some(kind) = server_fault(error) else {
        return error.to_string();
    };
    let reference = crate::domain::log_with_reference("request failed on the server's side", error);
    format!("{kind} (the server's log has the details under reference {reference})")
}

/// For a fault on the server's side, what kind of fault it is, in words that name no
/// address, URL or path; `None` for every other error.
fn server_fault(error: &Error) -> Option<&'static str> {
    match error {
        Error::Core(e) => core_fault(e),
        Error::Offline(e) => offline_fault(e),
        Error::Online(e) => online_fault(e),
        Error::Disk(_) => Some("the server's work folder failed"),
        Error::Internal(_) => Some(BUG),
        // Rewording takes server paths out, not the addresses a store's error may hold.
        Error::Reworded { kind, .. } => server_fault(kind),
        Error::Invalid(_)
        | Error::NotFound(_)
        | Error::NotReady(_)
        | Error::Limit(_)
        | Error::Timeout(_)
        | Error::NoCredentials(_)
        | Error::Forbidden(_)
        | Error::StoreDown(_)
        | Error::Unsupported(_) => None,
    }
}

fn core_fault(e: &quiver_core::Error) -> Option<&'static str> {
    use quiver_core::Error as E;
    match e {
        E::Storage { .. } | E::Io { .. } => Some("registry storage unavailable: retry shortly"),
        E::CorruptRegistry { .. } => Some("a stored registry version is unreadable"),
        E::Internal(_) => Some(BUG),
        E::Invalid(_)
        | E::InvalidArgument(_)
        | E::NotFound { .. }
        | E::Conflict { .. }
        | E::Config { .. }
        | E::ProjectMismatch { .. } => None,
    }
}

fn online_fault(e: &quiver_online::Error) -> Option<&'static str> {
    use quiver_online::Error as E;
    match e {
        E::Core(inner) => core_fault(inner),
        E::Unavailable(_) | E::Embedded { .. } => Some("online store unavailable: retry shortly"),
        E::Refused(_) => Some("online store refused a command"),
        E::Corrupt { .. } => Some("a stored online value is unreadable"),
        E::Internal(_) => Some(BUG),
        E::InvalidInput(_) | E::Config(_) => None,
    }
}

fn offline_fault(e: &quiver_offline::Error) -> Option<&'static str> {
    use quiver_offline::Error as E;
    match e {
        E::Core(inner) => core_fault(inner),
        E::Online(inner) => online_fault(inner),
        E::Store(_) => Some("offline store unavailable: retry shortly"),
        E::Engine(_) => {
            Some("offline engine unavailable: the cluster that runs offline plans cannot be reached")
        }
        E::File { .. } => Some("the server could not read or write a file of its own"),
        E::DataFusion(e) if is_resources_exhausted(e) => None,
        E::DataFusion(_) | E::Arrow(_) | E::Internal(_) => {
            Some("internal error while running an offline plan")
        }
        E::InvalidInput(_)
        | E::Expectations(_)
        | E::NotFound(_)
        | E::Source { .. }
        | E::Transform { .. }
        | E::Schema(_)
        | E::Busy(_)
        | E::Memory(_) => None,
    }
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
            let fault = server_fault(&error);
            let status = to_status(error);
            assert_eq!(status.code(), expected, "{text}");
            match fault {
                None => assert_eq!(status.message(), text, "the message is the error's own"),
                Some(kind) => assert!(status.message().starts_with(kind), "{}", status.message()),
            }
        }
    }

    #[test]
    fn faults_on_the_servers_side_name_their_kind_and_a_reference_never_their_details() {
        let secret = "redis://10.1.2.3:6379/0 s3://private-bucket/offline /srv/quiver/work";
        let faults: Vec<(Error, &str)> = vec![
            (quiver_online::Error::Unavailable(secret.into()).into(), "online store unavailable"),
            (quiver_online::Error::Refused(secret.into()).into(), "online store refused"),
            (
                quiver_online::Error::Corrupt { key: secret.into(), message: secret.into() }.into(),
                "a stored online value is unreadable",
            ),
            (quiver_offline::Error::Store(secret.into()).into(), "offline store unavailable"),
            (quiver_offline::Error::Engine(secret.into()).into(), "offline engine unavailable"),
            (
                quiver_offline::Error::File { path: secret.into(), message: secret.into() }.into(),
                "could not read or write",
            ),
            (
                quiver_offline::Error::Online(quiver_online::Error::Unavailable(secret.into())).into(),
                "online store",
            ),
            (Error::Disk(secret.into()), "work folder failed"),
            (Error::Internal(secret.into()), "internal error"),
        ];
        let mut references = std::collections::HashSet::new();
        for (error, kind) in faults {
            let message = client_message(&error);
            assert!(message.contains(kind), "{message}");
            for detail in ["10.1.2.3", "private-bucket", "/srv/quiver"] {
                assert!(!message.contains(detail), "{message} repeats {detail}");
            }
            let reference = message.rsplit(' ').next().unwrap().trim_end_matches(')');
            assert!(reference.len() == 8 && reference.chars().all(|c| c.is_ascii_hexdigit()), "{message}");
            references.insert(reference.to_string());
        }
        assert!(references.len() > 1, "each failure has a reference of its own");
        // What the caller can fix is still said in full.
        let invalid = Error::Invalid("spine has no column 'driver_id'".into());
        assert_eq!(client_message(&invalid), "spine has no column 'driver_id'");
        let worded = Error::StoreDown("registry version 4 is applied, but deleting rows failed".into());
        assert_eq!(client_message(&worded), worded.to_string());
        // A reworded error keeps its kind: a fault stays a fault.
        let reworded = Error::Reworded {
            kind: Box::new(quiver_offline::Error::Engine(secret.into()).into()),
            message: format!("building the training set: {secret}"),
        };
        assert!(!client_message(&reworded).contains("10.1.2.3"), "{}", client_message(&reworded));
        let reworded_invalid =
            Error::Reworded { kind: Box::new(Error::Invalid("x".into())), message: "spine column 2".into() };
        assert_eq!(client_message(&reworded_invalid), "spine column 2");
    }
}
