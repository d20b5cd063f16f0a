//! Reading an offline table in the latest-row order ([`crate::layout`]): files the sidecar
//! lists as sorted ([`crate::sidecar`]) are scanned as sorted streams (one partition each),
//! the others are sorted, and everything is merged with DataFusion's sort-preserving merge.
//! The point-in-time join still checks the order as it reads, so a wrong sidecar entry
//! fails loudly instead of giving a wrong answer. For a join run in several partitions (on
//! a cluster), [`partitioned_rows`] splits the rows by a hash of the join keys instead and
//! sorts each part.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, Partitioning, PhysicalExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::layout::latest_row_ordering;
use crate::rowsort::SortRowsExec;
use crate::store::TableSnapshot;

/// The Parquet source for scanning an offline table's files, set up as DataFusion's own
/// Parquet tables are: the session's Parquet options, one read for a footer of up to the
/// configured size hint (two round trips per file otherwise, which on an object store is a
/// request each), and footers kept in the session's bounded metadata cache. A table's files
/// are never rewritten under the same name (each write makes new files), so a cached footer
/// is never stale.
pub(crate) fn table_file_source(
    ctx: &SessionContext,
    schema: SchemaRef,
    store_url: &ObjectStoreUrl,
) -> Result<Arc<ParquetSource>> {
    let state = ctx.state();
    let options = state.table_options().parquet.clone();
    let hint = options.global.metadata_size_hint;
    let runtime = state.runtime_env();
    let store = runtime.object_store(store_url)?;
    let footers = runtime.cache_manager.get_file_metadata_cache();
    let mut source = ParquetSource::new(schema)
        .with_table_parquet_options(options)
        .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(store, footers)));
    if let Some(hint) = hint {
        source = source.with_metadata_size_hint(hint);
    }
    Ok(Arc::new(source))
}

/// More sorted files than this are sorted together rather than merged: a merge keeps one
/// open reader and one batch per file.
pub const MAX_MERGED_FILES: usize = 256;

/// The rows of a pinned table version in the latest-row order of `schema`
/// ([`crate::layout`]), as one partition: sorted files are merged, the others sorted first. A view
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

    let source = table_file_source(ctx, schema.clone(), &store_url)?;
    let scan = |groups: Vec<FileGroup>, ordered: bool| -> Arc<dyn ExecutionPlan> {
        let mut config =
            FileScanConfigBuilder::new(store_url.clone(), source.clone()).with_file_groups(groups);
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
        inputs.push(Arc::new(SortRowsExec::new(ordering.clone(), scan(groups, false))));
    }
    let input = UnionExec::try_new(inputs)?;
    if input.output_partitioning().partition_count() == 1 {
        return Ok(input);
    }
    Ok(Arc::new(SortPreservingMergeExec::new(ordering, input)))
}

/// The rows of a pinned table version split into `partitions` partitions by a hash of the
/// columns `keys` (indices into `schema`), each partition sorted in the latest-row order:
/// what a point-in-time join run partition by partition reads, on a cluster. The files are
/// scanned in the session's partitions whether or not they are sorted, since the split
/// undoes their order. A view never materialized reads as `partitions` empty partitions.
pub fn partitioned_rows(
    ctx: &SessionContext,
    snapshot: Option<&TableSnapshot>,
    schema: SchemaRef,
    keys: &[usize],
    partitions: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let ordering = latest_row_ordering(&schema)?;
    let hash: Vec<Arc<dyn PhysicalExpr>> = keys
        .iter()
        .map(|i| Arc::new(Column::new(schema.field(*i).name(), *i)) as Arc<dyn PhysicalExpr>)
        .collect();
    let files = snapshot.map(|s| s.files.as_slice()).unwrap_or_default();
    let scan: Arc<dyn ExecutionPlan> = if files.is_empty() {
        // Split too, so both sides of the join have the same partition count on every
        // engine (an empty scan's own count does not survive every plan codec).
        Arc::new(EmptyExec::new(schema.clone()))
    } else {
        let first = ListingTableUrl::parse(&files[0].url)?;
        let store_url = first.object_store();
        let groups_wanted = ctx.copied_config().target_partitions().clamp(1, files.len());
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups_wanted];
        for (i, file) in files.iter().enumerate() {
            let url = ListingTableUrl::parse(&file.url)?;
            if url.object_store() != store_url {
                return Err(Error::Store(format!(
                    "the files of one table live in different stores: {} and {}",
                    files[0].url, file.url
                )));
            }
            groups[i % groups_wanted].push(PartitionedFile::new(url.prefix().to_string(), file.size));
        }
        let source = table_file_source(ctx, schema.clone(), &store_url)?;
        let config = FileScanConfigBuilder::new(store_url, source)
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .build();
        DataSourceExec::from_data_source(config)
    };
    let split = Arc::new(RepartitionExec::try_new(scan, Partitioning::Hash(hash, partitions.max(1)))?);
    Ok(Arc::new(SortRowsExec::new(ordering, split)))
}

/// Sorts every partition of `input` (in parallel, spilling under the memory limit) and
/// merges them into one sorted partition.
pub fn sort_into_one(input: Arc<dyn ExecutionPlan>, ordering: LexOrdering) -> Arc<dyn ExecutionPlan> {
    let sorted: Arc<dyn ExecutionPlan> = Arc::new(SortRowsExec::new(ordering.clone(), input));
    if sorted.output_partitioning().partition_count() <= 1 {
        return sorted;
    }
    Arc::new(SortPreservingMergeExec::new(ordering, sorted))
}
