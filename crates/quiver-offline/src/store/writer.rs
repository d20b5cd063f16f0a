//! Parquet writer plumbing: every partition of a plan streams into its own Delta data-file
//! writer, concurrently, with the table's own schema and Quiver's Parquet settings. The files
//! are returned as add actions for the caller to commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use deltalake::DeltaTable;
use futures::StreamExt;

use super::RowObserver;
use crate::error::{Error, Result};

/// Rows per call into a Parquet writer (the file size is checked between calls).
const WRITE_CHUNK_ROWS: usize = crate::session::BATCH_ROWS;

/// Rows of a window per Parquet writer, at least: a window smaller than this many rows per
/// partition is written by fewer writers, so small windows do not scatter into small files.
pub const MIN_ROWS_PER_WRITER: usize = 1 << 20;

/// How the files of one table are written: their schema (the table's own, as Delta stores
/// it) and the Parquet writer settings.
#[derive(Clone)]
pub(crate) struct FileTarget {
    pub(super) delta_schema: deltalake::kernel::StructType,
    pub(super) file_schema: SchemaRef,
    config: deltalake::datafile::writer::WriterConfig,
    store: deltalake::logstore::ObjectStoreRef,
    /// The folder inside the table the files go to (`None`: the table's root).
    folder: Option<String>,
    /// What [`FileTarget::spec`] carries to another process.
    settings: Settings,
}

/// The writer settings of a table other than its schema.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Settings {
    target_size: u64,
    /// Columns with statistics: `None` for all of them.
    indexed_columns: Option<u64>,
    stats_columns: Option<Vec<String>>,
}

/// Where and how the files of one write go, as it travels to an executor that writes them
/// ([`FileTarget::spec`]): the table's URL, its schema, and the writer settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TargetSpec {
    /// The table's folder (`scheme://…/view/`): the executor opens it with its own
    /// object-store settings, registered in its runtime.
    pub table_url: String,
    delta_schema: deltalake::kernel::StructType,
    settings: Settings,
}

impl FileTarget {
    /// Files for `table` as it is: its own schema once it exists, else `schema`.
    pub(super) fn new(view: &str, table: &DeltaTable, schema: &SchemaRef) -> Result<Self> {
        Self::build(view, table, schema, table.version().is_some())
    }

    /// Files of `schema` for `table`, whatever its schema now (a rebuild under new columns),
    /// with the table's own writer settings.
    pub(super) fn fresh(view: &str, table: &DeltaTable, schema: &SchemaRef) -> Result<Self> {
        Self::build(view, table, schema, false)
    }

    fn build(view: &str, table: &DeltaTable, schema: &SchemaRef, table_schema: bool) -> Result<Self> {
        use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
        use deltalake::table::config::TablePropertiesExt;
        let bad = |e: String| Error::Store(format!("view '{view}': the table schema: {e}"));
        let properties = match table.version() {
            Some(_) => Some(table.snapshot().map_err(|e| bad(e.to_string()))?.table_config().clone()),
            None => None,
        };
        let delta_schema = if table_schema {
            table.snapshot().map_err(|e| bad(e.to_string()))?.schema().as_ref().clone()
        } else {
            // Delta's own types: microsecond timestamps, `element` list items.
            let normalized = deltalake::kernel::normalize_for_delta(schema);
            normalized.as_ref().try_into_kernel().map_err(|e| bad(e.to_string()))?
        };
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
        let indexed_columns = match num_indexed {
            delta_kernel::table_properties::DataSkippingNumIndexedCols::AllColumns => None,
            delta_kernel::table_properties::DataSkippingNumIndexedCols::NumColumns(n) => Some(n),
        };
        let settings = Settings { target_size: target_size.get(), indexed_columns, stats_columns };
        Self::with_settings(delta_schema, settings, table.object_store())
    }

    fn with_settings(
        delta_schema: deltalake::kernel::StructType,
        settings: Settings,
        store: deltalake::logstore::ObjectStoreRef,
    ) -> Result<Self> {
        use delta_kernel::table_properties::DataSkippingNumIndexedCols;
        use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
        let file_schema: Schema =
            (&delta_schema).try_into_arrow().map_err(|e| Error::Store(format!("the table schema: {e}")))?;
        let file_schema = Arc::new(file_schema);
        let target_size = std::num::NonZeroU64::new(settings.target_size)
            .ok_or_else(|| Error::Store("a target file size of 0 bytes".into()))?;
        let config = deltalake::datafile::writer::WriterConfig::new(
            file_schema.clone(),
            Vec::new(),
            Some(writer_properties(&file_schema)),
            Some(target_size),
            Some(WRITE_CHUNK_ROWS),
            settings
                .indexed_columns
                .map_or(DataSkippingNumIndexedCols::AllColumns, DataSkippingNumIndexedCols::NumColumns),
            settings.stats_columns.clone(),
        );
        Ok(FileTarget { delta_schema, file_schema, config, store, folder: None, settings })
    }

    /// This target for another process, the table being at `table_url`.
    pub(super) fn spec(&self, table_url: &url::Url) -> TargetSpec {
        TargetSpec {
            table_url: table_url.to_string(),
            delta_schema: self.delta_schema.clone(),
            settings: self.settings.clone(),
        }
    }

    /// The target `spec` names, writing through `store` (the table's folder).
    pub(crate) fn from_spec(spec: &TargetSpec, store: deltalake::logstore::ObjectStoreRef) -> Result<Self> {
        Self::with_settings(spec.delta_schema.clone(), spec.settings.clone(), store)
    }

    /// The same target with its files in `folder` inside the table ([`crate::layout::PUSHED_DIR`]).
    pub(super) fn in_folder(&self, folder: &str) -> Self {
        let store: deltalake::logstore::ObjectStoreRef =
            Arc::new(object_store::prefix::PrefixStore::new(self.store.clone(), folder));
        FileTarget { store, folder: Some(folder.to_string()), ..self.clone() }
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
pub(super) async fn write_partitions(
    view: &str,
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    target: &FileTarget,
    counter: Arc<AtomicU64>,
    observer: Option<RowObserver>,
) -> Result<Vec<deltalake::kernel::Add>> {
    let mut writers = tokio::task::JoinSet::new();
    for partition in 0..plan.output_partitioning().partition_count() {
        let stream = plan.execute(partition, task_ctx.clone())?;
        let counter = counter.clone();
        let observer = observer.clone();
        let target = target.clone();
        let view = view.to_string();
        writers.spawn(async move {
            let observe = |batch: &RecordBatch| match &observer {
                Some(observe) => observe(partition, batch),
                None => Ok(()),
            };
            write_stream(&view, stream, &target, &counter, observe).await
        });
    }
    let mut added = Vec::new();
    let mut failed = None;
    while let Some(joined) = writers.join_next().await {
        match joined {
            Ok(Ok(files)) => added.extend(files.into_iter().map(|mut add| {
                // The writer named the file inside the folder; the log names it in the table.
                if let Some(folder) = &target.folder {
                    add.path = format!("{folder}/{}", add.path);
                }
                add
            })),
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

/// Streams one partition's rows into Parquet files of `target`, each batch shown to
/// `observe` first, and returns the files. On an error the upload under way is aborted and
/// nothing is returned (files already uploaded are left for vacuum, never committed).
pub(crate) async fn write_stream(
    view: &str,
    mut stream: datafusion::execution::SendableRecordBatchStream,
    target: &FileTarget,
    counter: &AtomicU64,
    mut observe: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<Vec<deltalake::kernel::Add>> {
    let mut writer =
        deltalake::datafile::writer::DeltaWriter::new(target.store.clone(), target.config.clone());
    let streamed: Result<()> = async {
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            observe(&batch)?;
            let batch = target.conform(&batch)?;
            counter.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            writer.write(&batch).await.map_err(|e| Error::Store(format!("writing view '{view}': {e}")))?;
        }
        Ok(())
    }
    .await;
    match streamed {
        Ok(()) => writer.close().await.map_err(|e| Error::Store(format!("writing view '{view}': {e}"))),
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(view, error = %abort, "could not abort an unfinished upload");
            }
            Err(e)
        }
    }
}
