//! Materialization: computing a window of each feature view from the lake and committing it
//! to the view's offline table, then recording the run and moving the view's watermark.
//!
//! Per view, per run:
//! 1. the view's frame (source, or its transform) is filtered to `start <= event time < end`
//!    and to rows whose join keys are all present;
//! 2. columns are cast to the declared types and laid out as the offline table
//!    ([`crate::store::offline_schema`]), sorted by (keys, event time, created time);
//! 3. the rows stream into one Delta commit that replaces the window;
//! 4. only then the run is recorded and the watermark moved (a failed or killed run leaves
//!    both the table and the watermark as they were).
//!
//! 5. for views with `online: true` and an online store configured: the latest row per
//!    entity of the window (same rule as the point-in-time join) is written to the online
//!    store in pipelined batches, newer-wins, so a backfill of an older window never moves an
//!    online value backwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use datafusion::prelude::{DataFrame, cast};
use futures::StreamExt;
use quiver_core::definitions::{Definitions, FeatureView};
use quiver_core::registry::Registry;
use quiver_core::state::{RunRecord, RunStatus, StateStore};
use serde::Serialize;

use quiver_online::OnlineStore;
use quiver_online::rows::LatestRows;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::store::{
    CREATED_TIMESTAMP, EVENT_TIMESTAMP, OfflineStore, RowObserver, WriteWatch, offline_schema,
    stored_timestamp_type,
};
use crate::types::{UTC, arrow_type};

/// What to materialize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Exactly `[start, end)` for every selected view.
    Window { start: DateTime<Utc>, end: DateTime<Utc> },
    /// From each view's watermark (or the start of its data) to `end`.
    Incremental { end: DateTime<Utc> },
}

/// The outcome for one view.
#[derive(Clone, Debug, Serialize)]
pub struct ViewReport {
    pub view: String,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub rows: u64,
    pub offline_version: Option<u64>,
    pub seconds: f64,
    /// Entities written to the online store (views with `online: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_rows: Option<u64>,
    /// Seconds spent on the online step (included in `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_seconds: Option<f64>,
    /// Why nothing was done (already up to date, no data), when that is the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Row counters of a view being materialized, advanced as the run goes.
#[derive(Clone, Debug, Default)]
pub struct ViewRows {
    /// Rows of the window read from the lake so far (they are sorted before any is written).
    pub read: Arc<AtomicU64>,
    /// Rows written to the offline table so far.
    pub written: Arc<AtomicU64>,
}

impl ViewRows {
    /// The window's row count, once known: every row is read before the first is written
    /// (the sort in between needs them all), so it is known from the first written row on.
    pub fn expected(&self) -> Option<u64> {
        (self.written.load(Ordering::Relaxed) > 0).then(|| self.read.load(Ordering::Relaxed))
    }
}

/// Receives progress while views are materialized (the CLI draws a progress bar).
pub trait Progress: Send + Sync {
    /// A view starts; `rows` counts its rows as they are read and written.
    fn start_view(&self, view: &str, rows: ViewRows);
    /// A view is done (or failed, or was skipped).
    fn finish_view(&self, report: &ViewReport);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start_view(&self, _: &str, _: ViewRows) {}
    fn finish_view(&self, _: &ViewReport) {}
}

fn ts_ns(t: DateTime<Utc>) -> Result<Expr> {
    let ns = t.timestamp_nanos_opt().ok_or_else(|| {
        Error::InvalidInput(format!("{t} is outside the range of nanosecond timestamps (1677-2262)"))
    })?;
    Ok(lit(ScalarValue::TimestampNanosecond(Some(ns), Some(UTC.into()))))
}

/// The rows of `[start, end)` of a view, laid out and typed as its offline table (not yet
/// sorted: see [`crate::sorted::latest_row_ordering`]).
pub async fn window_rows(
    lake: &Lake,
    defs: &Definitions,
    view: &FeatureView,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<DataFrame> {
    let source = defs
        .source(&view.source)
        .ok_or_else(|| Error::Internal(format!("view '{}' has no source in the registry", view.name)))?;
    let frame = lake.view_frame(defs, view).await?;
    let keys = defs.join_keys(view);
    let ts = col(datafusion::common::Column::from_name(&source.timestamp_field));
    let mut filter = ts.clone().gt_eq(ts_ns(start)?).and(ts.clone().lt(ts_ns(end)?));
    for k in &keys {
        filter = filter.and(col(datafusion::common::Column::from_name(&k.name)).is_not_null());
    }
    let mut exprs: Vec<Expr> = keys
        .iter()
        .map(|k| {
            cast(col(datafusion::common::Column::from_name(&k.name)), arrow_type(&k.dtype)).alias(&k.name)
        })
        .collect();
    exprs.push(cast(ts, stored_timestamp_type()).alias(EVENT_TIMESTAMP));
    let created = match &source.created_timestamp_field {
        Some(c) => cast(col(datafusion::common::Column::from_name(c)), stored_timestamp_type()),
        None => cast(lit(ScalarValue::TimestampNanosecond(None, Some(UTC.into()))), stored_timestamp_type()),
    };
    exprs.push(created.alias(CREATED_TIMESTAMP));
    for f in &view.features {
        exprs.push(
            cast(col(datafusion::common::Column::from_name(&f.name)), arrow_type(&f.dtype)).alias(&f.name),
        );
    }
    Ok(frame.filter(filter)?.select(exprs)?)
}

fn online_error(e: quiver_online::Error) -> Error {
    Error::Online(e)
}

/// The earliest event time of a view's data, or `None` when it has no rows.
pub async fn data_start(
    lake: &Lake,
    defs: &Definitions,
    view: &FeatureView,
) -> Result<Option<DateTime<Utc>>> {
    let source = defs
        .source(&view.source)
        .ok_or_else(|| Error::Internal(format!("view '{}' has no source in the registry", view.name)))?;
    let frame = lake.view_frame(defs, view).await?;
    let ts = col(datafusion::common::Column::from_name(&source.timestamp_field));
    let batches = frame
        .aggregate(vec![], vec![datafusion::functions_aggregate::expr_fn::min(ts).alias("m")])?
        .collect()
        .await?;
    let value = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| ScalarValue::try_from_array(b.column(0), 0))
        .transpose()?;
    Ok(match value {
        Some(ScalarValue::TimestampNanosecond(Some(ns), _)) => {
            Some(DateTime::<Utc>::from_timestamp_nanos(ns))
        }
        _ => None,
    })
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
}

/// Rows per online write call.
const ONLINE_CHUNK: usize = 10_000;

/// What a view's offline write produced: the commit, and the latest row per entity for the
/// online store (empty when the view is not online).
struct ViewWrite {
    outcome: crate::store::WriteOutcome,
    latest: Vec<quiver_online::RowWrite>,
    /// Newest event time written (microseconds), `None` for an empty window.
    newest_us: Option<i64>,
}

/// The newest event time of a batch in the offline layout, in microseconds.
fn newest_event_us(batch: &datafusion::arrow::array::RecordBatch) -> Option<i64> {
    use datafusion::arrow::array::TimestampMicrosecondArray;
    let column = batch.column_by_name(EVENT_TIMESTAMP)?;
    let times = column.as_any().downcast_ref::<TimestampMicrosecondArray>()?;
    datafusion::arrow::compute::max(times)
}

/// Writes the collected latest rows to the online store; returns how many entities.
async fn write_latest(online: &dyn OnlineStore, rows: Vec<quiver_online::RowWrite>) -> Result<u64> {
    for chunk in rows.chunks(ONLINE_CHUNK) {
        online.write(chunk).await.map_err(online_error)?;
    }
    Ok(rows.len() as u64)
}

impl Materializer {
    /// Runs `span` for the named views (all views when empty), one after the other. A view
    /// that fails is reported and the others still run; the result lists every view.
    pub async fn run(
        &self,
        span: Span,
        views: &[String],
        progress: &dyn Progress,
    ) -> Result<Vec<ViewReport>> {
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
        if let Span::Window { start, end } = span
            && start >= end
        {
            return Err(Error::InvalidInput(format!(
                "the window is empty: start {start} is not before end {end}"
            )));
        }
        let mut reports = Vec::new();
        for view in selected {
            let report = self.run_view(defs, head.version, view, span, progress).await;
            progress.finish_view(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    async fn run_view(
        &self,
        defs: &Definitions,
        registry_version: u64,
        view: &FeatureView,
        span: Span,
        progress: &dyn Progress,
    ) -> ViewReport {
        let started = Instant::now();
        let started_at = Utc::now();
        let mut report = ViewReport {
            view: view.name.clone(),
            window_start: None,
            window_end: None,
            rows: 0,
            offline_version: None,
            seconds: 0.0,
            skipped: None,
            error: None,
            online_rows: None,
            online_seconds: None,
        };
        let mut state = match self.state.view(&view.name).await {
            Ok(s) => s,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let (start, end) = match span {
            Span::Window { start, end } => (start, end),
            Span::Incremental { end } => match state.watermark {
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
        if start >= end {
            report.skipped = Some(format!("already materialized up to {start}"));
            return report;
        }
        let outcome = self.write(defs, view, start, end, progress).await;
        report.seconds = started.elapsed().as_secs_f64();
        let mut run = RunRecord {
            run_id: format!("{}-{}", started_at.format("%Y%m%dT%H%M%S%.6fZ"), view.name),
            started_at,
            finished_at: Utc::now(),
            window_start: start,
            window_end: end,
            status: RunStatus::Succeeded,
            rows: 0,
            offline_version: None,
            online_rows: None,
            registry_version,
            error: None,
        };
        match outcome {
            Ok(w) => {
                report.rows = w.outcome.rows;
                report.offline_version = Some(w.outcome.version);
                run.rows = w.outcome.rows;
                run.offline_version = Some(w.outcome.version);
                if let Some(t) = w.newest_us.and_then(DateTime::<Utc>::from_timestamp_micros) {
                    state.newest_event = Some(state.newest_event.map_or(t, |n| n.max(t)));
                }
                if let (true, Some(online)) = (view.online, &self.online) {
                    let online_started = Instant::now();
                    let result = write_latest(online.as_ref(), w.latest).await;
                    report.online_seconds = Some(online_started.elapsed().as_secs_f64());
                    match result {
                        Ok(n) => {
                            report.online_rows = Some(n);
                            run.online_rows = Some(n);
                        }
                        Err(e) => {
                            let message = format!("offline commit done, online write failed: {e}");
                            report.error = Some(message.clone());
                            run.status = RunStatus::Failed;
                            run.error = Some(message);
                        }
                    }
                }
                report.seconds = started.elapsed().as_secs_f64();
                run.finished_at = Utc::now();
            }
            Err(e) => {
                report.error = Some(e.to_string());
                run.status = RunStatus::Failed;
                run.error = Some(e.to_string());
            }
        }
        state.record(run);
        if let Err(e) = self.state.save(&state).await {
            report
                .error
                .get_or_insert(format!("the data was committed but the run could not be recorded: {e}"));
        }
        report
    }

    async fn write(
        &self,
        defs: &Definitions,
        view: &FeatureView,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<ViewWrite> {
        let rows = window_rows(&self.lake, defs, view, start, end).await?.create_physical_plan().await?;
        // Rows are counted as they enter the sort, so progress needs no counting pass.
        let counters = ViewRows::default();
        let ordering = crate::sorted::latest_row_ordering(&rows.schema())?;
        let counted = Arc::new(CountRowsExec { input: rows, rows: counters.read.clone() });
        let plan = crate::sorted::sort_into_one(counted, ordering);
        progress.start_view(&view.name, counters.clone());
        let window = (start.timestamp_micros(), end.timestamp_micros());
        // The rows reach the writer in the latest-row order, so the latest row of each entity
        // is picked on the way, for the online store: no second pass over the window. The
        // rows are kept (one per entity) until the offline commit succeeds, so the online
        // store never gets values the offline store did not.
        let latest = (view.online && self.online.is_some()).then(|| {
            Arc::new(std::sync::Mutex::new((LatestRows::new(defs, view, self.online_expiry), Vec::new())))
        });
        // The newest event time is tracked on the way too, for freshness.
        let newest = Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN));
        let observer: RowObserver = {
            let latest = latest.clone();
            let newest = newest.clone();
            Arc::new(move |batch| {
                if let Some(t) = newest_event_us(batch) {
                    newest.fetch_max(t, std::sync::atomic::Ordering::Relaxed);
                }
                if let Some(state) = &latest {
                    let mut guard =
                        state.lock().map_err(|_| Error::Internal("online row collector poisoned".into()))?;
                    let (rows, done) = &mut *guard;
                    let complete = rows.push(batch).map_err(online_error)?;
                    done.extend(complete);
                }
                Ok(())
            })
        };
        let outcome = self
            .store
            .write_window(
                self.lake.session(),
                &view.name,
                offline_schema(defs, view),
                plan,
                window,
                WriteWatch { rows: counters.written.clone(), observer: Some(observer) },
            )
            .await?;
        let latest = match latest {
            None => Vec::new(),
            Some(state) => {
                let (rows, mut done) = Arc::try_unwrap(state)
                    .map_err(|_| Error::Internal("online row collector still shared after the write".into()))?
                    .into_inner()
                    .map_err(|_| Error::Internal("online row collector poisoned".into()))?;
                done.extend(rows.finish().map_err(online_error)?);
                done
            }
        };
        let newest_us = Some(newest.load(std::sync::atomic::Ordering::Relaxed)).filter(|t| *t != i64::MIN);
        Ok(ViewWrite { outcome, latest, newest_us })
    }
}

/// Passes its input through, counting the rows (the rows read, for progress).
#[derive(Debug)]
struct CountRowsExec {
    input: Arc<dyn ExecutionPlan>,
    rows: Arc<AtomicU64>,
}

impl DisplayAs for CountRowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "CountRowsExec")
    }
}

impl ExecutionPlan for CountRowsExec {
    fn name(&self) -> &'static str {
        "CountRowsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input]: [Arc<dyn ExecutionPlan>; 1] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("CountRowsExec takes one child".into()))?;
        Ok(Arc::new(CountRowsExec { input, rows: self.rows.clone() }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let rows = self.rows.clone();
        let stream = self.input.execute(partition, context)?.inspect(move |batch| {
            if let Ok(b) = batch {
                rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.input.schema(), stream)))
    }
}
