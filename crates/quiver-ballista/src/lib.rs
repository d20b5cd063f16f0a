//! Quiver's offline plans on an Apache Ballista 55 cluster.
//!
//! Quiver builds DataFusion physical plans with operators of its own (`AsofJoinExec`,
//! `SortRowsExec`); Ballista cuts such a plan into stages and runs them on executors. What
//! this crate adds to Ballista:
//! - [`codec`] — the codec every role uses: Ballista's, then Quiver's `QuiverCodec`;
//! - [`stores`] — object stores opened on the executor from its own settings (credentials
//!   never travel with a job);
//! - [`config`] — scheduler and executor configurations with the above, validated;
//! - [`client`] — [`run_physical`]: submit a physical plan, get its output as a stream;
//! - [`engine`] — [`BallistaEngine`]: the offline engine of `offline_engine: {type: ballista}`;
//! - [`serve`] — run a scheduler or an executor in this process (`quiver ballista ...`);
//! - [`health`] — how many executors a scheduler has;
//! - [`local`] — a scheduler and executors in this process, on loopback.

pub mod addr;
pub mod client;
pub mod codec;
pub mod config;
pub mod engine;
pub mod error;
pub mod health;
pub mod local;
pub mod serve;
pub mod stores;

pub use addr::SchedulerAddr;
pub use client::{RunOptions, run_physical};
pub use engine::BallistaEngine;
pub use error::{Error, Result};
