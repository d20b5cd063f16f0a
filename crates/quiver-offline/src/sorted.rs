//! Which Parquet files of an offline table hold their rows in the latest-row order, and the
//! scan that merges such files instead of sorting them.
//!
//! Quiver writes every window sorted, each of its partitions through its own writer, and
//! every push through a one-partition writer, so each file it writes is sorted. When a window
//! is materialized again, files that straddle the window's edges are rewritten with their
//! rows outside the window, in their own order, so a rewrite of a sorted file is sorted too.
//! Files written by anyone else (another Delta writer, a tool rewriting the table) carry no such
//! promise. Sortedness is therefore recorded per file, by the writer that knows it, in a
//! small sidecar next to the Delta log:
//!
//! ```text
//! <table>/_quiver/sorted_files.json
//! {"format": 1, "order": ["driver_id", "event_timestamp", "created_timestamp", "conv_rate"],
//!  "files": ["part-00000-….parquet", …]}
//! ```
//!
//! Paths are as the Delta log names them (relative to the table). Files are immutable, so a
//! name listed once stays true; the list is pruned to the files live at the newest version
//! on each write. The sidecar is written after the Delta commit: when that fails (or a
//! crash falls in between), the new files are simply not listed and readers sort them —
//! slower, never wrong. The leading underscore keeps Delta's vacuum away from the folder.
//!
//! Readers ([`sorted_rows`]) scan listed files as sorted streams (one partition each), sort
//! the others, and merge everything with DataFusion's sort-preserving merge. The
//! point-in-time join still checks the order as it reads, so a wrong entry fails loudly.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{CREATED_TIMESTAMP, EVENT_TIMESTAMP, TableSnapshot};

/// The sidecar's location inside a table.
pub const SIDECAR: &str = "_quiver/sorted_files.json";

/// More sorted files than this are sorted together rather than merged: a merge keeps one
/// open reader and one batch per file.
pub const MAX_MERGED_FILES: usize = 256;

/// The columns an offline table's rows are sorted by, ascending with nulls first: the join
/// keys (the columns before `event_timestamp`), `event_timestamp`, `created_timestamp`, then
/// every feature that is not a list (a full tie is broken by the values, so the choice of
/// row never depends on file order).
pub fn sort_columns(schema: &Schema) -> Vec<String> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let event = names.iter().position(|n| *n == EVENT_TIMESTAMP).unwrap_or(names.len());
    let mut order: Vec<String> = names[..event].iter().map(|n| n.to_string()).collect();
    order.push(EVENT_TIMESTAMP.into());
    order.push(CREATED_TIMESTAMP.into());
    for field in schema.fields() {
        let name = field.name().as_str();
        if names[..event].contains(&name) || name == EVENT_TIMESTAMP || name == CREATED_TIMESTAMP {
            continue;
        }
        if !matches!(field.data_type(), DataType::List(_) | DataType::LargeList(_)) {
            order.push(name.to_string());
        }
    }
    order
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    format: u32,
    order: Vec<String>,
    files: BTreeSet<String>,
}

/// The files the sidecar lists as sorted in `order`; empty when there is no sidecar, it is
/// unreadable, or it was written for another order (the view's columns changed).
pub async fn load(store: &dyn ObjectStore, order: &[String]) -> BTreeSet<String> {
    let Ok(found) = store.get(&Path::from(SIDECAR)).await else { return BTreeSet::new() };
    let Ok(bytes) = found.bytes().await else { return BTreeSet::new() };
    match serde_json::from_slice::<Sidecar>(&bytes) {
        Ok(s) if s.format == 1 && s.order == order => s.files,
        _ => BTreeSet::new(),
    }
}

/// Records `files` as the sorted files among `live` (the table's files at its newest
/// version), keeping earlier entries that are still live.
pub async fn record(
    store: &dyn ObjectStore,
    order: &[String],
    live: &BTreeSet<String>,
    files: impl IntoIterator<Item = String>,
) -> Result<()> {
    let mut listed: BTreeSet<String> = load(store, order).await.intersection(live).cloned().collect();
    listed.extend(files.into_iter().filter(|f| live.contains(f)));
    let sidecar = Sidecar { format: 1, order: order.to_vec(), files: listed };
    let bytes = serde_json::to_vec(&sidecar).map_err(|e| Error::Internal(format!("sidecar: {e}")))?;
    store
        .put(&Path::from(SIDECAR), bytes.into())
        .await
        .map_err(|e| Error::Store(format!("writing {SIDECAR}: {e}")))?;
    Ok(())
}

fn ascending() -> SortOptions {
    SortOptions { descending: false, nulls_first: true }
}

/// The rows of a pinned table version in the latest-row order ([`sort_columns`] of
/// `schema`), as one partition: sorted files are merged, the others sorted first. A view
/// never materialized reads as empty, with `schema`.
pub fn sorted_rows(
    ctx: &SessionContext,
    snapshot: Option<&TableSnapshot>,
    schema: SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    let files = snapshot.map(|s| s.files.as_slice()).unwrap_or_default();
    if files.is_empty() {
        return Ok(Arc::new(EmptyExec::new(schema)));
    }
    let ordering = latest_row_ordering(&schema)?;

    let first = ListingTableUrl::parse(&files[0].url)?;
    let store_url = first.object_store();
    let mut sorted_groups = Vec::new();
    let mut unsorted = Vec::new();
    let trust = files.iter().filter(|f| f.sorted).count() <= MAX_MERGED_FILES;
    for file in files {
        let url = ListingTableUrl::parse(&file.url)?;
        if url.object_store() != store_url {
            return Err(Error::Store(format!(
                "the files of one table live in different stores: {} and {}",
                files[0].url, file.url
            )));
        }
        let part = PartitionedFile::new(url.prefix().to_string(), file.size);
        if file.sorted && trust {
            sorted_groups.push(FileGroup::new(vec![part]));
        } else {
            unsorted.push(part);
        }
    }

    let scan = |groups: Vec<FileGroup>, ordered: bool| -> Arc<dyn ExecutionPlan> {
        let source = Arc::new(ParquetSource::new(schema.clone()));
        let mut config = FileScanConfigBuilder::new(store_url.clone(), source).with_file_groups(groups);
        if ordered {
            config = config.with_output_ordering(vec![ordering.clone()]);
        }
        DataSourceExec::from_data_source(config.build())
    };
    let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    if !sorted_groups.is_empty() {
        inputs.push(scan(sorted_groups, true));
    }
    if !unsorted.is_empty() {
        // Spread over the session's partitions, each sorted (spilling under the memory limit).
        let partitions = ctx.copied_config().target_partitions().clamp(1, unsorted.len());
        let mut groups: Vec<Vec<_>> = vec![Vec::new(); partitions];
        for (i, part) in unsorted.into_iter().enumerate() {
            groups[i % partitions].push(part);
        }
        let groups = groups.into_iter().map(FileGroup::new).collect();
        let sort = SortExec::new(ordering.clone(), scan(groups, false)).with_preserve_partitioning(true);
        inputs.push(Arc::new(sort));
    }
    let input = UnionExec::try_new(inputs)?;
    if input.output_partitioning().partition_count() == 1 {
        return Ok(input);
    }
    Ok(Arc::new(SortPreservingMergeExec::new(ordering, input)))
}

/// [`sort_columns`] of `schema` as a physical sort order (ascending, nulls first).
pub fn latest_row_ordering(schema: &Schema) -> Result<LexOrdering> {
    let order: Vec<PhysicalSortExpr> = sort_columns(schema)
        .iter()
        .map(|name| Ok(PhysicalSortExpr::new(Arc::new(Column::new_with_schema(name, schema)?), ascending())))
        .collect::<Result<_>>()?;
    LexOrdering::new(order).ok_or_else(|| Error::Internal("empty sort order".into()))
}

/// Sorts every partition of `input` (in parallel, spilling under the memory limit) and
/// merges them into one sorted partition.
pub fn sort_into_one(input: Arc<dyn ExecutionPlan>, ordering: LexOrdering) -> Arc<dyn ExecutionPlan> {
    if input.output_partitioning().partition_count() <= 1 {
        return Arc::new(SortExec::new(ordering, input));
    }
    let sorted = Arc::new(SortExec::new(ordering.clone(), input).with_preserve_partitioning(true));
    Arc::new(SortPreservingMergeExec::new(ordering, sorted))
}
