//! The offline store: one Delta Lake table per feature view, holding every materialized row.
//!
//! Table layout (columns, in order): the view's join keys (declared types), `event_timestamp`
//! and `created_timestamp` (`Timestamp(µs, UTC)`, Delta's timestamp precision; `created` is
//! null when the source has none), then the features (declared types).
//!
//! Writes replace a window of event time in one Delta commit (`replaceWhere`): rows already
//! in the table inside `[start, end)` are removed and the new rows added atomically, so
//! running a window twice leaves one copy of each row, and a reader never sees half a run.
//! Rows are written sorted by (keys, event time, created time).
//!
//! Reads pin a table version and scan exactly that version's Parquet files with DataFusion's
//! own Parquet scan (no custom table provider), which keeps read plans serializable; files
//! known to be sorted are merged rather than sorted again ([`crate::sorted`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::ScalarValue;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{col, lit};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, execute_stream};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use futures::StreamExt;
use quiver_core::definitions::{Definitions, FeatureView};
use url::Url;

use crate::error::{Error, Result};
use crate::sorted;
use crate::types::{UTC, arrow_type};

/// Name of the event time column in offline tables.
pub const EVENT_TIMESTAMP: &str = "event_timestamp";
/// Name of the created time column in offline tables.
pub const CREATED_TIMESTAMP: &str = "created_timestamp";

/// The timestamp type of offline tables (Delta Lake stores microseconds).
pub fn stored_timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// The schema of a view's offline table.
pub fn offline_schema(defs: &Definitions, view: &FeatureView) -> SchemaRef {
    let mut fields: Vec<ArrowField> =
        defs.join_keys(view).iter().map(|k| ArrowField::new(&k.name, arrow_type(&k.dtype), true)).collect();
    fields.push(ArrowField::new(EVENT_TIMESTAMP, stored_timestamp_type(), true));
    fields.push(ArrowField::new(CREATED_TIMESTAMP, stored_timestamp_type(), true));
    fields.extend(view.features.iter().map(|f| ArrowField::new(&f.name, arrow_type(&f.dtype), true)));
    Arc::new(Schema::new(fields))
}

/// The order of a view's offline rows that decides which row is the latest: ascending by
/// join keys, event time, created time (null first) and, with `tie_break`, the scalar
/// feature values (null first), so that on a full tie the choice never depends on file order.
/// The last row of each key group at or before a time is the chosen one, in the
/// point-in-time join and in the online store alike.
pub fn latest_row_order(
    defs: &Definitions,
    view: &FeatureView,
    tie_break: bool,
) -> Vec<datafusion::logical_expr::SortExpr> {
    let keys = defs.join_keys(view).len();
    let columns = crate::sorted::sort_columns(&offline_schema(defs, view));
    let used = if tie_break { columns.len() } else { keys + 2 };
    columns[..used]
        .iter()
        .map(|name| col(datafusion::common::Column::from_name(name)).sort(true, true))
        .collect()
}

/// Sees every row batch on its way into the table, in write order; an error aborts the
/// write (nothing is committed).
pub type RowObserver = Arc<dyn Fn(&datafusion::arrow::array::RecordBatch) -> Result<()> + Send + Sync>;

/// What watches rows stream into a write: a row counter (for progress) and an optional
/// observer.
pub struct WriteWatch {
    pub rows: Arc<AtomicU64>,
    pub observer: Option<RowObserver>,
}

/// One committed write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The Delta table version the write created.
    pub version: u64,
    /// Rows added by this write (the window's rows).
    pub rows: u64,
}

/// One Parquet file of a pinned table version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFile {
    /// Absolute URL.
    pub url: String,
    /// Path relative to the table, as the Delta log names it.
    pub path: String,
    pub size: u64,
    /// Known to hold its rows in the latest-row order ([`crate::sorted`]).
    pub sorted: bool,
}

/// A pinned, readable version of a view's table.
#[derive(Clone, Debug)]
pub struct TableSnapshot {
    pub url: Url,
    pub version: u64,
    /// The Parquet files live at that version.
    pub files: Vec<TableFile>,
    /// The table's schema at that version (as its files store it).
    pub schema: SchemaRef,
}

/// Where the views' Delta tables live.
#[derive(Clone, Debug)]
pub struct OfflineStore {
    root: Url,
}

impl OfflineStore {
    /// A store rooted at a folder URL (`file://…/`).
    pub fn new(root: Url) -> Self {
        let mut root = root;
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        OfflineStore { root }
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The Delta table of a view.
    pub fn table_url(&self, view: &str) -> Result<Url> {
        self.root
            .join(&format!("{view}/"))
            .map_err(|e| Error::Internal(format!("table URL for '{view}': {e}")))
    }

    async fn open(&self, view: &str) -> Result<DeltaTable> {
        let url = self.table_url(view)?;
        if url.scheme() == "file"
            && let Ok(path) = url.to_file_path()
        {
            std::fs::create_dir_all(&path).map_err(|e| Error::Store(format!("{}: {e}", path.display())))?;
        }
        let fail = |e: deltalake::DeltaTableError| Error::Store(format!("opening {url}: {e}"));
        let mut table =
            deltalake::DeltaTableBuilder::from_url(url.clone()).map_err(fail)?.build().map_err(fail)?;
        // Loading a location with no commit log yet is how a new table starts; checking first
        // keeps the kernel from logging that as an error.
        if table.verify_deltatable_existence().await.map_err(fail)? {
            table.load().await.map_err(fail)?;
        }
        Ok(table)
    }

    /// The latest version of a view's table, or `None` when nothing was materialized yet.
    pub async fn latest_version(&self, view: &str) -> Result<Option<u64>> {
        Ok(self.open(view).await?.version())
    }

    /// Replaces the rows of `[start_us, end_us)` (event time, microseconds since the epoch)
    /// with `rows`, in one commit. `rows` must have exactly [`offline_schema`]'s columns.
    /// `watch.rows` is advanced as rows stream into the writer (for progress reports), and
    /// `watch.observer` sees each batch.
    pub async fn write_window(
        &self,
        ctx: &SessionContext,
        view: &str,
        schema: SchemaRef,
        rows: Arc<dyn ExecutionPlan>,
        window_us: (i64, i64),
        watch: WriteWatch,
    ) -> Result<WriteOutcome> {
        let WriteWatch { rows: counter, observer } = watch;
        let table = self.open(view).await?;
        let before = files_before_write(view, &table, &schema)?;
        // The rows run in our session (its object stores, memory limit), whatever session the
        // Delta writer plans with.
        let counted = Arc::new(CountingPartition {
            schema: schema.clone(),
            plan: rows,
            counter: counter.clone(),
            task_ctx: ctx.task_ctx(),
            observer,
        });
        let provider = StreamingTable::try_new(schema.clone(), vec![counted])?;
        let input = ctx.read_table(Arc::new(provider))?;
        let ts = |v: i64| lit(ScalarValue::TimestampMicrosecond(Some(v), Some(UTC.into())));
        let predicate =
            col(EVENT_TIMESTAMP).gt_eq(ts(window_us.0)).and(col(EVENT_TIMESTAMP).lt(ts(window_us.1)));
        let counted_before = counter.load(Ordering::Relaxed);
        let written = table
            .write(Vec::new())
            .with_input_plan(input.logical_plan().clone())
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(predicate)
            .with_table_name(view)
            .with_session_state(write_session()?)
            .await
            .map_err(|e| Error::Store(format!("writing view '{view}': {e}")))?;
        let version =
            written.version().ok_or_else(|| Error::Internal("a committed write has no version".into()))?;
        let rows = counter.load(Ordering::Relaxed) - counted_before;
        note_sorted_files(view, &written, &schema, &before, rows, Some(window_us)).await;
        Ok(WriteOutcome { version, rows })
    }

    /// Appends `batches` (exactly [`offline_schema`]'s columns, in the latest-row order
    /// across all of them: the files written are listed as sorted) to a view's table in one
    /// commit. Used by push: rows that arrive outside materialization.
    pub async fn append(
        &self,
        view: &str,
        schema: SchemaRef,
        batches: Vec<datafusion::arrow::array::RecordBatch>,
    ) -> Result<WriteOutcome> {
        let table = self.open(view).await?;
        let before = files_before_write(view, &table, &schema)?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        // Same columns, declared with the table's field names and nullability.
        let batches = batches
            .into_iter()
            .map(|b| datafusion::arrow::array::RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let written = table
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .with_table_name(view)
            .with_session_state(write_session()?)
            .await
            .map_err(|e| Error::Store(format!("appending to view '{view}': {e}")))?;
        let version =
            written.version().ok_or_else(|| Error::Internal("a committed write has no version".into()))?;
        note_sorted_files(view, &written, &schema, &before, rows, None).await;
        Ok(WriteOutcome { version, rows })
    }

    /// The files of a view's table at `version` (latest when `None`).
    pub async fn snapshot(&self, view: &str, version: Option<u64>) -> Result<Option<TableSnapshot>> {
        let url = self.table_url(view)?;
        let mut table = self.open(view).await?;
        let Some(latest) = table.version() else { return Ok(None) };
        if let Some(v) = version {
            if v > latest {
                return Err(Error::Store(format!(
                    "view '{view}': table version {v} does not exist (latest is {latest})"
                )));
            }
            if v != latest {
                table
                    .load_version(v)
                    .await
                    .map_err(|e| Error::Store(format!("view '{view}' version {v}: {e}")))?;
            }
        }
        let version = table.version().unwrap_or(latest);
        let schema = Arc::new(table_schema(view, &table)?);
        let listed = sorted::load(table.object_store().as_ref(), &sorted::sort_columns(&schema)).await;
        let files = live_files(view, &table)?
            .into_iter()
            .map(|f| TableFile { sorted: listed.contains(&f.path), url: f.url, path: f.path, size: f.size })
            .collect();
        Ok(Some(TableSnapshot { url, version, files, schema }))
    }
}

/// Before a write: checks an existing table's columns against `schema` and returns the
/// paths of its live files (none for a new table).
fn files_before_write(view: &str, table: &DeltaTable, schema: &SchemaRef) -> Result<BTreeSet<String>> {
    if table.version().is_none() {
        return Ok(BTreeSet::new());
    }
    check_schema(view, table, schema)?;
    Ok(live_files(view, table)?.into_iter().map(|f| f.path).collect())
}

/// A live file of a loaded table, with its Delta statistics.
struct LiveFile {
    path: String,
    url: String,
    size: u64,
    stats: Option<String>,
}

fn live_files(view: &str, table: &DeltaTable) -> Result<Vec<LiveFile>> {
    use deltalake::logstore::LogStore;
    let state = table.snapshot().map_err(|e| Error::Store(format!("listing files of view '{view}': {e}")))?;
    let log_store = table.log_store();
    Ok(state
        .log_data()
        .into_iter()
        .map(|f| {
            let path = f.object_store_path();
            // Local tables give plain paths; every file is named by a URL here.
            let uri = log_store.to_uri(&path);
            let url = match Url::parse(&uri) {
                Ok(_) => uri,
                Err(_) => Url::from_file_path(&uri).map(String::from).unwrap_or(uri),
            };
            LiveFile {
                url,
                path: path.to_string(),
                size: u64::try_from(f.size()).unwrap_or(0),
                stats: f.stats(),
            }
        })
        .collect())
}

/// The session Delta writes in: one partition, so the rows reach the Parquet writer in the
/// order they are produced and every file Quiver writes is sorted.
fn write_session() -> Result<Arc<dyn datafusion::catalog::Session>> {
    let overrides = std::collections::HashMap::from([(
        "datafusion.execution.target_partitions".to_string(),
        "1".to_string(),
    )]);
    let ctx = deltalake::delta_datafusion::DeltaSessionContext::new_with_session_overrides(&overrides)
        .map_err(|e| Error::Internal(format!("Delta write session: {e}")))?;
    Ok(Arc::new(ctx.state()))
}

/// Records in the table's sidecar ([`crate::sorted`]) which files a commit of `rows`
/// sorted rows added. A window write (`window_us`) may also have added files the Delta
/// library rewrote; those hold only rows outside the window, which tells them apart. When
/// the added files do not account for exactly `rows` rows, nothing is recorded. Failing to
/// record costs readers a sort, not a wrong answer, so it is logged, not returned.
async fn note_sorted_files(
    view: &str,
    written: &DeltaTable,
    schema: &Schema,
    before: &BTreeSet<String>,
    rows: u64,
    window_us: Option<(i64, i64)>,
) {
    let result = async {
        let live = live_files(view, written)?;
        let mut ours = Vec::new();
        let mut counted = 0u64;
        for file in live.iter().filter(|f| !before.contains(&f.path)) {
            if let Some(n) = sorted::stats_rows(file.stats.as_deref(), window_us) {
                counted += n;
                ours.push(file.path.clone());
            }
        }
        if counted != rows {
            ours.clear();
        }
        let live: BTreeSet<String> = live.into_iter().map(|f| f.path).collect();
        sorted::record(written.object_store().as_ref(), &sorted::sort_columns(schema), &live, ours).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(view, error = %e, "could not record which offline files are sorted; reads will sort them");
    }
}

/// The Arrow schema of a loaded Delta table.
fn table_schema(view: &str, table: &DeltaTable) -> Result<Schema> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
    let snapshot = table.snapshot().map_err(|e| Error::Store(format!("view '{view}': {e}")))?;
    snapshot
        .schema()
        .as_ref()
        .try_into_arrow()
        .map_err(|e| Error::Store(format!("view '{view}': reading the table schema: {e}")))
}

/// Same types, ignoring the names of list element fields (Delta calls them `element`,
/// Arrow writers often `item`).
fn same_type(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) | (DataType::LargeList(x), DataType::LargeList(y)) => {
            same_type(x.data_type(), y.data_type())
        }
        _ => a == b,
    }
}

fn check_schema(view: &str, table: &DeltaTable, expected: &SchemaRef) -> Result<()> {
    let actual = table_schema(view, table)?;
    let describe = |s: &Schema| {
        s.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
    };
    let same = actual.fields().len() == expected.fields().len()
        && actual
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && same_type(a.data_type(), b.data_type()));
    if !same {
        return Err(Error::Schema(format!(
            "the offline table of view '{view}' has columns [{}] but the view now declares [{}]; \
             the view's keys or features changed since it was materialized. Move the table away \
             (or delete it) and materialize the view again from the start",
            describe(&actual),
            describe(expected)
        )));
    }
    Ok(())
}

/// Streams a physical plan's output into the Delta writer, counting rows as they pass.
struct CountingPartition {
    schema: SchemaRef,
    plan: Arc<dyn ExecutionPlan>,
    counter: Arc<AtomicU64>,
    task_ctx: Arc<TaskContext>,
    observer: Option<RowObserver>,
}

impl std::fmt::Debug for CountingPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingPartition")
            .field("schema", &self.schema)
            .field("rows", &self.counter.load(Ordering::Relaxed))
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl PartitionStream for CountingPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _writer_ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let ctx = self.task_ctx.clone();
        let counter = self.counter.clone();
        let plan = self.plan.clone();
        let schema = self.schema.clone();
        let out_schema = self.schema.clone();
        let observer = self.observer.clone();
        let stream = futures::stream::once(async move { execute_stream(plan, ctx) })
            .map(move |r| match r {
                Ok(s) => s.boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .map(move |batch| {
                let batch = batch?;
                counter.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                // Same columns, but declared with the table's field names and nullability.
                let batch = datafusion::arrow::array::RecordBatch::try_new(
                    out_schema.clone(),
                    batch.columns().to_vec(),
                )?;
                if let Some(observe) = &observer {
                    observe(&batch).map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                }
                Ok(batch)
            });
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}
