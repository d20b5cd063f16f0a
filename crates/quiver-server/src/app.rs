//! A running server: the project it serves ([`crate::domain::Project`]), the tokens it
//! accepts and its metrics. The services hold an `Arc<App>`; the guard reads the tokens and
//! feeds the call metrics.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use quiver_core::config::Config;
use quiver_offline::drift::DriftReport;

use crate::auth::Auth;
use crate::domain::{Project, ProjectOptions, Result};
use crate::metrics::Metrics;

pub use crate::domain::project::WATCH_INTERVAL;

/// The shared state of a running server.
pub struct App {
    project: Arc<Project>,
    /// The tokens and what each method needs (checked by the guard).
    auth: Auth,
    metrics: Metrics,
    /// The latest round of declared drift checks, for the catalog. A `std` mutex: held only
    /// to swap or clone the round, never across an await.
    drift: std::sync::Mutex<Option<Arc<DriftRound>>>,
}

/// One round of the views' declared drift checks (`quiver serve --check-drift-every`).
#[derive(Debug)]
pub struct DriftRound {
    pub finished_at: DateTime<Utc>,
    /// Per view checked, its report or why the check failed.
    pub views: Vec<(String, std::result::Result<DriftReport, String>)>,
}

impl App {
    /// Opens a project's stores with default options. `auth_token` (one admin token; empty
    /// means none) is added to the config's `server.tokens`.
    pub async fn open(
        config: Config,
        memory_limit: usize,
        auth_token: Option<String>,
        work_dir: PathBuf,
    ) -> Result<Arc<App>> {
        Self::open_with(config, auth_token, ProjectOptions::new(memory_limit, work_dir)).await
    }

    /// [`App::open`] with every option.
    pub async fn open_with(
        config: Config,
        auth_token: Option<String>,
        options: ProjectOptions,
    ) -> Result<Arc<App>> {
        let auth = Auth::new(&config.server, auth_token.as_deref());
        let project = Arc::new(Project::open(config, options).await?);
        Ok(Arc::new(App { project, auth, metrics: Metrics::new(), drift: std::sync::Mutex::new(None) }))
    }

    /// The project served: stores, registry, jobs, training sets.
    pub fn project(&self) -> &Arc<Project> {
        &self.project
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Records a round of declared drift checks: in the metrics, and as the latest round.
    pub fn record_drift_round(&self, views: Vec<(String, std::result::Result<DriftReport, String>)>) {
        self.metrics.record_drift_round(&views);
        let round = Arc::new(DriftRound { finished_at: Utc::now(), views });
        *self.drift.lock().unwrap_or_else(|p| p.into_inner()) = Some(round);
    }

    /// The latest round of declared drift checks, if one ran.
    pub fn latest_drift(&self) -> Option<Arc<DriftRound>> {
        self.drift.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The text exposition of every metric, the per-view gauges read now from the served
    /// registry version and the materialization state.
    pub async fn render_metrics(&self) -> String {
        let caches = quiver_offline::session::cache_usage(self.project.lake().session());
        self.metrics.render(self.project.current().as_deref(), self.project.state(), &caches).await
    }
}

/// Keeps the served registry version in step with storage until the app is dropped.
pub fn spawn_registry_watcher(app: &Arc<App>) -> tokio::task::JoinHandle<()> {
    fn project_of(app: &App) -> &Project {
        &app.project
    }
    crate::domain::project::spawn_registry_watcher(app, project_of)
}
