//! Quiver's offline side, on DataFusion: reading the lake, the offline store of Delta
//! tables, materialization, push, and point-in-time correct training sets.
//!
//! - [`lake`] — reading sources (parquet, csv, json; local or object store; globs and
//!   hive-style partition folders) and running a view's SQL transform over them;
//! - [`types`] — how declared dtypes map onto Arrow types;
//! - [`check`] — checking definitions against the real data before they are applied;
//! - [`session`] — the DataFusion session offline jobs run in (memory limit, spilling);
//! - [`layout`] — an offline table's columns, timestamp type, latest-row order, and the
//!   [`layout::Window`] a materialization replaces;
//! - [`store`] — the offline store: one Delta table per view, window replace and append;
//! - [`lease`] — materialization leases: one writer per view across processes;
//! - [`sidecar`] — which of a table's files Quiver knows to be sorted;
//! - [`sorted`] — reading a table version in the latest-row order (merge, or sort);
//! - [`rowsort`] — the partition sort on row-format keys that materialization writes from;
//! - [`materialize`] — computing windows from the lake into the offline and online stores;
//! - [`expect`] — a view's expectations, checked on the rows a window or a push writes;
//! - [`stats`] — per-feature statistics of every materialized window, from the same scan;
//! - [`drift`] — how far feature distributions moved between two periods of a table;
//! - [`skew`] — online values against a training set's for the same entities and moment;
//! - [`push`] — rows computed elsewhere, written offline, online, or both;
//! - [`pit`] — the point-in-time join operator;
//! - [`historical`] — the training-set plan: spine, table versions, one join per view;
//! - [`training`] — training sets written to files, with the manifest that rebuilds them;
//! - [`engine`] — where a training set's plan runs: this process, or a cluster;
//! - `fault` — fault points that let tests crash a debug build at a chosen moment.

pub mod check;
pub mod drift;
pub mod engine;
pub mod error;
mod exec;
pub mod expect;
mod fault;
pub mod historical;
pub mod lake;
pub mod layout;
pub mod lease;
pub mod materialize;
pub mod pit;
pub mod push;
pub mod rowsort;
pub mod session;
pub mod sidecar;
pub mod skew;
pub mod sorted;
pub mod stats;
pub mod store;
pub mod training;
pub mod types;

pub use error::{Error, Result};
