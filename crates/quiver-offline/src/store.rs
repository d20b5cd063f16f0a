//! The offline store: one Delta Lake table per feature view, holding every materialized row.
//!
//! Table layout (columns, in order): the view's join keys (declared types), `event_timestamp`
//! and `created_timestamp` (`Timestamp(µs, UTC)`, Delta's timestamp precision; `created` is
//! null when the source has none), then the features (declared types).
//!
//! Writes replace a window of event time in one Delta commit (`replaceWhere`): rows already
//! in the table inside `[start, end)` are removed and the new rows added atomically, so
//! running a window twice leaves one copy of each row, and a reader never sees half a run.
//! Quiver writes the Parquet files itself, one writer per sorted partition running
//! concurrently (Delta's own writer funnels every partition into one), and commits their
//! add actions, with the removals, through Delta's commit protocol (conflict checks
//! included). Every file it writes holds its rows sorted by (keys, event time, created
//! time, feature values).
//!
//! Reads pin a table version and scan exactly that version's Parquet files with DataFusion's
//! own Parquet scan (no custom table provider), which keeps read plans serializable; files
//! known to be sorted are merged rather than sorted again ([`crate::sorted`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{col, lit};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::kernel::Action;
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

/// The order of a view's offline rows that decides which row is the latest, as logical sort
/// expressions: ascending by join keys, event time, created time (null first) and the scalar
/// feature values (null first), so that on a full tie the choice never depends on file
/// order ([`crate::sorted::sort_columns`]). The last row of each key group at or before a
/// time is the chosen one, in the point-in-time join and in the online store alike.
pub fn latest_row_order(defs: &Definitions, view: &FeatureView) -> Vec<datafusion::logical_expr::SortExpr> {
    crate::sorted::sort_columns(&offline_schema(defs, view))
        .iter()
        .map(|name| col(datafusion::common::Column::from_name(name)).sort(true, true))
        .collect()
}

/// Sees every row batch on its way into the table, with the partition it belongs to, in
/// write order within each partition; an error aborts the write (nothing is committed).
pub type RowObserver = Arc<dyn Fn(usize, &RecordBatch) -> Result<()> + Send + Sync>;

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
    /// with `rows`, in one commit. `rows` must have exactly [`offline_schema`]'s columns, and
    /// each of its partitions must be in the latest-row order ([`crate::sorted`]): every
    /// partition is encoded by its own Parquet writer, concurrently, into files of its own
    /// (sorted, and listed as such). `watch.rows` is advanced as rows stream into the
    /// writers (for progress reports), and `watch.observer` sees each batch with its
    /// partition.
    ///
    /// The replacement follows Delta's `replaceWhere`: files whose statistics put all their
    /// rows inside the window are removed, files wholly outside are kept, and files that
    /// straddle an edge (or have no statistics) are rewritten with their rows outside the
    /// window, in their own order. A new table is created by the same commit.
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
        if table.version().is_some() {
            check_schema(view, &table, &schema)?;
        }
        let target = FileTarget::new(view, &table, &schema)?;
        let counted_before = counter.load(Ordering::Relaxed);
        let added = write_partitions(view, rows, ctx.task_ctx(), &target, counter.clone(), observer).await?;
        let rows = counter.load(Ordering::Relaxed) - counted_before;
        // Every file written here is sorted: the window's, and the rewrites of sorted files.
        let mut sorted_paths: Vec<String> = added.iter().map(add_path).collect();
        let mut actions: Vec<Action> = added.into_iter().map(Action::Add).collect();
        let ts = |v: i64| lit(ScalarValue::TimestampMicrosecond(Some(v), Some(UTC.into())));
        let predicate =
            col(EVENT_TIMESTAMP).gt_eq(ts(window_us.0)).and(col(EVENT_TIMESTAMP).lt(ts(window_us.1)));
        if table.version().is_some() {
            let order = sorted::sort_columns(&schema);
            let listed = sorted::load(table.object_store().as_ref(), &order).await;
            for file in live_files(view, &table)? {
                match file_in_window(file.stats.as_deref(), window_us) {
                    InWindow::Outside => continue,
                    InWindow::Inside => {}
                    InWindow::Straddles => {
                        let kept = rewrite_outside(ctx, view, &file, &target, window_us).await?;
                        if listed.contains(&file.path) {
                            sorted_paths.extend(kept.iter().map(add_path));
                        }
                        actions.extend(kept.into_iter().map(Action::Add));
                    }
                }
                actions.push(Action::Remove(file.remove));
            }
        }
        let predicate = deltalake::delta_datafusion::expr::fmt_expr_to_sql(&predicate)
            .map_err(|e| Error::Store(format!("writing view '{view}': {e}")))?;
        let state = commit(view, &table, &target, actions, SaveMode::Overwrite, Some(predicate)).await?;
        let version = state.version();
        record_sorted_files(view, &table, &state, &schema, sorted_paths).await;
        Ok(WriteOutcome { version, rows })
    }

    /// Appends `batches` (exactly [`offline_schema`]'s columns, in the latest-row order
    /// across all of them: the files written are listed as sorted) to a view's table in one
    /// commit. Used by push: rows that arrive outside materialization.
    pub async fn append(
        &self,
        view: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<WriteOutcome> {
        let table = self.open(view).await?;
        if table.version().is_some() {
            check_schema(view, &table, &schema)?;
        }
        let target = FileTarget::new(view, &table, &schema)?;
        let counter = Arc::new(AtomicU64::new(0));
        let rows = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            &[batches],
            schema.clone(),
            None,
        )?;
        let added =
            write_partitions(view, rows, Arc::new(TaskContext::default()), &target, counter.clone(), None)
                .await?;
        let sorted_paths: Vec<String> = added.iter().map(add_path).collect();
        let actions = added.into_iter().map(Action::Add).collect();
        let state = commit(view, &table, &target, actions, SaveMode::Append, None).await?;
        let version = state.version();
        record_sorted_files(view, &table, &state, &schema, sorted_paths).await;
        Ok(WriteOutcome { version, rows: counter.load(Ordering::Relaxed) })
    }

    /// The files of a view's table at `version` (latest when `None`).
    pub async fn snapshot(&self, view: &str, version: Option<u64>) -> Result<Option<TableSnapshot>> {
        let url = self.table_url(view)?;
        let mut table = self.open(view).await?;
        let Some(latest) = table.version() else { return Ok(None) };
        if let Some(v) = version {
            if v > latest {
                return Err(Error::NotFound(format!(
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

/// A live file of a loaded table, with its Delta statistics.
struct LiveFile {
    path: String,
    url: String,
    size: u64,
    stats: Option<String>,
    /// The action that removes it.
    remove: deltalake::kernel::Remove,
}

fn live_files(view: &str, table: &DeltaTable) -> Result<Vec<LiveFile>> {
    let state = table.snapshot().map_err(|e| Error::Store(format!("listing files of view '{view}': {e}")))?;
    Ok(state_files(state, table.log_store().as_ref()))
}

fn state_files(
    state: &deltalake::table::state::DeltaTableState,
    log_store: &dyn deltalake::logstore::LogStore,
) -> Vec<LiveFile> {
    state
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
                remove: f.remove_action(true),
            }
        })
        .collect()
}

/// An added file's path as the Delta log names it once read back (decoded).
fn add_path(add: &deltalake::kernel::Add) -> String {
    object_store::path::Path::from_url_path(&add.path)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| add.path.clone())
}

/// Rows per call into a Parquet writer (the file size is checked between calls).
const WRITE_CHUNK_ROWS: usize = crate::session::BATCH_ROWS;

/// Rows of a window per Parquet writer, at least: a window smaller than this many rows per
/// partition is written by fewer writers, so small windows do not scatter into small files.
pub const MIN_ROWS_PER_WRITER: usize = 1 << 20;

/// How the files of one table are written: their schema (the table's own, as Delta stores
/// it) and the Parquet writer settings.
#[derive(Clone)]
struct FileTarget {
    delta_schema: deltalake::kernel::StructType,
    file_schema: SchemaRef,
    config: deltalake::datafile::writer::WriterConfig,
    store: deltalake::logstore::ObjectStoreRef,
}

impl FileTarget {
    fn new(view: &str, table: &DeltaTable, schema: &SchemaRef) -> Result<Self> {
        use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
        use deltalake::table::config::TablePropertiesExt;
        let bad = |e: String| Error::Store(format!("view '{view}': the table schema: {e}"));
        let (delta_schema, properties) = match table.version() {
            Some(_) => {
                let snapshot = table.snapshot().map_err(|e| bad(e.to_string()))?;
                (snapshot.schema().as_ref().clone(), Some(snapshot.table_config().clone()))
            }
            None => {
                // Delta's own types: microsecond timestamps, `element` list items.
                let normalized = deltalake::kernel::normalize_for_delta(schema);
                let kernel: deltalake::kernel::StructType =
                    normalized.as_ref().try_into_kernel().map_err(|e| bad(e.to_string()))?;
                (kernel, None)
            }
        };
        let file_schema: Schema = (&delta_schema).try_into_arrow().map_err(|e| bad(e.to_string()))?;
        let file_schema = Arc::new(file_schema);
        let (num_indexed, stats_columns, target_size) = match &properties {
            Some(p) => (
                p.num_indexed_cols(),
                p.data_skipping_stats_columns.as_ref().map(|c| c.iter().map(|n| n.to_string()).collect()),
                p.target_file_size(),
            ),
            None => (
                delta_kernel::table_properties::DataSkippingNumIndexedCols::NumColumns(32),
                None,
                deltalake::table::config::DEFAULT_TARGET_FILE_SIZE,
            ),
        };
        let config = deltalake::datafile::writer::WriterConfig::new(
            file_schema.clone(),
            Vec::new(),
            Some(writer_properties(&file_schema)),
            Some(target_size),
            Some(WRITE_CHUNK_ROWS),
            num_indexed,
            stats_columns,
        );
        Ok(FileTarget { delta_schema, file_schema, config, store: table.object_store() })
    }

    /// `batch` with the table's column types and field names (a no-op cast when they match).
    fn conform(&self, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let schema = self.file_schema.clone();
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    datafusion::arrow::compute::cast(column, field.data_type())
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// The Parquet settings of the files Quiver writes: Snappy, and no dictionary for timestamp
/// columns (event and created times are nearly unique per row, so a dictionary only costs
/// the time to fill it before the writer falls back to plain encoding).
fn writer_properties(schema: &Schema) -> parquet::file::properties::WriterProperties {
    let mut builder = parquet::file::properties::WriterProperties::builder()
        .set_created_by(format!("quiver {}", env!("CARGO_PKG_VERSION")))
        .set_compression(parquet::basic::Compression::SNAPPY);
    for field in schema.fields() {
        if matches!(field.data_type(), DataType::Timestamp(..)) {
            builder = builder.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(field.name().as_str()),
                false,
            );
        }
    }
    builder.build()
}

/// Streams every partition of `plan` into its own Parquet writer, concurrently, and returns
/// the files written. On an error the other writers are stopped and nothing is returned
/// (files already uploaded are left for vacuum, never committed).
async fn write_partitions(
    view: &str,
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    target: &FileTarget,
    counter: Arc<AtomicU64>,
    observer: Option<RowObserver>,
) -> Result<Vec<deltalake::kernel::Add>> {
    let mut writers = tokio::task::JoinSet::new();
    for partition in 0..plan.output_partitioning().partition_count() {
        let mut stream = plan.execute(partition, task_ctx.clone())?;
        let mut writer =
            deltalake::datafile::writer::DeltaWriter::new(target.store.clone(), target.config.clone());
        let counter = counter.clone();
        let observer = observer.clone();
        let conform = target.clone();
        let view = view.to_string();
        writers.spawn(async move {
            let streamed: Result<()> = async {
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    if let Some(observe) = &observer {
                        observe(partition, &batch)?;
                    }
                    let batch = conform.conform(&batch)?;
                    counter.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    writer
                        .write(&batch)
                        .await
                        .map_err(|e| Error::Store(format!("writing view '{view}': {e}")))?;
                }
                Ok(())
            }
            .await;
            match streamed {
                Ok(()) => {
                    writer.close().await.map_err(|e| Error::Store(format!("writing view '{view}': {e}")))
                }
                Err(e) => {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(view, error = %abort, "could not abort an unfinished upload");
                    }
                    Err(e)
                }
            }
        });
    }
    let mut added = Vec::new();
    let mut failed = None;
    while let Some(joined) = writers.join_next().await {
        match joined {
            Ok(Ok(files)) => added.extend(files),
            Ok(Err(e)) => {
                failed.get_or_insert(e);
                writers.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                failed.get_or_insert(Error::Internal(format!("a writer of view '{view}' panicked: {e}")));
                writers.abort_all();
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(added),
    }
}

/// Where a file's rows lie against a window of event time, by its Delta statistics.
#[derive(Debug, PartialEq, Eq)]
enum InWindow {
    /// Every row inside: the file is removed.
    Inside,
    /// No row inside: the file is kept.
    Outside,
    /// Some rows may be inside (or the statistics do not tell): the file is rewritten with
    /// its rows outside the window.
    Straddles,
}

/// Delta keeps timestamp statistics in milliseconds: a row's time lies in
/// `[min_ms, max_ms + 1 ms)`, so both tests below are conservative. A file with null event
/// times is never "inside" (those rows are outside every window).
fn file_in_window(stats: Option<&str>, window_us: (i64, i64)) -> InWindow {
    let Some(stats) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return InWindow::Straddles;
    };
    if stats.get("numRecords").and_then(|n| n.as_u64()) == Some(0) {
        return InWindow::Inside;
    }
    let time = |kind: &str| -> Option<i64> {
        let text = stats.get(kind)?.get(EVENT_TIMESTAMP)?.as_str()?;
        Some(chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp_micros())
    };
    let nulls = stats.get("nullCount").and_then(|n| n.get(EVENT_TIMESTAMP)).and_then(|n| n.as_u64());
    let (Some(min), Some(max)) = (time("minValues"), time("maxValues")) else {
        return match nulls {
            // Every event time is null: no row can be inside.
            Some(n) if Some(n) == stats.get("numRecords").and_then(|r| r.as_u64()) => InWindow::Outside,
            _ => InWindow::Straddles,
        };
    };
    let (start, end) = window_us;
    let max_upper = max.saturating_add(999);
    if max_upper < start || min >= end {
        InWindow::Outside
    } else if min >= start && max_upper < end && nulls == Some(0) {
        InWindow::Inside
    } else {
        InWindow::Straddles
    }
}

/// Writes the rows of `file` outside the window to new files, in the file's own order.
async fn rewrite_outside(
    ctx: &SessionContext,
    view: &str,
    file: &LiveFile,
    target: &FileTarget,
    window_us: (i64, i64),
) -> Result<Vec<deltalake::kernel::Add>> {
    use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
    use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
    use datafusion::datasource::source::DataSourceExec;
    let schema = target.file_schema.clone();
    let url = ListingTableUrl::parse(&file.url)?;
    let source = Arc::new(ParquetSource::new(schema.clone()));
    let config = FileScanConfigBuilder::new(url.object_store(), source)
        .with_file_groups(vec![FileGroup::new(vec![PartitionedFile::new(
            url.prefix().to_string(),
            file.size,
        )])])
        .build();
    let scan = DataSourceExec::from_data_source(config);
    let ts = |v: i64| lit(ScalarValue::TimestampMicrosecond(Some(v), Some(UTC.into())));
    let keep = col(EVENT_TIMESTAMP)
        .is_null()
        .or(col(EVENT_TIMESTAMP).lt(ts(window_us.0)))
        .or(col(EVENT_TIMESTAMP).gt_eq(ts(window_us.1)));
    let df_schema = datafusion::common::DFSchema::try_from(schema.as_ref().clone())?;
    let keep = ctx.create_physical_expr(keep, &df_schema)?;
    let filtered: Arc<dyn ExecutionPlan> =
        Arc::new(datafusion::physical_plan::filter::FilterExec::try_new(keep, scan)?);
    write_partitions(view, filtered, ctx.task_ctx(), target, Arc::new(AtomicU64::new(0)), None).await
}

/// Records in the table's sidecar ([`crate::sorted`]) that `sorted_paths` (files this write
/// added) are sorted, pruning the list to the files live at the committed version. Failing
/// to record costs readers a sort, not a wrong answer, so it is logged, not returned.
async fn record_sorted_files(
    view: &str,
    table: &DeltaTable,
    committed: &deltalake::table::state::DeltaTableState,
    schema: &Schema,
    sorted_paths: Vec<String>,
) {
    let live: BTreeSet<String> =
        state_files(committed, table.log_store().as_ref()).into_iter().map(|f| f.path).collect();
    let result =
        sorted::record(table.object_store().as_ref(), &sorted::sort_columns(schema), &live, sorted_paths)
            .await;
    if let Err(e) = result {
        tracing::warn!(view, error = %e, "could not record which offline files are sorted; reads will sort them");
    }
}

/// Commits `actions` to a view's table as one Delta write (`mode`, with the replaced
/// window's `predicate` for an overwrite); a table with no commit yet is created by the
/// same commit, as version 0.
async fn commit(
    view: &str,
    table: &DeltaTable,
    target: &FileTarget,
    actions: Vec<Action>,
    mode: SaveMode,
    predicate: Option<String>,
) -> Result<deltalake::table::state::DeltaTableState> {
    let fail = |e: deltalake::DeltaTableError| Error::Store(format!("writing view '{view}': {e}"));
    if table.version().is_none() {
        let columns = target.delta_schema.fields().cloned().collect::<Vec<_>>();
        let created = deltalake::operations::create::CreateBuilder::new()
            .with_log_store(table.log_store())
            .with_columns(columns)
            .with_table_name(view)
            .with_actions(actions)
            .await
            .map_err(fail)?;
        return Ok(created.snapshot().map_err(fail)?.clone());
    }
    let operation = deltalake::protocol::DeltaOperation::Write { mode, partition_by: None, predicate };
    let snapshot = table.snapshot().map_err(fail)?;
    let committed = deltalake::kernel::transaction::CommitBuilder::from(
        deltalake::kernel::transaction::CommitProperties::default(),
    )
    .with_actions(actions)
    .build(
        Some(snapshot as &dyn deltalake::kernel::transaction::TableReference),
        table.log_store(),
        operation,
    )
    .await
    .map_err(fail)?;
    Ok(committed.snapshot)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stats(min: &str, max: &str, nulls: u64) -> String {
        format!(
            r#"{{"numRecords": 10, "minValues": {{"{EVENT_TIMESTAMP}": "{min}"}},
                 "maxValues": {{"{EVENT_TIMESTAMP}": "{max}"}}, "nullCount": {{"{EVENT_TIMESTAMP}": {nulls}}}}}"#
        )
    }

    fn us(t: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros()
    }

    fn pushed(schema: &SchemaRef, ids: &[i64], times_us: &[i64]) -> RecordBatch {
        use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, TimestampMicrosecondArray};
        let ts = |v: &[i64]| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v.to_vec()).with_timezone(UTC))
        };
        let rates: Vec<f64> = ids.iter().map(|i| *i as f64 / 10.0).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            ts(times_us),
            ts(times_us),
            Arc::new(Float64Array::from(rates)),
        ];
        RecordBatch::try_new(schema.clone(), columns).unwrap()
    }

    #[tokio::test]
    async fn appends_create_the_table_then_add_sorted_files_in_one_commit_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = OfflineStore::new(Url::from_directory_path(dir.path()).unwrap());
        let schema = Arc::new(Schema::new(vec![
            ArrowField::new("driver_id", DataType::Int64, true),
            ArrowField::new(EVENT_TIMESTAMP, stored_timestamp_type(), true),
            ArrowField::new(CREATED_TIMESTAMP, stored_timestamp_type(), true),
            ArrowField::new("conv_rate", DataType::Float64, true),
        ]));
        let first =
            store.append("v", schema.clone(), vec![pushed(&schema, &[1, 2], &[10, 20])]).await.unwrap();
        assert_eq!(first, WriteOutcome { version: 0, rows: 2 });
        let second = store
            .append("v", schema.clone(), vec![pushed(&schema, &[1], &[30]), pushed(&schema, &[3], &[5])])
            .await
            .unwrap();
        assert_eq!(second, WriteOutcome { version: 1, rows: 2 });
        let snapshot = store.snapshot("v", None).await.unwrap().unwrap();
        assert_eq!(snapshot.version, 1);
        assert_eq!(snapshot.files.len(), 2, "{:?}", snapshot.files);
        assert!(
            snapshot.files.iter().all(|f| f.sorted),
            "pushed files are listed as sorted: {:?}",
            snapshot.files
        );
        let ctx = SessionContext::new();
        let rows = crate::sorted::sorted_rows(&ctx, Some(&snapshot), snapshot.schema.clone()).unwrap();
        let batches = datafusion::physical_plan::collect(rows, ctx.task_ctx()).await.unwrap();
        let all = datafusion::arrow::compute::concat_batches(&snapshot.schema, &batches).unwrap();
        let ids = all.column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap();
        assert_eq!(ids.values().to_vec(), vec![1, 1, 2, 3]);

        // A batch whose columns do not fit the table is refused, and the table is unchanged.
        let other = Arc::new(Schema::new(vec![ArrowField::new("driver_id", DataType::Utf8, true)]));
        let bad = RecordBatch::try_new(
            other.clone(),
            vec![Arc::new(datafusion::arrow::array::StringArray::from(vec!["x"]))],
        )
        .unwrap();
        let refused = store.append("v", other, vec![bad]).await.unwrap_err().to_string();
        assert!(refused.contains("declares [driver_id Utf8]"), "{refused}");
        assert_eq!(store.latest_version("v").await.unwrap(), Some(1));
    }

    #[test]
    fn files_are_judged_against_a_window_conservatively() {
        let window = (us("2026-01-02T00:00:00Z"), us("2026-01-03T00:00:00Z"));
        let judge = |min: &str, max: &str, nulls: u64| file_in_window(Some(&stats(min, max, nulls)), window);
        assert_eq!(judge("2026-01-02T00:00:00.000Z", "2026-01-02T23:59:59.998Z", 0), InWindow::Inside);
        assert_eq!(judge("2026-01-01T00:00:00.000Z", "2026-01-01T23:59:59.000Z", 0), InWindow::Outside);
        assert_eq!(judge("2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z", 0), InWindow::Outside);
        assert_eq!(judge("2026-01-01T12:00:00.000Z", "2026-01-02T12:00:00.000Z", 0), InWindow::Straddles);
        assert_eq!(judge("2026-01-02T12:00:00.000Z", "2026-01-03T12:00:00.000Z", 0), InWindow::Straddles);
        // Delta truncates timestamp statistics to milliseconds: a row may lie up to 999 µs
        // after the recorded maximum, which matters for windows with sub-millisecond edges.
        assert_eq!(judge("2026-01-02T00:00:00.000Z", "2026-01-02T23:59:59.999Z", 0), InWindow::Inside);
        assert_eq!(judge("2026-01-01T00:00:00.000Z", "2026-01-01T23:59:59.999Z", 0), InWindow::Outside);
        let fine = (us("2026-01-02T00:00:00.000500Z"), us("2026-01-03T00:00:00.000500Z"));
        let judge_fine = |min: &str, max: &str| file_in_window(Some(&stats(min, max, 0)), fine);
        assert_eq!(judge_fine("2026-01-02T00:00:00.001Z", "2026-01-03T00:00:00.000Z"), InWindow::Straddles);
        assert_eq!(judge_fine("2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"), InWindow::Straddles);
        assert_eq!(judge_fine("2026-01-02T00:00:00.001Z", "2026-01-02T23:59:59.999Z"), InWindow::Inside);
        // Rows with no event time are outside every window, so such a file is not removed.
        assert_eq!(judge("2026-01-02T00:00:00.000Z", "2026-01-02T12:00:00.000Z", 1), InWindow::Straddles);
        // No statistics, or unreadable ones: rewritten, never dropped or kept blindly.
        assert_eq!(file_in_window(None, window), InWindow::Straddles);
        assert_eq!(file_in_window(Some("{"), window), InWindow::Straddles);
        assert_eq!(file_in_window(Some(r#"{"numRecords": 3}"#), window), InWindow::Straddles);
        let all_null = format!(r#"{{"numRecords": 3, "nullCount": {{"{EVENT_TIMESTAMP}": 3}}}}"#);
        assert_eq!(file_in_window(Some(&all_null), window), InWindow::Outside);
        assert_eq!(file_in_window(Some(r#"{"numRecords": 0}"#), window), InWindow::Inside);
    }
}
