//! Quiver's online side: the latest feature values per entity, for live models.
//!
//! - [`store`] — the [`OnlineStore`] trait and its contract;
//! - [`redis_store`] — Redis and Redis Cluster;
//! - [`direct`] — single-server reads over pooled connections of their own;
//! - [`embedded`] — a file-backed store (redb) for projects without Redis;
//! - [`value`] — feature values and their binary encoding;
//! - [`keys`] — entity keys;
//! - [`rows`] — from materialized Arrow rows to the latest row per entity;
//! - [`read`] — online reads with statuses.
//!
//! Every store implementation passes one conformance suite (`tests/suite/`), run against
//! the embedded store, a `redis-server`, a Redis Cluster and both over TLS.

pub mod direct;
pub mod embedded;
pub mod error;
pub mod keys;
pub mod read;
pub mod redis_store;
pub mod rows;
pub mod store;
pub mod value;

pub use error::{Error, Result};
pub use store::{EntityKey, OnlineStore, RowWrite};

use std::path::Path;
use std::sync::Arc;

/// Opens the online store a project's config names.
pub async fn open(
    config: &quiver_core::config::OnlineStoreConfig,
    project: &str,
) -> Result<Arc<dyn OnlineStore>> {
    match config {
        quiver_core::config::OnlineStoreConfig::Embedded { path } => {
            Ok(Arc::new(embedded::EmbeddedStore::open(Path::new(path))?))
        }
        quiver_core::config::OnlineStoreConfig::Redis { url, tls_ca, .. } => {
            Ok(Arc::new(redis_store::RedisStore::connect_with_ca(url, project, tls_ca.as_deref()).await?))
        }
    }
}

/// Makes ring rustls's process-wide crypto provider, once. Other crates in the build turn on
/// rustls's aws-lc-rs backend as well, and with two backends rustls has no default: every TLS
/// config built without an explicit provider (tonic's, redis's) would fail.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider was installed first; that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
