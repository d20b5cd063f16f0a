//! The offline store: one Delta Lake table per feature view, holding every materialized row.
//!
//! The table layout (columns, timestamp type, the latest-row order) is [`crate::layout`]'s.
//!
//! Writes replace a window of event time in one Delta commit (`replaceWhere`): rows already
//! in the table inside `[start, end)` are removed and the new rows added atomically, so
//! running a window twice leaves one copy of each row, and a reader never sees half a run.
//! Quiver writes the Parquet files itself, one writer per sorted partition running
//! concurrently (Delta's own writer funnels every partition into one), and commits their
//! add actions, with the removals, through Delta's commit protocol (conflict checks
//! included). Every file it writes holds its rows in the latest-row order.
//!
//! - `writer` — the Parquet writers, one per partition;
//! - `replace` — which files a window covers, and the rewrite of those straddling it;
//! - `table` — live files, the commit, the sidecar update, the schema check;
//! - `verify` — the check that a location holds a Quiver offline store (or nothing yet).
//!
//! Reads pin a table version and scan exactly that version's Parquet files with DataFusion's
//! own Parquet scan (no custom table provider), which keeps read plans serializable; files
//! known to be sorted ([`crate::sidecar`]) are merged rather than sorted again ([`crate::sorted`]).

mod replace;
mod table;
mod verify;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::kernel::Action;
use deltalake::protocol::SaveMode;
use object_store::ObjectStore;
use quiver_core::registry::Registry;
use quiver_core::state::StateStore;
use url::Url;

pub(crate) use writer::{FileTarget, write_stream};
pub use writer::{MIN_ROWS_PER_WRITER, TargetSpec};

use crate::error::{Error, Result};
use crate::layout::{PUSHED_DIR, Window, sort_columns};
use crate::sidecar;
use replace::{InWindow, file_in_window, rewrite_outside};
use table::{add_path, check_schema, commit, live_files, record_sorted_files, table_schema};
use writer::write_partitions;

/// Sees every row batch on its way into the table, with the partition it belongs to, in
/// write order within each partition; an error aborts the write (nothing is committed).
pub type RowObserver = Arc<dyn Fn(usize, &RecordBatch) -> Result<()> + Send + Sync>;

/// Asked right before each commit attempt; an error aborts the write (nothing is
/// committed). Materialization and push pass their lease's check ([`crate::lease::Lease::check`]).
pub type CommitGuard = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// What watches rows stream into a write: a row counter (for progress), an optional
/// observer, and an optional guard asked before committing.
pub struct WriteWatch {
    pub rows: Arc<AtomicU64>,
    pub observer: Option<RowObserver>,
    pub guard: Option<CommitGuard>,
}

fn ask(guard: Option<&CommitGuard>) -> Result<()> {
    guard.map_or(Ok(()), |g| g())
}

/// Who writes a window's Parquet files.
pub enum Files<'a> {
    /// This process: each partition of the plan (in the latest-row order) by its own
    /// writer, concurrently; the [`WriteWatch`]'s counter and observer see the rows.
    Here(Arc<dyn ExecutionPlan>),
    /// Another process (a cluster's executors): given where and how to write, it returns
    /// the files written and their rows; this process commits them. The watch's guard is
    /// still asked before the commit.
    Elsewhere(WriteElsewhere<'a>),
}

/// See [`Files::Elsewhere`].
pub type WriteElsewhere<'a> = Box<
    dyn FnOnce(TargetSpec) -> futures::future::BoxFuture<'a, Result<(Vec<deltalake::kernel::Add>, u64)>>
        + Send
        + 'a,
>;

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
    /// Listed as holding its rows in the latest-row order ([`crate::sidecar`]).
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

/// The folder of the offline store where the views' materialization state lives
/// (`views/<view>.json` in it; not a valid view name, so never a table's folder).
pub const STATE_FOLDER: &str = ".quiver/state";

/// Where the views' Delta tables live: a local folder, or a prefix in an object store
/// (`s3://`, `gs://`, `az://`, `memory://`).
#[derive(Clone, Debug)]
pub struct OfflineStore {
    root: Url,
    /// For object stores, the store rooted at the bucket (or container), opened once with the
    /// same settings as the lake and the registry (the `AWS_*` variables and their kin); the
    /// Delta tables, their commits and the scans of their files all go through it. Local
    /// folders are opened by Delta itself.
    remote: Option<Arc<dyn ObjectStore>>,
}

impl OfflineStore {
    /// A store rooted at a local folder URL (`file://…/`).
    pub fn new(root: Url) -> Self {
        OfflineStore { root: folder(root), remote: None }
    }

    /// A store rooted at a folder URL: a local folder, or a prefix in an object store.
    pub fn open(root: Url) -> Result<Self> {
        if root.scheme() == "file" {
            return Ok(OfflineStore::new(root));
        }
        let root = folder(root);
        quiver_core::storage::check_create_only(&root)
            .map_err(|e| Error::InvalidInput(format!("offline_store {e}")))?;
        let bucket = bucket_url(&root)?;
        let location = quiver_core::storage::open_location(&bucket)
            .map_err(|e| Error::Store(format!("offline_store {root}: {e}")))?;
        Ok(OfflineStore { root, remote: Some(location.store) })
    }

    /// Makes the store's files readable by `ctx`'s scans (DataFusion finds object stores by
    /// `scheme://bucket`); a no-op for local folders.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        if let Some(store) = &self.remote {
            ctx.register_object_store(&bucket_url(&self.root)?, store.clone());
        }
        Ok(())
    }

    /// The store's own objects next to the tables (under `.quiver/`): the object store and
    /// the store's root inside it. Local folders are opened as an object store too.
    pub fn objects(&self) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path)> {
        match &self.remote {
            Some(store) => {
                let prefix = object_store::path::Path::from_url_path(self.root.path())
                    .map_err(|e| Error::Store(format!("{}: {e}", self.root)))?;
                Ok((store.clone(), prefix))
            }
            None => {
                let location = quiver_core::storage::open_location(&self.root)
                    .map_err(|e| Error::Store(format!("{}: {e}", self.root)))?;
                Ok((location.store, location.prefix))
            }
        }
    }

    /// Checks that the store can be reached and is a Quiver offline store (or empty, and then
    /// marks it as one), before anything is written: the error names the location and what
    /// to check (endpoint, credentials, bucket, a prefix holding other files).
    pub async fn verify(&self) -> Result<()> {
        let (store, prefix) = self.objects()?;
        verify::verify(store.as_ref(), &prefix, &self.root).await
    }

    /// The views' materialization state, kept in this store under [`STATE_FOLDER`]; a view
    /// with no state there yet is read from `registry`'s `state/` and moved here by its
    /// next save ([`StateStore::reading_registry`]).
    pub fn state(&self, registry: &Registry) -> Result<StateStore> {
        let (store, mut prefix) = self.objects()?;
        for part in STATE_FOLDER.split('/') {
            prefix = prefix.join(part);
        }
        Ok(StateStore::at(store, prefix).reading_registry(registry))
    }

    /// The materialization leases of this store's views.
    pub fn leases(&self) -> Result<crate::lease::Leases> {
        let (store, prefix) = self.objects()?;
        Ok(crate::lease::Leases::new(store, &prefix, self.root.as_str()))
    }

    /// The store's root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The Delta table of a view.
    pub fn table_url(&self, view: &str) -> Result<Url> {
        self.root
            .join(&format!("{view}/"))
            .map_err(|e| Error::Internal(format!("table URL for '{view}': {e}")))
    }

    async fn open_table(&self, view: &str) -> Result<DeltaTable> {
        let url = self.table_url(view)?;
        let fail = |e: deltalake::DeltaTableError| Error::Store(format!("opening {url}: {e}"));
        let mut table = match &self.remote {
            None => {
                if let Ok(path) = url.to_file_path() {
                    std::fs::create_dir_all(&path)
                        .map_err(|e| Error::Store(format!("{}: {e}", path.display())))?;
                }
                deltalake::DeltaTableBuilder::from_url(url.clone()).map_err(fail)?.build().map_err(fail)?
            }
            Some(root) => {
                // Delta's own commit protocol over our store: each commit file is created
                // with a create-only put, so of two writers committing the same version one
                // fails and retries on top of the other.
                let prefix = object_store::path::Path::from_url_path(url.path())
                    .map_err(|e| Error::Store(format!("{url}: {e}")))?;
                let prefixed: Arc<dyn ObjectStore> =
                    Arc::new(object_store::prefix::PrefixStore::new(root.clone(), prefix));
                let log_store = deltalake::logstore::default_logstore(
                    prefixed,
                    root.clone(),
                    &url,
                    &deltalake::logstore::StorageConfig::default(),
                );
                DeltaTable::new(log_store)
            }
        };
        // Loading a location with no commit log yet is how a new table starts; checking first
        // keeps the kernel from logging that as an error.
        if table.verify_deltatable_existence().await.map_err(fail)? {
            table.load().await.map_err(fail)?;
        }
        Ok(table)
    }

    /// The latest version of a view's table, or `None` when nothing was materialized yet.
    pub async fn latest_version(&self, view: &str) -> Result<Option<u64>> {
        Ok(self.open_table(view).await?.version())
    }

    /// Replaces the rows of `window` (event time) with `rows`, in one commit. `rows` must
    /// have exactly the view's offline columns ([`crate::layout::offline_schema`]), and
    /// each of its partitions must be in the latest-row order: every
    /// partition is encoded by its own Parquet writer, concurrently, into files of its own
    /// (sorted, and listed as such). `watch.rows` is advanced as rows stream into the
    /// writers (for progress reports), and `watch.observer` sees each batch with its
    /// partition.
    ///
    /// The replacement follows Delta's `replaceWhere` for the files materialization wrote:
    /// files whose statistics put all their rows inside the window are removed, files wholly
    /// outside are kept, and files that straddle an edge (or have no statistics) are
    /// rewritten with their rows outside the window, in their own order. Pushed files are
    /// kept whole. A new table is created by the same commit.
    pub async fn write_window(
        &self,
        ctx: &SessionContext,
        view: &str,
        schema: SchemaRef,
        files: Files<'_>,
        window: &Window,
        watch: WriteWatch,
    ) -> Result<WriteOutcome> {
        let WriteWatch { rows: counter, observer, guard } = watch;
        let mut table = self.open_table(view).await?;
        if table.version().is_some() {
            check_schema(view, &table, &schema)?;
        }
        let target = FileTarget::new(view, &table, &schema)?;
        let (added, rows) = self.write_files(ctx, view, files, &target, counter, observer).await?;
        let predicate = deltalake::delta_datafusion::expr::fmt_expr_to_sql(&window.table_inside())
            .map_err(|e| Error::Store(format!("writing view '{view}': {e}")))?;
        loop {
            // Every file written here is sorted: the window's, and the rewrites of sorted files.
            let mut sorted_paths: Vec<String> = added.iter().map(add_path).collect();
            let mut actions: Vec<Action> = added.iter().cloned().map(Action::Add).collect();
            if table.version().is_some() {
                let (replaced, sorted) = replace_actions(ctx, view, &table, &target, &schema, window).await?;
                actions.extend(replaced);
                sorted_paths.extend(sorted);
            }
            let creating = table.version().is_none();
            ask(guard.as_ref())?;
            match commit(view, &table, &target, actions, SaveMode::Overwrite, Some(predicate.clone())).await {
                Ok(state) => {
                    record_sorted_files(view, &table, &state, &schema, sorted_paths).await;
                    return Ok(WriteOutcome { version: state.version(), rows });
                }
                Err(e) if creating => table = self.created_meanwhile(view, &schema, e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Replaces the whole table of a view with `rows` (the rows of `window`, sorted per
    /// partition as for [`OfflineStore::write_window`]) under `schema`, the view's columns
    /// now, whatever the table's were: one commit records the new schema, removes every live
    /// file (pushed ones included: they have the old columns) and adds the new files. The
    /// table's earlier versions keep the old rows, readable by version until the table is
    /// vacuumed, so a training set pinned to one still rebuilds. Returns the write and how
    /// many pushed rows the new version no longer holds. A view with no table yet gets a
    /// plain first write.
    pub async fn rebuild_table(
        &self,
        ctx: &SessionContext,
        view: &str,
        schema: SchemaRef,
        files: Files<'_>,
        window: &Window,
        watch: WriteWatch,
    ) -> Result<(WriteOutcome, u64)> {
        use deltalake::kernel::MetadataExt;
        let table = self.open_table(view).await?;
        if table.version().is_none() {
            return Ok((self.write_window(ctx, view, schema, files, window, watch).await?, 0));
        }
        let WriteWatch { rows: counter, observer, guard } = watch;
        let target = FileTarget::fresh(view, &table, &schema)?;
        let (added, rows) = self.write_files(ctx, view, files, &target, counter, observer).await?;
        let fail = |e: &dyn std::fmt::Display| Error::Store(format!("rebuilding view '{view}': {e}"));
        let metadata = table
            .snapshot()
            .map_err(|e| fail(&e))?
            .metadata()
            .clone()
            .with_schema(&target.delta_schema)
            .map_err(|e| fail(&e))?;
        let live = live_files(view, &table)?;
        let pushed_rows: u64 =
            live.iter().filter(|f| is_pushed(&f.path)).map(|f| stats_rows(f.stats.as_deref())).sum();
        let sorted_paths: Vec<String> = added.iter().map(add_path).collect();
        let mut actions = vec![Action::Metadata(metadata)];
        actions.extend(live.into_iter().map(|f| Action::Remove(f.remove)));
        actions.extend(added.into_iter().map(Action::Add));
        ask(guard.as_ref())?;
        let state = commit(view, &table, &target, actions, SaveMode::Overwrite, None).await?;
        record_sorted_files(view, &table, &state, &schema, sorted_paths).await;
        Ok((WriteOutcome { version: state.version(), rows }, pushed_rows))
    }

    /// Writes a window's files to `target` ([`Files`]), returning them and their rows.
    async fn write_files(
        &self,
        ctx: &SessionContext,
        view: &str,
        files: Files<'_>,
        target: &FileTarget,
        counter: Arc<AtomicU64>,
        observer: Option<RowObserver>,
    ) -> Result<(Vec<deltalake::kernel::Add>, u64)> {
        match files {
            Files::Here(rows) => {
                let before = counter.load(Ordering::Relaxed);
                let added =
                    write_partitions(view, rows, ctx.task_ctx(), target, counter.clone(), observer).await?;
                Ok((added, counter.load(Ordering::Relaxed) - before))
            }
            Files::Elsewhere(write) => write(target.spec(&self.table_url(view)?)).await,
        }
    }

    /// After a failed first commit of a view's table: the table another writer created in
    /// the meantime (to commit on top of), or the failure when there is none.
    async fn created_meanwhile(&self, view: &str, schema: &SchemaRef, failure: Error) -> Result<DeltaTable> {
        let table = self.open_table(view).await?;
        if table.version().is_none() {
            return Err(failure);
        }
        check_schema(view, &table, schema)?;
        Ok(table)
    }

    /// Appends `batches` (exactly the view's offline columns, in the latest-row order
    /// across all of them: the files written are listed as sorted) to a view's table in one
    /// commit, as pushed files ([`crate::layout::PUSHED_DIR`]) that no window replaces.
    /// Used by push: rows that arrive outside materialization. `guard` is asked before each
    /// commit attempt.
    pub async fn append(
        &self,
        view: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        guard: Option<CommitGuard>,
    ) -> Result<WriteOutcome> {
        let table = self.open_table(view).await?;
        if table.version().is_some() {
            check_schema(view, &table, &schema)?;
        }
        let target = FileTarget::new(view, &table, &schema)?.in_folder(PUSHED_DIR);
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
        let mut table = table;
        loop {
            let actions = added.iter().cloned().map(Action::Add).collect();
            let creating = table.version().is_none();
            ask(guard.as_ref())?;
            match commit(view, &table, &target, actions, SaveMode::Append, None).await {
                Ok(state) => {
                    record_sorted_files(view, &table, &state, &schema, sorted_paths).await;
                    return Ok(WriteOutcome {
                        version: state.version(),
                        rows: counter.load(Ordering::Relaxed),
                    });
                }
                Err(e) if creating => table = self.created_meanwhile(view, &schema, e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// The files of a view's table at `version` (latest when `None`).
    pub async fn snapshot(&self, view: &str, version: Option<u64>) -> Result<Option<TableSnapshot>> {
        let url = self.table_url(view)?;
        let mut table = self.open_table(view).await?;
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
        let listed = sidecar::load(table.object_store().as_ref(), &sort_columns(&schema)).await;
        let files = live_files(view, &table)?
            .into_iter()
            .map(|f| TableFile { sorted: listed.contains(&f.path), url: f.url, path: f.path, size: f.size })
            .collect();
        Ok(Some(TableSnapshot { url, version, files, schema }))
    }
}

/// What replacing `window` does to the live files of `table`: the removes, and the adds of
/// the rewrites of files straddling its edges (with the paths of those that are sorted).
async fn replace_actions(
    ctx: &SessionContext,
    view: &str,
    table: &DeltaTable,
    target: &FileTarget,
    schema: &SchemaRef,
    window: &Window,
) -> Result<(Vec<Action>, Vec<String>)> {
    let listed = sidecar::load(table.object_store().as_ref(), &sort_columns(schema)).await;
    let mut actions = Vec::new();
    let mut sorted_paths = Vec::new();
    for file in live_files(view, table)? {
        if is_pushed(&file.path) {
            continue;
        }
        match file_in_window(file.stats.as_deref(), window) {
            InWindow::Outside => continue,
            InWindow::Inside => {}
            InWindow::Straddles => {
                let kept = rewrite_outside(ctx, view, &file, target, window).await?;
                if listed.contains(&file.path) {
                    sorted_paths.extend(kept.iter().map(add_path));
                }
                actions.extend(kept.into_iter().map(Action::Add));
            }
        }
        actions.push(Action::Remove(file.remove));
    }
    Ok((actions, sorted_paths))
}

/// The row count in a file's Delta statistics (0 when they do not say).
fn stats_rows(stats: Option<&str>) -> u64 {
    stats
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|s| s.get("numRecords").and_then(|n| n.as_u64()))
        .unwrap_or(0)
}

/// Whether a table file (path as the Delta log names it) holds pushed rows.
fn is_pushed(path: &str) -> bool {
    path.strip_prefix(PUSHED_DIR).is_some_and(|rest| rest.starts_with('/'))
}

/// `url` with a trailing slash: a folder.
fn folder(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url
}

/// `scheme://bucket/` of an object store URL: where its store is rooted.
fn bucket_url(url: &Url) -> Result<Url> {
    let host = url.host_str().unwrap_or_default();
    Url::parse(&format!("{}://{host}/", url.scheme()))
        .map_err(|e| Error::InvalidInput(format!("offline_store {url}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::layout::{CREATED_TIMESTAMP, EVENT_TIMESTAMP, stored_timestamp_type};
    use crate::types::UTC;
    use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema};

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

    fn test_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            ArrowField::new("driver_id", DataType::Int64, true),
            ArrowField::new(EVENT_TIMESTAMP, stored_timestamp_type(), true),
            ArrowField::new(CREATED_TIMESTAMP, stored_timestamp_type(), true),
            ArrowField::new("conv_rate", DataType::Float64, true),
        ]))
    }

    async fn all_rows(store: &OfflineStore, view: &str) -> Vec<(i64, i64)> {
        use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray};
        let snapshot = store.snapshot(view, None).await.unwrap().unwrap();
        let ctx = SessionContext::new();
        let rows = crate::sorted::sorted_rows(&ctx, Some(&snapshot), snapshot.schema.clone()).unwrap();
        let mut out = Vec::new();
        for batch in datafusion::physical_plan::collect(rows, ctx.task_ctx()).await.unwrap() {
            let ids = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let times = batch.column(1).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
            out.extend((0..batch.num_rows()).map(|i| (ids.value(i), times.value(i))));
        }
        out
    }

    #[tokio::test]
    async fn replacing_a_window_keeps_pushed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = OfflineStore::new(Url::from_directory_path(dir.path()).unwrap());
        let schema = test_schema();
        let window = Window::new(
            chrono::DateTime::from_timestamp_micros(0).unwrap(),
            chrono::DateTime::from_timestamp_micros(100).unwrap(),
        )
        .unwrap();
        let ctx = SessionContext::new();
        let materialize = |ids: Vec<i64>, times: Vec<i64>| {
            let batch = pushed(&schema, &ids, &times);
            datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
                &[vec![batch]],
                schema.clone(),
                None,
            )
            .unwrap()
        };
        let watch = || WriteWatch { rows: Arc::new(AtomicU64::new(0)), observer: None, guard: None };
        store
            .write_window(
                &ctx,
                "v",
                schema.clone(),
                Files::Here(materialize(vec![1, 2], vec![10, 20])),
                &window,
                watch(),
            )
            .await
            .unwrap();
        // Pushed rows inside the window and across its end.
        store.append("v", schema.clone(), vec![pushed(&schema, &[1, 3], &[50, 150])], None).await.unwrap();
        let snapshot = store.snapshot("v", None).await.unwrap().unwrap();
        let pushed_files: Vec<&str> =
            snapshot.files.iter().map(|f| f.path.as_str()).filter(|p| is_pushed(p)).collect();
        assert_eq!(pushed_files.len(), 1, "{:?}", snapshot.files);
        assert!(pushed_files[0].starts_with("pushed/part-"), "{pushed_files:?}");

        // The window again, from a lake that now says otherwise: its own rows are replaced,
        // the pushed ones (inside it too) stay, once.
        store
            .write_window(
                &ctx,
                "v",
                schema.clone(),
                Files::Here(materialize(vec![2], vec![30])),
                &window,
                watch(),
            )
            .await
            .unwrap();
        assert_eq!(all_rows(&store, "v").await, vec![(1, 50), (2, 30), (3, 150)]);
        store
            .write_window(
                &ctx,
                "v",
                schema.clone(),
                Files::Here(materialize(vec![2], vec![30])),
                &window,
                watch(),
            )
            .await
            .unwrap();
        assert_eq!(all_rows(&store, "v").await, vec![(1, 50), (2, 30), (3, 150)], "idempotent");
        assert!(!is_pushed("pushedx/part-0.parquet") && !is_pushed("part-0.parquet"));
    }

    #[tokio::test]
    async fn appends_create_the_table_then_add_sorted_files_in_one_commit_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = OfflineStore::new(Url::from_directory_path(dir.path()).unwrap());
        let schema = test_schema();
        let first =
            store.append("v", schema.clone(), vec![pushed(&schema, &[1, 2], &[10, 20])], None).await.unwrap();
        assert_eq!(first, WriteOutcome { version: 0, rows: 2 });
        let second = store
            .append(
                "v",
                schema.clone(),
                vec![pushed(&schema, &[1], &[30]), pushed(&schema, &[3], &[5])],
                None,
            )
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
        let refused = store.append("v", other, vec![bad], None).await.unwrap_err().to_string();
        assert!(refused.contains("declares [driver_id Utf8]"), "{refused}");
        assert_eq!(store.latest_version("v").await.unwrap(), Some(1));
    }
}
