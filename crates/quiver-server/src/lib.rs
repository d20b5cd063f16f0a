//! Quiver's network API: `quiver serve`.
//!
//! A tonic server over the domain crates; the transport stays thin — each handler decodes
//! the request, calls `quiver-core` / `quiver-offline` / `quiver-online`, and encodes the
//! answer. Services (contract in `proto/quiver/v1/`):
//!
//! - [`registry_svc`] — plan, apply (compare-and-swap), list and read definitions;
//! - [`online_svc`] — online feature values;
//! - [`offline_svc`] — training sets over gRPC; [`flight_svc`] — the same over Arrow Flight;
//! - [`materialize_svc`] — background materialization jobs ([`jobs`]);
//! - [`push_svc`] — rows pushed to a view's stores;
//! - gRPC health checking and server reflection.
//!
//! Cross-cutting: [`auth`] (tokens, roles, what each method needs), [`conn`] (connection
//! cap, per-connection state, idle connections), [`guard`] (auth, concurrency shares,
//! deadlines, message size, call metrics),
//! [`metrics`] (Prometheus on its own port), [`error`] (the one error-to-status table),
//! [`app`] (shared state; the registry held in memory and swapped atomically).

pub mod app;
pub mod auth;
pub mod conn;
pub mod convert;
pub mod error;
pub mod flight_svc;
pub mod guard;
pub mod jobs;
pub mod materialize_svc;
pub mod metrics;
pub mod offline_svc;
pub mod online_svc;
pub mod push_svc;
pub mod registry_svc;
pub mod server;
pub mod training;

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
