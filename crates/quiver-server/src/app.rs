//! What every handler shares: the project's stores, the registry held in memory, the jobs,
//! the metrics and the auth token.
//!
//! The current registry version is held as an `Arc<Snapshot>` behind an atomic pointer
//! swap: a read takes the pointer (no lock, no parsing), an apply through this server swaps
//! in the new version at once, and a watcher notices versions applied by other processes
//! (the CLI, another server) within [`WATCH_INTERVAL`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use quiver_core::config::{Config, OnlineStoreConfig};
use quiver_core::registry::{Registry, Snapshot};
use quiver_core::state::StateStore;
use quiver_offline::lake::Lake;
use quiver_offline::store::OfflineStore;
use quiver_online::OnlineStore;
use tonic::Status;

use crate::error::to_status;
use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::training::TrainingSets;

/// How often the registry is checked for versions applied elsewhere.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// The shared state of a running server.
pub struct App {
    pub config: Config,
    pub registry: Registry,
    current: ArcSwapOption<Snapshot>,
    pub online: Arc<dyn OnlineStore>,
    pub lake: Lake,
    pub offline: OfflineStore,
    pub state: StateStore,
    /// Required as `authorization: Bearer <token>` on writing calls when set.
    auth_token: Option<String>,
    pub jobs: Jobs,
    pub metrics: Metrics,
    /// Where training sets are built and kept for Flight `DoGet`.
    pub work_dir: PathBuf,
    pub training: TrainingSets,
}

impl App {
    /// Opens a project's stores. `auth_token`: an empty string means none.
    pub async fn open(
        config: Config,
        memory_limit: usize,
        auth_token: Option<String>,
        work_dir: PathBuf,
    ) -> Result<Arc<App>, Status> {
        if config.offline_store.scheme() != "file" {
            return Err(Status::failed_precondition(format!(
                "offline_store {}: only local paths are supported for the offline store so far",
                config.offline_store
            )));
        }
        let registry = Registry::open(&config.registry, &config.project).map_err(to_status)?;
        let online = quiver_online::open(&config.online_store, &config.project).await.map_err(to_status)?;
        let ctx = quiver_offline::session::offline_session(memory_limit).map_err(to_status)?;
        let lake = Lake::with_session(config.lake.clone(), ctx);
        std::fs::create_dir_all(&work_dir)
            .map_err(|e| Status::failed_precondition(format!("work folder {}: {e}", work_dir.display())))?;
        // Training sets of an earlier run of the server cannot be fetched any more.
        let _ = std::fs::remove_dir_all(work_dir.join("training_sets"));
        let head = registry.head().await.map_err(to_status)?;
        let app = App {
            offline: OfflineStore::new(config.offline_store.clone()),
            state: StateStore::new(&registry),
            registry,
            current: ArcSwapOption::from(head.map(Arc::new)),
            online,
            lake,
            auth_token: auth_token.filter(|t| !t.is_empty()),
            jobs: Jobs::default(),
            metrics: Metrics::new(),
            training: TrainingSets::new(&work_dir),
            work_dir,
            config,
        };
        Ok(Arc::new(app))
    }

    /// The current registry version (lock-free).
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// The current version, or FAILED_PRECONDITION when nothing was applied yet.
    pub fn require_current(&self) -> Result<Arc<Snapshot>, Status> {
        self.current().ok_or_else(|| {
            Status::failed_precondition(
                "nothing applied yet: apply definitions (RegistryService.Apply) first",
            )
        })
    }

    /// A given registry version: 0 or the current one from memory, others from storage.
    pub async fn version(&self, version: u64) -> Result<Arc<Snapshot>, Status> {
        let current = self.require_current()?;
        if version == 0 || version == current.version {
            return Ok(current);
        }
        Ok(Arc::new(self.registry.get(version).await.map_err(to_status)?))
    }

    /// Installs `snapshot` unless a newer version is already in place.
    pub fn install(&self, snapshot: Arc<Snapshot>) {
        self.current.rcu(|cur| match cur {
            Some(c) if c.version >= snapshot.version => Some(c.clone()),
            _ => Some(snapshot.clone()),
        });
    }

    /// Checks the registry once; installs a newer version if there is one.
    pub async fn refresh(&self) -> Result<(), Status> {
        let latest = self.registry.head_version().await.map_err(to_status)?;
        let held = self.current().map_or(0, |c| c.version);
        if latest > held {
            let snapshot = self.registry.get(latest).await.map_err(to_status)?;
            tracing::info!(version = latest, "registry version installed");
            self.install(Arc::new(snapshot));
        }
        Ok(())
    }

    /// Refuses a writing call without the right bearer token (when the server has one).
    pub fn authorize(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(expected) = &self.auth_token else { return Ok(()) };
        let given = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        match given {
            None => Err(Status::unauthenticated(
                "this call writes and the server requires a token: send `authorization: Bearer <token>`",
            )),
            Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("the bearer token is not the server's token")),
        }
    }

    /// Whether online rows get an expiry from their view's ttl.
    pub fn online_expiry(&self) -> bool {
        matches!(self.config.online_store, OnlineStoreConfig::Redis { expire_keys: true, .. })
    }
}

/// NOT_FOUND for a feature view missing from a registry version, with the closest name.
pub fn view_not_found(snapshot: &Snapshot, name: &str) -> Status {
    let known = snapshot.definitions.feature_views.iter().map(|v| v.name.as_str());
    Status::not_found(format!(
        "feature view '{name}' is not in registry version {}{}",
        snapshot.version,
        quiver_core::definitions::suggest(name, known)
    ))
}

/// Compares without returning early at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keeps the in-memory registry in step with storage until the app is dropped.
pub fn spawn_registry_watcher(app: &Arc<App>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            if let Err(e) = app.refresh().await {
                tracing::warn!(error = %e.message(), "cannot check the registry for new versions");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret-longer"));
    }
}
