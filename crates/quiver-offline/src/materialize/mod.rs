//! Materialization: computing a window of each feature view from the lake and committing it
//! to the view's offline table, then writing its latest rows online and recording the run.
//!
//! Per view, per run:
//! 1. the view's frame (source, or its transform) is filtered to the window and laid out as
//!    the offline table (`source`);
//! 2. the rows are counted on their way into the sorts, rows missing a join key left out and
//!    counted apart for the report (`progress`), each writer partition
//!    is sorted in the latest-row order, and the partitions stream into one Delta commit that
//!    replaces the window ([`crate::store`]);
//! 3. on the way into the writers, the last row of each entity is kept (`online`); once the
//!    commit succeeded, views with `online: true` get those rows in the online store,
//!    newer-wins, so a backfill of an older window never moves an online value backwards;
//! 4. the run is recorded and the watermark moved, from the view's report. A failed or killed
//!    run leaves the table and the watermark as they were.
//!
//! The whole of a view's run holds the view's lease ([`crate::lease`]): a second process
//! materializing or pushing the same view meanwhile is refused (or waits), and the commit is
//! made only while the lease is surely held.

mod online;
mod progress;
mod remote;
mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{RecordBatch, TimestampMicrosecondArray};
use datafusion::physical_plan::ExecutionPlanProperties;
use quiver_core::definitions::{Definitions, FeatureView};
use quiver_core::registry::Registry;
use quiver_core::state::{ExpectationFailure, FeatureStatistics, RunRecord, RunStatus, StateStore};
use quiver_online::OnlineStore;
use serde::{Deserialize, Serialize};

pub use online::{RebuildReport, rebuild_online};
pub(crate) use progress::CountRowsExec;
pub use progress::{NoProgress, Progress, ViewRows};
pub use remote::{WriteFilesExec, WriteSpec};
pub use source::{data_start, window_rows};

use crate::engine::{Engine, LocalEngine};
use crate::error::{Error, Result};
use crate::expect::Checker;
use crate::lake::Lake;
use crate::layout::{EVENT_TIMESTAMP, Window, latest_row_ordering, offline_schema};
use crate::lease::{Lease, LeaseSettings};
use crate::rowsort::SortRowsExec;
use crate::stats::Statistics;
use crate::store::{CommitGuard, Files, OfflineStore, RowObserver, WriteOutcome, WriteWatch};
use online::{Candidates, write_latest};

/// What to materialize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Exactly `[start, end)` for every selected view.
    Window { start: DateTime<Utc>, end: DateTime<Utc> },
    /// From each view's watermark (or the start of its data) to `end`.
    Incremental { end: DateTime<Utc> },
}

/// The outcome for one view.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewReport {
    pub view: String,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub rows: u64,
    /// Rows of the window left out because a join key was missing (they name no entity).
    #[serde(default)]
    pub dropped_null_keys: u64,
    /// Rows of the source without an event time (they belong to no window), left out.
    #[serde(default)]
    pub dropped_null_event_times: u64,
    pub offline_version: Option<u64>,
    pub seconds: f64,
    /// Entities written to the online store (views with `online: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_rows: Option<u64>,
    /// Seconds spent on the online step (included in `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_seconds: Option<f64>,
    /// Set when the run rebuilt the view's table under its current columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<Rebuilt>,
    /// Why nothing was done (already up to date, no data), when that is the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The view's expectations the window broke: committed anyway under `on_failure: warn`,
    /// the reason nothing was committed under `fail`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<ExpectationFailure>,
    /// Per feature, the statistics of the window's rows (kept with the run record; `quiver
    /// stats` shows them).
    #[serde(skip)]
    pub statistics: BTreeMap<String, FeatureStatistics>,
}

/// What a rebuild replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuilt {
    /// The table version before the rebuild (its rows stay readable at that version).
    pub previous_version: Option<u64>,
    /// Pushed rows the rebuilt table no longer holds (they had the old columns).
    pub pushed_rows_left_behind: u64,
}

/// Materializes views: the registry's applied definitions, the lake, the offline store and
/// the state store together.
pub struct Materializer {
    pub lake: Lake,
    pub store: OfflineStore,
    pub registry: Registry,
    pub state: StateStore,
    /// Where views with `online: true` get their latest rows; `None` skips the online step.
    pub online: Option<Arc<dyn OnlineStore>>,
    /// Give online rows an expiry at event time + ttl.
    pub online_expiry: bool,
    /// Rows of a window per Parquet writer at least (each writer makes files of its own);
    /// [`crate::store::MIN_ROWS_PER_WRITER`] unless the caller was told otherwise
    /// ([`rows_per_writer_setting`]).
    pub rows_per_writer: usize,
    /// Who this process is, how long its leases live, and how long to wait for a view
    /// another process holds.
    pub lease: LeaseSettings,
    /// Accept a window ending more than [`FUTURE_ALLOWANCE`] after now.
    pub allow_future: bool,
    /// Replace each named view's whole table with the run's window, under the view's
    /// current columns (for a view whose keys or features changed), and restart its
    /// watermark from that window. Needs the views named.
    pub rebuild: bool,
    /// Where windows are read, sorted and written: this process ([`LocalEngine`]), or a
    /// cluster's executors, which write the files for this process to commit.
    pub engine: Arc<dyn Engine>,
}

/// How far past now a window may end without `allow_future` (clocks differ a little).
pub const FUTURE_ALLOWANCE: chrono::Duration = chrono::Duration::minutes(5);

/// One view of a run: what it runs on and how.
#[derive(Clone, Copy)]
struct ViewTask<'a> {
    defs: &'a Definitions,
    registry_version: u64,
    view: &'a FeatureView,
    span: Span,
    per_writer: usize,
    progress: &'a dyn Progress,
}

/// What a view's offline write produced: the commit, and the latest row per entity for the
/// online store (empty when the view is not online).
struct ViewWrite {
    outcome: WriteOutcome,
    /// Set for a rebuild.
    rebuilt: Option<Rebuilt>,
    /// Rows of the window left out for a missing join key.
    dropped_null_keys: u64,
    /// Rows of the source left out for a missing event time.
    dropped_null_event_times: u64,
    latest: Vec<quiver_online::RowWrite>,
    /// Newest event time written, `None` for an empty window.
    newest: Option<DateTime<Utc>>,
}

/// What watched a window's rows on their way into the writers.
#[derive(Default)]
struct Findings {
    checker: Option<Arc<Checker>>,
    statistics: Option<Arc<Statistics>>,
}

/// The seed of a window's statistics samples: the same view and window sample the same way.
fn sample_seed(view: &str, window: &Window) -> u64 {
    view.bytes().fold(window.start().timestamp_micros() as u64, |h, b| h.rotate_left(5) ^ u64::from(b))
}

/// The newest event time of a batch in the offline layout, in microseconds.
fn newest_event_us(batch: &RecordBatch) -> Option<i64> {
    let column = batch.column_by_name(EVENT_TIMESTAMP)?;
    let times = column.as_any().downcast_ref::<TimestampMicrosecondArray>()?;
    datafusion::arrow::compute::max(times)
}

/// The record of a run, from its report (which has its window: runs without one are
/// skipped, not recorded).
fn run_record(
    report: &ViewReport,
    window: (DateTime<Utc>, DateTime<Utc>),
    started_at: DateTime<Utc>,
    registry_version: u64,
) -> RunRecord {
    RunRecord {
        run_id: format!("{}-{}", started_at.format("%Y%m%dT%H%M%S%.6fZ"), report.view),
        started_at,
        finished_at: Utc::now(),
        window_start: window.0,
        window_end: window.1,
        status: if report.error.is_some() { RunStatus::Failed } else { RunStatus::Succeeded },
        rows: report.rows,
        dropped_null_keys: report.dropped_null_keys,
        dropped_null_event_times: report.dropped_null_event_times,
        offline_version: report.offline_version,
        online_rows: report.online_rows,
        registry_version,
        error: report.error.clone(),
        expectations: report.expectations.clone(),
        statistics: report.statistics.clone(),
    }
}

/// The environment variable that sets [`crate::store::MIN_ROWS_PER_WRITER`] for a run.
pub const MIN_ROWS_PER_WRITER_VAR: &str = "QUIVER_MIN_ROWS_PER_WRITER";

/// Rows per writer at least, from the value of [`MIN_ROWS_PER_WRITER_VAR`] (`None`: not set,
/// the default). The CLI and the server read the variable; the library reads no environment.
pub fn rows_per_writer_setting(value: Option<&str>) -> Result<usize> {
    let Some(text) = value else { return Ok(crate::store::MIN_ROWS_PER_WRITER) };
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::InvalidInput(format!(
            "{MIN_ROWS_PER_WRITER_VAR}={text:?}: expected a whole number of rows, at least 1"
        ))),
    }
}

impl Materializer {
    /// Materializes from `lake` into `store` the views `registry` holds, recording runs in
    /// the store's state ([`OfflineStore::state`]); no online store, the default rows per
    /// writer.
    pub fn new(lake: Lake, store: OfflineStore, registry: Registry) -> Result<Self> {
        Ok(Materializer {
            lake,
            state: store.state(&registry)?,
            store,
            registry,
            online: None,
            online_expiry: false,
            rows_per_writer: crate::store::MIN_ROWS_PER_WRITER,
            lease: LeaseSettings::for_process("quiver"),
            allow_future: false,
            rebuild: false,
            engine: Arc::new(LocalEngine),
        })
    }

    /// Runs `span` for the named views (all views when empty), one after the other. A view
    /// that fails is reported and the others still run; the result lists every view.
    pub async fn run(
        &self,
        span: Span,
        views: &[String],
        progress: &dyn Progress,
    ) -> Result<Vec<ViewReport>> {
        if self.rebuild && views.is_empty() {
            return Err(Error::InvalidInput(
                "a rebuild replaces whole tables: name the views to rebuild (--views)".into(),
            ));
        }
        let head = self.registry.head().await?.ok_or_else(|| {
            Error::InvalidInput("nothing applied yet: run `quiver apply` before materializing".into())
        })?;
        let defs = &head.definitions;
        let selected: Vec<&FeatureView> = if views.is_empty() {
            defs.feature_views.iter().collect()
        } else {
            let mut out = Vec::new();
            for name in views {
                out.push(defs.feature_view(name).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "unknown feature view '{name}'{}",
                        quiver_core::definitions::suggest(
                            name,
                            defs.feature_views.iter().map(|v| v.name.as_str())
                        )
                    ))
                })?);
            }
            out
        };
        let (first, end) = match span {
            Span::Window { start, end } => (Some(start), end),
            Span::Incremental { end } => (None, end),
        };
        // A window that cannot be, or ends in the future, is refused before any view runs.
        if let Some(start) = first {
            Window::new(start, end)?;
        } else if end.timestamp_nanos_opt().is_none() {
            return Err(Error::InvalidInput(format!(
                "the end {end} is outside the range of nanosecond timestamps (1677-2262)"
            )));
        }
        if !self.allow_future && end > Utc::now() + FUTURE_ALLOWANCE {
            return Err(Error::InvalidInput(format!(
                "the window ends at {end}, in the future: rows with later event times may still \
                 arrive, and an incremental run would skip them. End it at `now` (or earlier), or \
                 pass --allow-future if the source really holds future-dated rows"
            )));
        }
        let per_writer = self.rows_per_writer.max(1);
        let mut reports = Vec::new();
        for view in selected {
            let task = ViewTask { defs, registry_version: head.version, view, span, per_writer, progress };
            let report = self.run_view(task).await;
            progress.finish_view(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    /// One view's run: its lease, then the run under it.
    async fn run_view(&self, task: ViewTask<'_>) -> ViewReport {
        let view = task.view;
        let mut report = ViewReport {
            view: view.name.clone(),
            window_start: None,
            window_end: None,
            rows: 0,
            dropped_null_keys: 0,
            dropped_null_event_times: 0,
            offline_version: None,
            seconds: 0.0,
            rebuilt: None,
            skipped: None,
            error: None,
            online_rows: None,
            online_seconds: None,
            expectations: Vec::new(),
            statistics: BTreeMap::new(),
        };
        let lease = match self.store.leases() {
            Ok(leases) => leases.acquire(&view.name, &self.lease).await,
            Err(e) => Err(e),
        };
        let lease = match lease {
            Ok(lease) => Arc::new(lease),
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let report = self.run_leased(task, &lease, report).await;
        if let Ok(lease) = Arc::try_unwrap(lease) {
            lease.release().await;
        }
        report
    }

    async fn run_leased(&self, task: ViewTask<'_>, lease: &Arc<Lease>, mut report: ViewReport) -> ViewReport {
        let ViewTask { defs, registry_version, view, span, .. } = task;
        let started = Instant::now();
        let started_at = Utc::now();
        let mut state = match self.state.view(&view.name).await {
            Ok(s) => s,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let (start, end) = match span {
            Span::Window { start, end } => (start, end),
            Span::Incremental { end } => match state.watermark.filter(|_| !self.rebuild) {
                // A watermark later than this run's start (set on a machine whose clock was
                // ahead) restarts after the newest row read so far.
                Some(w) if w > started_at => {
                    let resume = state.newest_event.map_or(w, |n| n + chrono::Duration::microseconds(1));
                    (w.min(resume), end)
                }
                Some(w) => (w, end),
                None => match data_start(&self.lake, defs, view).await {
                    Ok(Some(s)) => (s, end),
                    Ok(None) => {
                        report.skipped = Some("the source has no rows".into());
                        return report;
                    }
                    Err(e) => {
                        report.error = Some(e.to_string());
                        return report;
                    }
                },
            },
        };
        report.window_start = Some(start);
        report.window_end = Some(end);
        if start >= end && !self.rebuild {
            report.skipped = Some(format!(
                "already materialized up to {start}; an online store that is new or lost its rows is \
                 refilled by `quiver online rebuild`"
            ));
            return report;
        }
        let mut found = Findings::default();
        let written = match Window::new(start, end) {
            Ok(window) => self.write(task, &window, lease, &mut found).await,
            Err(e) => Err(e),
        };
        // What watched the rows speaks of the whole window only when every row went by: the
        // write succeeded, or the expectations themselves stopped the commit.
        let whole = matches!(written, Ok(_) | Err(Error::Expectations(_)));
        if let Some(statistics) = found.statistics.filter(|_| whole) {
            report.statistics = statistics.finish();
        }
        if let Some(checker) = found.checker.filter(|_| whole) {
            report.expectations = checker.failures(Some(end));
            if written.is_ok() {
                for failure in &report.expectations {
                    tracing::warn!(view = %view.name, "expectation broken, window committed (on_failure: warn): {failure}");
                }
            }
        }
        match written {
            Ok(w) => {
                crate::fault::point("materialize.after_commit");
                report.rows = w.outcome.rows;
                report.dropped_null_keys = w.dropped_null_keys;
                report.dropped_null_event_times = w.dropped_null_event_times;
                if let Some(rebuilt) = w.rebuilt {
                    // The table now holds this window only: the watermark restarts from it.
                    state.watermark = None;
                    state.newest_event = None;
                    report.rebuilt = Some(rebuilt);
                }
                report.offline_version = Some(w.outcome.version);
                if let Some(t) = w.newest {
                    state.newest_event = Some(state.newest_event.map_or(t, |n| n.max(t)));
                }
                if let (true, Some(online)) = (view.online, &self.online) {
                    let online_started = Instant::now();
                    let result = write_latest(online.as_ref(), w.latest).await;
                    report.online_seconds = Some(online_started.elapsed().as_secs_f64());
                    match result {
                        Ok(n) => report.online_rows = Some(n),
                        Err(e) => {
                            report.error = Some(format!("offline commit done, online write failed: {e}"))
                        }
                    }
                }
            }
            Err(e) => report.error = Some(e.to_string()),
        }
        report.seconds = started.elapsed().as_secs_f64();
        state.record(run_record(&report, (start, end), started_at, registry_version));
        // The state is written under the lease, as the commit is: a holder whose lease was
        // taken over (or could not be renewed) must not overwrite the watermark and runs of
        // the process that holds the view now. Not recording is safe: the next incremental
        // run redoes the window.
        if let Err(lost) = lease.check() {
            tracing::error!(view = %view.name, error = %lost, "the run was not recorded: the lease was lost");
            report.error.get_or_insert(format!(
                "the data was committed but the run was not recorded: the lease on feature view \
                 '{}' was lost first (taken over, or not renewed in time); the next incremental \
                 run redoes the window",
                view.name
            ));
        } else if let Err(e) = self.state.save(&state).await {
            report
                .error
                .get_or_insert(format!("the data was committed but the run could not be recorded: {e}"));
        }
        report
    }

    /// Writes the window of `task`'s view; what watched the rows (expectations, statistics)
    /// is left in `found`, wanted whether the write failed or not.
    async fn write(
        &self,
        task: ViewTask<'_>,
        window: &Window,
        lease: &Arc<Lease>,
        found: &mut Findings,
    ) -> Result<ViewWrite> {
        let ViewTask { defs, view, per_writer, progress, .. } = task;
        let rows = window_rows(&self.lake, defs, view, window).await?.create_physical_plan().await?;
        crate::fault::point("materialize.after_plan");
        let elsewhere = self.engine.runs_elsewhere();
        let rows = if elsewhere {
            // On a cluster the window is shuffled by its join keys: every row of an entity
            // meets in one partition, on one executor.
            let schema = rows.schema();
            let keys = (0..defs.join_keys(view).len())
                .map(|i| {
                    Arc::new(datafusion::physical_expr::expressions::Column::new(schema.field(i).name(), i))
                        as Arc<dyn datafusion::physical_expr::PhysicalExpr>
                })
                .collect();
            let partitions =
                datafusion::physical_plan::Partitioning::Hash(keys, self.engine.join_partitions());
            Arc::new(datafusion::physical_plan::repartition::RepartitionExec::try_new(rows, partitions)?)
        } else {
            let target_partitions = self.lake.session().copied_config().target_partitions();
            source::writer_partitions(rows, target_partitions, per_writer)?
        };
        let partitions = rows.output_partitioning().partition_count();
        let ordering = latest_row_ordering(&rows.schema())?;
        let schema = rows.schema();
        let counters = ViewRows { partitions, ..ViewRows::default() };
        let pool = self.lake.session().runtime_env().memory_pool.clone();
        let checker = Checker::new(defs, view, &schema, partitions, false, Some(&pool))?.map(Arc::new);
        let seed = sample_seed(&view.name, window);
        let statistics = Arc::new(Statistics::new(view, &schema, partitions, seed));
        found.checker.clone_from(&checker);
        found.statistics = Some(statistics.clone());
        let counted = Arc::new(CountRowsExec::new(rows, defs.join_keys(view).len(), &counters));
        // Each partition is sorted on its own (on row-format keys, in memory when the pool
        // allows) and written by its own writer: no merge into one stream, and Parquet
        // encoding runs on every core.
        let plan: Arc<dyn datafusion::physical_plan::ExecutionPlan> =
            Arc::new(SortRowsExec::new(ordering, counted));
        progress.start_view(&view.name, counters.clone());
        // The online candidates are kept until the offline commit succeeds, so the online
        // store never gets values the offline store did not.
        let candidates = (view.online && self.online.is_some())
            .then(|| Arc::new(Candidates::new(defs.join_keys(view).len(), partitions)));
        // The newest event time is tracked on the way too, for freshness.
        let newest = Arc::new(AtomicI64::new(i64::MIN));
        let (files, observer): (Files<'_>, Option<RowObserver>) = if elsewhere {
            let (only_view, check_seeds) = (defs.only_view(view), checker.as_ref().map(|c| c.seed_values()));
            let (checker, candidates, counters, newest, statistics) =
                (checker.clone(), candidates.clone(), counters.clone(), newest.clone(), statistics.clone());
            let engine = self.engine.clone();
            let session = self.lake.session();
            let write: crate::store::WriteElsewhere<'_> = Box::new(move |target| {
                Box::pin(async move {
                    let spec = WriteSpec {
                        view: view.name.clone(),
                        target,
                        defs: only_view,
                        partitions,
                        sample_seed: seed,
                        check_seeds,
                        online: candidates.is_some(),
                    };
                    let plan = Arc::new(WriteFilesExec::new(plan, spec));
                    let stream = engine.execute(session, plan).await?;
                    let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream).await?;
                    let sinks = remote::Sinks {
                        statistics: &statistics,
                        checker: checker.as_deref(),
                        candidates: candidates.as_deref(),
                        counters: &counters,
                        newest: &newest,
                    };
                    let merged = remote::merge(&view.name, partitions, &batches, &sinks)?;
                    Ok((merged.adds, merged.rows))
                })
            });
            (Files::Elsewhere(write), None)
        } else {
            let observer: RowObserver = {
                let candidates = candidates.clone();
                let newest = newest.clone();
                let checker = checker.clone();
                Arc::new(move |partition, batch| {
                    if let Some(t) = newest_event_us(batch) {
                        newest.fetch_max(t, Ordering::Relaxed);
                    }
                    if let Some(c) = &checker {
                        c.observe(partition, batch)?;
                    }
                    statistics.observe(partition, batch)?;
                    match &candidates {
                        Some(c) => c.push(partition, batch),
                        None => Ok(()),
                    }
                })
            };
            (Files::Here(plan), Some(observer))
        };
        // Under `on_failure: fail`, broken expectations stop the commit itself.
        let guard: CommitGuard = {
            let lease = lease.clone();
            let end = window.end();
            Arc::new(move || {
                lease.check()?;
                checker.as_ref().map_or(Ok(()), |c| c.verdict(Some(end)))
            })
        };
        let watch = WriteWatch { rows: counters.written.clone(), observer, guard: Some(guard) };
        let session = self.lake.session();
        let (outcome, rebuilt) = if self.rebuild {
            let previous_version = self.store.latest_version(&view.name).await?;
            let (outcome, pushed_rows_left_behind) = self
                .store
                .rebuild_table(session, &view.name, offline_schema(defs, view), files, window, watch)
                .await?;
            (outcome, Some(Rebuilt { previous_version, pushed_rows_left_behind }))
        } else {
            let outcome = self
                .store
                .write_window(session, &view.name, offline_schema(defs, view), files, window, watch)
                .await?;
            (outcome, None)
        };
        let latest = match candidates {
            None => Vec::new(),
            Some(c) => c.finish(defs, view, self.online_expiry, &schema)?,
        };
        let newest = Some(newest.load(Ordering::Relaxed))
            .filter(|t| *t != i64::MIN)
            .and_then(DateTime::<Utc>::from_timestamp_micros);
        let dropped_null_keys = counters.null_keys.load(Ordering::Relaxed);
        if dropped_null_keys > 0 {
            tracing::warn!(
                view = %view.name,
                rows = dropped_null_keys,
                "rows of the window lack a join key and were left out"
            );
        }
        let dropped_null_event_times = counters.null_event_times.load(Ordering::Relaxed);
        if dropped_null_event_times > 0 {
            tracing::warn!(
                view = %view.name,
                rows = dropped_null_event_times,
                "rows of the source lack an event time, belong to no window and were left out"
            );
        }
        Ok(ViewWrite { outcome, rebuilt, dropped_null_keys, dropped_null_event_times, latest, newest })
    }
}
