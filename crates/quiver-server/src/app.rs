//! What every handler shares: the project's stores, the registry held in memory, the jobs,
//! the metrics and the tokens.
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
use quiver_offline::check::CheckLimits;
use quiver_offline::lake::Lake;
use quiver_offline::store::OfflineStore;
use quiver_online::OnlineStore;
use tonic::Status;

use crate::auth::Auth;
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
    /// The tokens and what each method needs (checked by the guard).
    pub auth: Auth,
    pub jobs: Jobs,
    pub metrics: Metrics,
    /// Where training sets are built and kept for Flight `DoGet`.
    pub work_dir: PathBuf,
    pub training: TrainingSets,
    /// Bounds on checking definitions sent to `Plan` and `Apply`.
    pub check_limits: CheckLimits,
}

/// Settings of an [`App`] beyond the config file.
#[derive(Clone, Debug)]
pub struct AppOptions {
    /// How long a training set can be fetched after it was built.
    pub ticket_ttl: Duration,
    pub check_limits: CheckLimits,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions { ticket_ttl: crate::training::DEFAULT_TICKET_TTL, check_limits: CheckLimits::default() }
    }
}

impl App {
    /// Opens a project's stores. `auth_token` (one admin token; empty means none) is added to
    /// the config's `server.tokens`.
    pub async fn open(
        config: Config,
        memory_limit: usize,
        auth_token: Option<String>,
        work_dir: PathBuf,
    ) -> Result<Arc<App>, Status> {
        Self::open_with(config, memory_limit, auth_token, work_dir, AppOptions::default()).await
    }

    /// [`App::open`] with settings.
    pub async fn open_with(
        config: Config,
        memory_limit: usize,
        auth_token: Option<String>,
        work_dir: PathBuf,
        options: AppOptions,
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
        let lake = Lake::with_session(config.lake.clone(), ctx).with_roots(config.lake_roots.clone());
        std::fs::create_dir_all(&work_dir)
            .map_err(|e| Status::failed_precondition(format!("work folder {}: {e}", work_dir.display())))?;
        let training = TrainingSets::open(&work_dir, options.ticket_ttl)?;
        let head = registry.head().await.map_err(to_status)?;
        let app = App {
            offline: OfflineStore::new(config.offline_store.clone()),
            state: StateStore::new(&registry),
            registry,
            current: ArcSwapOption::from(head.map(Arc::new)),
            online,
            lake,
            auth: Auth::new(&config.server, auth_token.as_deref()),
            jobs: Jobs::default(),
            metrics: Metrics::new(),
            training,
            work_dir,
            check_limits: options.check_limits,
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
