//! A project as the server holds it: its stores, the registry version being served, the
//! materialization jobs and the training sets.
//!
//! The current registry version is an `Arc<Snapshot>` behind an atomic pointer swap: a read
//! takes the pointer (no lock, no parsing), an apply through this server swaps in the new
//! version at once, and a watcher notices versions applied by other processes (the CLI,
//! another server) within [`WATCH_INTERVAL`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use quiver_core::config::Config;
use quiver_core::registry::{Registry, Snapshot};
use quiver_core::state::StateStore;
use quiver_offline::check::CheckLimits;
use quiver_offline::engine::{Engine, LocalEngine};
use quiver_offline::lake::Lake;
use quiver_offline::lease::LeaseSettings;
use quiver_offline::session::SessionOverrides;
use quiver_offline::store::OfflineStore;
use quiver_online::OnlineStore;

use super::jobs::Jobs;
use super::training::TrainingSets;
use super::{Error, Result};

/// How often the registry is checked for versions applied elsewhere.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Settings of a [`Project`] beyond the config file, read by the caller (CLI flags,
/// environment).
#[derive(Clone, Debug)]
pub struct ProjectOptions {
    /// Memory the offline engine may use, bytes.
    pub memory_limit: usize,
    /// Where training sets are built and kept for Flight `DoGet`.
    pub work_dir: PathBuf,
    /// How long a training set can be fetched after it was built.
    pub ticket_ttl: Duration,
    /// Bounds on checking definitions sent to `Plan` and `Apply`.
    pub check_limits: CheckLimits,
    /// Rows of a materialized window per Parquet writer at least.
    pub rows_per_writer: usize,
    /// DataFusion options for the offline session (none by default; the server binary
    /// passes the operator's `DATAFUSION_…` variables).
    pub session_overrides: SessionOverrides,
    /// Lifetime of the materialization leases this server takes.
    pub lease_ttl: Duration,
    /// How far past now a pushed event time may be.
    pub push_max_future: Duration,
    /// How often the views' declared drift checks run (never when `None`).
    pub drift_check_every: Option<Duration>,
    /// Where offline jobs (training sets, materialization) run (this process unless the binary opens a cluster's).
    pub engine: Arc<dyn Engine>,
}

impl ProjectOptions {
    /// The defaults, with the memory limit and work folder given.
    pub fn new(memory_limit: usize, work_dir: PathBuf) -> Self {
        ProjectOptions {
            memory_limit,
            work_dir,
            ticket_ttl: super::training::DEFAULT_TICKET_TTL,
            check_limits: CheckLimits::default(),
            rows_per_writer: quiver_offline::store::MIN_ROWS_PER_WRITER,
            session_overrides: SessionOverrides::default(),
            lease_ttl: quiver_offline::lease::DEFAULT_TTL,
            push_max_future: quiver_offline::push::DEFAULT_MAX_FUTURE,
            drift_check_every: None,
            engine: Arc::new(LocalEngine),
        }
    }
}

/// A project's stores and the registry version being served.
pub struct Project {
    config: Config,
    registry: Registry,
    current: ArcSwapOption<Snapshot>,
    online: Arc<dyn OnlineStore>,
    lake: Lake,
    offline: OfflineStore,
    state: StateStore,
    jobs: Jobs,
    training: TrainingSets,
    work_dir: PathBuf,
    check_limits: CheckLimits,
    rows_per_writer: usize,
    lease_ttl: Duration,
    push_max_future: Duration,
    drift_check_every: Option<Duration>,
    engine: Arc<dyn Engine>,
}

impl Project {
    /// Opens a project's stores and takes its work folder.
    pub async fn open(config: Config, options: ProjectOptions) -> Result<Project> {
        let registry = Registry::open(&config.registry, &config.project)?;
        let online = quiver_online::open(&config.online_store, &config.project).await?;
        let ctx = quiver_offline::session::offline_session(options.memory_limit, &options.session_overrides)?;
        let offline = OfflineStore::open(config.offline_store.clone())?;
        offline.verify().await?;
        offline.register(&ctx)?;
        let lake = Lake::with_session(config.lake.clone(), ctx).with_roots(config.lake_roots.clone());
        let work_dir = options.work_dir;
        std::fs::create_dir_all(&work_dir)
            .map_err(|e| Error::NotReady(format!("work folder {}: {e}", work_dir.display())))?;
        let training = TrainingSets::open(&work_dir, &offline, options.ticket_ttl)?;
        let head = registry.head().await?;
        let (objects, root) = offline.objects()?;
        let state = offline.state(&registry)?;
        Ok(Project {
            offline,
            state,
            registry,
            current: ArcSwapOption::from(head.map(Arc::new)),
            online,
            lake,
            jobs: Jobs::shared(objects, &root),
            training,
            work_dir,
            check_limits: options.check_limits,
            rows_per_writer: options.rows_per_writer,
            lease_ttl: options.lease_ttl,
            push_max_future: options.push_max_future,
            drift_check_every: options.drift_check_every,
            engine: options.engine,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn online(&self) -> &Arc<dyn OnlineStore> {
        &self.online
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn offline(&self) -> &OfflineStore {
        &self.offline
    }

    /// The materialization state (runs, watermarks, freshness) of every view.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    pub fn training(&self) -> &TrainingSets {
        &self.training
    }

    /// Where offline jobs (training sets, materialization) run.
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// The offline engine, shared (a materialization job holds it).
    pub fn engine_arc(&self) -> Arc<dyn Engine> {
        self.engine.clone()
    }

    /// The folder training sets are built in.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// How this server takes a view's lease for `what` (a job, a push): named after this
    /// process, refused at once when another holds it.
    pub fn lease(&self, what: &str) -> LeaseSettings {
        LeaseSettings { ttl: self.lease_ttl, ..LeaseSettings::for_process(&format!("quiver serve {what}")) }
    }

    /// How far past now a pushed event time may be.
    pub fn push_max_future(&self) -> Duration {
        self.push_max_future
    }

    /// How often the declared drift checks run, if at all.
    pub fn drift_check_every(&self) -> Option<Duration> {
        self.drift_check_every
    }

    pub fn check_limits(&self) -> CheckLimits {
        self.check_limits
    }

    pub fn rows_per_writer(&self) -> usize {
        self.rows_per_writer
    }

    /// Whether online rows get an expiry from their view's ttl.
    pub fn online_expiry(&self) -> bool {
        self.config.online_store.expires_keys()
    }

    /// The current registry version (lock-free).
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// The current version; an error when nothing was applied yet.
    pub fn require_current(&self) -> Result<Arc<Snapshot>> {
        self.current().ok_or_else(|| {
            Error::NotReady("nothing applied yet: apply definitions (RegistryService.Apply) first".into())
        })
    }

    /// A given registry version: 0 or the current one from memory, others from storage.
    pub async fn version(&self, version: u64) -> Result<Arc<Snapshot>> {
        let current = self.require_current()?;
        if version == 0 || version == current.version {
            return Ok(current);
        }
        Ok(Arc::new(self.registry.get(version).await?))
    }

    /// Installs `snapshot` unless a newer version is already in place.
    pub fn install(&self, snapshot: Arc<Snapshot>) {
        self.current.rcu(|cur| match cur {
            Some(c) if c.version >= snapshot.version => Some(c.clone()),
            _ => Some(snapshot.clone()),
        });
    }

    /// Checks the registry once; installs a newer version if there is one. The check is one
    /// HEAD of the version after the one held (the watcher makes it four times a second, on
    /// an object store too); only when that exists are the versions listed, to install the
    /// newest even when several were applied since.
    pub async fn refresh(&self) -> Result<()> {
        let held = self.current().map_or(0, |c| c.version);
        if !self.registry.has_version(held + 1).await? {
            return Ok(());
        }
        let latest = self.registry.head_version().await?;
        if latest > held {
            let snapshot = self.registry.get(latest).await?;
            tracing::info!(version = latest, "registry version installed");
            self.install(Arc::new(snapshot));
        }
        Ok(())
    }
}

/// A feature view of a registry version, or NotFound naming the closest known view.
pub fn view<'a>(snapshot: &'a Snapshot, name: &str) -> Result<&'a quiver_core::definitions::FeatureView> {
    snapshot.definitions.feature_view(name).ok_or_else(|| {
        let known = snapshot.definitions.feature_views.iter().map(|v| v.name.as_str());
        Error::NotFound(format!(
            "feature view '{name}' is not in registry version {}{}",
            snapshot.version,
            quiver_core::definitions::suggest(name, known)
        ))
    })
}

/// Keeps the project's registry version in step with storage until it is dropped.
pub fn spawn_registry_watcher<T: Send + Sync + 'static>(
    owner: &Arc<T>,
    project: fn(&T) -> &Project,
) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(owner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(owner) = weak.upgrade() else { return };
            if let Err(e) = project(&owner).refresh().await {
                tracing::warn!(error = %e, "cannot check the registry for new versions");
            }
        }
    })
}
