//! Quiver's offline side, on DataFusion.
//!
//! - [`lake`] — reading sources (parquet, csv, json; local or object store; globs and
//!   hive-style partition folders) and running a view's SQL transform over them;
//! - [`check`] — checking definitions against the real data before they are applied;
//! - [`types`] — how declared dtypes map onto Arrow types.

pub mod check;
pub mod error;
pub mod historical;
pub mod lake;
pub mod materialize;
pub mod pit;
pub mod push;
pub mod rowsort;
pub mod session;
pub mod sorted;
pub mod store;
pub mod training;
pub mod types;

pub use error::{Error, Result};
