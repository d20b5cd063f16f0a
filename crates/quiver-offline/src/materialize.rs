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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

use datafusion::arrow::array::RecordBatch;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlanProperties, Partitioning};
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
    /// Partitions the window is read, sorted and written in.
    pub partitions: usize,
    /// Partitions whose rows have all been read.
    pub partitions_read: Arc<AtomicUsize>,
}

impl ViewRows {
    /// The window's row count, once known: when every partition has read all its rows (each
    /// sorts all of its rows before writing the first).
    pub fn expected(&self) -> Option<u64> {
        (self.partitions > 0 && self.partitions_read.load(Ordering::Relaxed) >= self.partitions)
            .then(|| self.read.load(Ordering::Relaxed))
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
    /// Rows of a window per Parquet writer at least (each writer makes files of its own);
    /// [`crate::store::MIN_ROWS_PER_WRITER`] unless the caller was told otherwise
    /// ([`rows_per_writer_setting`]).
    pub rows_per_writer: usize,
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

/// The window's rows in as many partitions as it gets writers: the session's target
/// partitions, fewer for a window estimated below the minimum rows per writer (each
/// partition becomes files of its own, so small windows do not scatter into small files).
/// Batches are dealt round-robin when the scan made another number of partitions.
fn writer_partitions(
    rows: Arc<dyn ExecutionPlan>,
    target_partitions: usize,
    per_writer: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let statistics = datafusion::physical_plan::StatisticsContext::new()
        .compute(rows.as_ref(), &datafusion::physical_plan::StatisticsArgs::new())?;
    let estimate = statistics.num_rows.get_value().copied();
    let wanted = match estimate {
        Some(n) => n.div_ceil(per_writer).clamp(1, target_partitions.max(1)),
        None => target_partitions.max(1),
    };
    if wanted == rows.output_partitioning().partition_count() {
        return Ok(rows);
    }
    Ok(Arc::new(RepartitionExec::try_new(rows, Partitioning::RoundRobinBatch(wanted))?))
}

/// The last row of each run of equal join keys in one sorted partition: the candidates for
/// the latest row of each entity. An entity's rows may lie in several partitions, so the
/// candidates of all partitions are compared at the end ([`latest_of`]).
struct RunEnds {
    /// The join keys are the first columns of the offline layout.
    keys: usize,
    /// Complete runs' last rows.
    done: Vec<RecordBatch>,
    /// The last row of the previous batch, whose run may continue.
    pending: Option<RecordBatch>,
}

impl RunEnds {
    fn new(keys: usize) -> Self {
        RunEnds { keys, done: Vec::new(), pending: None }
    }

    fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        use datafusion::arrow::compute::{partition, take_record_batch};
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let keys = &batch.columns()[..self.keys];
        if let Some(pending) = self.pending.take() {
            // The previous batch's last run ends there unless this batch starts with its keys.
            let mut same = true;
            for (i, column) in keys.iter().enumerate() {
                let cmp = datafusion::arrow::array::make_comparator(
                    pending.column(i),
                    column,
                    datafusion::arrow::compute::SortOptions::default(),
                )?;
                same &= cmp(0, 0).is_eq();
            }
            if !same {
                self.done.push(pending);
            }
        }
        let runs = partition(keys)?;
        let ends: Vec<u32> = runs.ranges().iter().map(|r| (r.end - 1) as u32).collect();
        if ends.len() > 1 {
            let complete = datafusion::arrow::array::UInt32Array::from(ends[..ends.len() - 1].to_vec());
            self.done.push(take_record_batch(batch, &complete)?);
        }
        self.pending = Some(batch.slice(batch.num_rows() - 1, 1));
        Ok(())
    }

    fn finish(mut self) -> Vec<RecordBatch> {
        self.done.extend(self.pending.take());
        self.done
    }
}

/// The latest row of each entity among the candidates of every partition, by the
/// latest-row order (the same rule as the point-in-time join), encoded for the online store.
fn latest_of(
    defs: &Definitions,
    view: &FeatureView,
    expire: bool,
    schema: &datafusion::arrow::datatypes::SchemaRef,
    candidates: &[RecordBatch],
) -> Result<Vec<quiver_online::RowWrite>> {
    use datafusion::arrow::compute::{SortColumn, SortOptions, lexsort_to_indices, take_record_batch};
    let all = datafusion::arrow::compute::concat_batches(schema, candidates)?;
    if all.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let order = crate::sorted::sort_columns(schema);
    let columns = order
        .iter()
        .map(|name| {
            let values = all
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| Error::Internal(format!("materialized rows lack column '{name}'")))?;
            Ok(SortColumn { values, options: Some(SortOptions { descending: false, nulls_first: true }) })
        })
        .collect::<Result<Vec<_>>>()?;
    let sorted = take_record_batch(&all, &lexsort_to_indices(&columns, None)?)?;
    let mut rows = LatestRows::new(defs, view, expire);
    let mut out = rows.push(&sorted).map_err(online_error)?;
    out.extend(rows.finish().map_err(online_error)?);
    Ok(out)
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
        let per_writer = self.rows_per_writer.max(1);
        let mut reports = Vec::new();
        for view in selected {
            let report = self.run_view(defs, head.version, view, span, per_writer, progress).await;
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
        per_writer: usize,
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
        let outcome = self.write(defs, view, start, end, per_writer, progress).await;
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
        per_writer: usize,
        progress: &dyn Progress,
    ) -> Result<ViewWrite> {
        let rows = window_rows(&self.lake, defs, view, start, end).await?.create_physical_plan().await?;
        let target_partitions = self.lake.session().copied_config().target_partitions();
        let rows = writer_partitions(rows, target_partitions, per_writer)?;
        let partitions = rows.output_partitioning().partition_count();
        let ordering = crate::sorted::latest_row_ordering(&rows.schema())?;
        let schema = rows.schema();
        // Rows are counted as they enter the sorts, so progress needs no counting pass.
        let counters = ViewRows { partitions, ..ViewRows::default() };
        let counted = Arc::new(CountRowsExec {
            input: rows,
            rows: counters.read.clone(),
            partitions_read: counters.partitions_read.clone(),
        });
        // Each partition is sorted on its own (on row-format keys, in memory when the pool
        // allows) and written by its own writer: no merge into one stream, and Parquet
        // encoding runs on every core.
        let plan = Arc::new(crate::rowsort::SortRowsExec::new(ordering, counted));
        progress.start_view(&view.name, counters.clone());
        let window = (start.timestamp_micros(), end.timestamp_micros());
        // The rows reach each writer in the latest-row order, so the last row of each run of
        // keys is picked on the way: one candidate per entity and partition, for the online
        // store, with no second pass over the window. The candidates are kept until the
        // offline commit succeeds, so the online store never gets values the offline store
        // did not.
        let candidates: Option<Arc<Vec<std::sync::Mutex<RunEnds>>>> = (view.online && self.online.is_some())
            .then(|| {
                let keys = defs.join_keys(view).len();
                Arc::new((0..partitions).map(|_| std::sync::Mutex::new(RunEnds::new(keys))).collect())
            });
        // The newest event time is tracked on the way too, for freshness.
        let newest = Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN));
        let observer: RowObserver = {
            let candidates = candidates.clone();
            let newest = newest.clone();
            Arc::new(move |partition, batch| {
                if let Some(t) = newest_event_us(batch) {
                    newest.fetch_max(t, std::sync::atomic::Ordering::Relaxed);
                }
                if let Some(all) = &candidates {
                    let slot = all.get(partition).ok_or_else(|| {
                        Error::Internal(format!("no online row collector for partition {partition}"))
                    })?;
                    let mut ends =
                        slot.lock().map_err(|_| Error::Internal("online row collector poisoned".into()))?;
                    ends.push(batch)?;
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
        let latest = match candidates {
            None => Vec::new(),
            Some(all) => {
                let all = Arc::try_unwrap(all).map_err(|_| {
                    Error::Internal("online row collector still shared after the write".into())
                })?;
                let mut batches = Vec::new();
                for slot in all {
                    let ends = slot
                        .into_inner()
                        .map_err(|_| Error::Internal("online row collector poisoned".into()))?;
                    batches.extend(ends.finish());
                }
                latest_of(defs, view, self.online_expiry, &schema, &batches)?
            }
        };
        let newest_us = Some(newest.load(std::sync::atomic::Ordering::Relaxed)).filter(|t| *t != i64::MIN);
        Ok(ViewWrite { outcome, latest, newest_us })
    }
}

/// Passes its input through, counting the rows (the rows read, for progress) and the
/// partitions read to the end.
#[derive(Debug)]
struct CountRowsExec {
    input: Arc<dyn ExecutionPlan>,
    rows: Arc<AtomicU64>,
    partitions_read: Arc<AtomicUsize>,
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
        Ok(Arc::new(CountRowsExec {
            input,
            rows: self.rows.clone(),
            partitions_read: self.partitions_read.clone(),
        }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let rows = self.rows.clone();
        let partitions_read = self.partitions_read.clone();
        let end = futures::stream::once(async move {
            partitions_read.fetch_add(1, Ordering::Relaxed);
        })
        .filter_map(|()| futures::future::ready(None));
        let stream = self
            .input
            .execute(partition, context)?
            .inspect(move |batch| {
                if let Ok(b) = batch {
                    rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                }
            })
            .chain(end);
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.input.schema(), stream)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn defs() -> Definitions {
        let yaml = "entities:\n  - {name: e, join_keys: [{name: k, dtype: int64}]}\nsources:\n  - {name: s, path: x/, format: parquet, timestamp_field: ts}\nfeature_views:\n  - {name: v, entities: [e], source: s, features: [{name: f, dtype: int64}]}\n";
        quiver_core::repo::parse_documents(&[("d.yaml".into(), yaml.into())]).definitions
    }

    fn schema() -> datafusion::arrow::datatypes::SchemaRef {
        let ts = DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new(EVENT_TIMESTAMP, ts.clone(), true),
            Field::new(CREATED_TIMESTAMP, ts, true),
            Field::new("f", DataType::Int64, true),
        ]))
    }

    /// Rows (k, event, created, f), sorted by the latest-row order.
    fn batch(rows: &[(i64, i64, Option<i64>, i64)]) -> RecordBatch {
        let mut rows = rows.to_vec();
        rows.sort();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    fn encoded(rows: Vec<quiver_online::RowWrite>) -> Vec<(String, Vec<u8>)> {
        rows.into_iter().map(|w| (w.entity.0, w.bytes)).collect()
    }

    #[test]
    fn the_latest_row_of_an_entity_spread_over_partitions_is_the_one_a_single_sort_picks() {
        let d = defs();
        let view = d.feature_view("v").unwrap();
        // 30 entities, 12 rows each: the latest by event time, then created time (null
        // first), then value on a full tie; every entity's rows land in several partitions.
        let mut rows = Vec::new();
        for k in 0..30i64 {
            for i in 0..12i64 {
                let event = (i * 7 + k) % 5;
                let created = if i % 4 == 0 { None } else { Some(i % 3) };
                rows.push((k, event, created, (i * 13 + k) % 11));
            }
        }
        let whole = batch(&rows);
        let mut single = LatestRows::new(&d, view, false);
        let mut expected = single.push(&whole).unwrap();
        expected.extend(single.finish().unwrap());
        let expected = encoded(expected);
        assert_eq!(expected.len(), 30);

        for partitions in [1usize, 2, 3, 7] {
            for chunk in [1usize, 2, 5, 64] {
                let mut candidates = Vec::new();
                for p in 0..partitions {
                    let mine: Vec<_> = rows
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % partitions == p)
                        .map(|(_, r)| *r)
                        .collect();
                    if mine.is_empty() {
                        continue;
                    }
                    let sorted = batch(&mine);
                    let mut ends = RunEnds::new(1);
                    for start in (0..sorted.num_rows()).step_by(chunk) {
                        ends.push(&sorted.slice(start, chunk.min(sorted.num_rows() - start))).unwrap();
                    }
                    candidates.extend(ends.finish());
                }
                let got = encoded(latest_of(&d, view, false, &schema(), &candidates).unwrap());
                assert_eq!(got, expected, "{partitions} partitions, batches of {chunk}");
            }
        }
    }
}
