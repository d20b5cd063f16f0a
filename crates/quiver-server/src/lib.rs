//! Quiver's network API: `quiver serve`.
//!
//! Two layers. [`domain`] is what the server does — a project's stores, the registry version
//! served, online reads, plan and apply, training sets, materialization jobs, push — with
//! no knowledge of tonic or protobuf; every failure is a [`domain::Error`]. The services
//! are thin over it: each decodes a request, calls one domain operation and encodes the
//! answer, and [`error`] is the one table from errors to status codes. Services (contract
//! in `proto/quiver/v1/`):
//!
//! - [`registry_svc`] — plan, apply (compare-and-swap), list and read definitions;
//! - [`online_svc`] — online feature values;
//! - [`offline_svc`] — training sets over gRPC; [`flight_svc`] — the same over Arrow Flight;
//! - [`materialize_svc`] — background materialization jobs;
//! - [`push_svc`] — rows pushed to a view's stores;
//! - [`quality_svc`] — a run's statistics, drift between two periods, train/serve skew;
//! - gRPC health checking and server reflection;
//! - [`http`] — with `--http-addr`: a JSON API (online reads, registry objects, an OpenAPI
//!   document), the web catalog, `/healthz` and `/metrics`, over the same [`App`].
//!
//! Cross-cutting: [`auth`] (tokens, roles, what each method needs), [`conn`] (connection
//! cap, per-connection state, idle connections), [`guard`] (auth, concurrency shares,
//! deadlines, message size, call metrics),
//! [`metrics`] (Prometheus on its own port, view gauges read from the served registry version
//! and the materialization state, the drift scores of `--check-drift-every`), [`convert`] (wire values, Arrow IPC, definitions on the
//! wire), [`app`] (a running server: its project, tokens and metrics).

pub mod app;
pub mod auth;
pub mod conn;
pub mod convert;
pub mod domain;
pub mod error;
pub mod flight_svc;
pub mod guard;
pub mod http;
pub mod materialize_svc;
pub mod metrics;
pub mod offline_svc;
pub mod online_svc;
pub mod push_svc;
pub mod quality_svc;
pub mod registry_svc;
pub mod server;

pub use app::App;
pub use server::{Limits, ServeError, serve};

/// The generated messages, clients and servers of `quiver.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("quiver.v1");

    /// The encoded descriptors of `quiver.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("quiver_v1_descriptor");

    /// The encoded descriptors of Arrow Flight's service (described in
    /// proto/arrow/flight/protocol/), for server reflection.
    pub const FLIGHT_FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/arrow_flight_descriptor.bin"));
}
