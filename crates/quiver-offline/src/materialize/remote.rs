//! Materialization on a cluster: the executors read the window, sort it and write its
//! Parquet files; this process commits them.
//!
//! The plan shipped to the cluster is `WriteFilesExec(SortRowsExec(CountRowsExec(hash
//! repartition by the join keys (the window's rows))))`. The repartition is the shuffle:
//! every row of one entity lands in one partition, so each partition's files hold whole
//! entities in the latest-row order. Each task of the last stage writes its partition into
//! the table's folder through the executor's own object store and returns one row: the Delta
//! add actions of its files and what the row observers saw (counts, the newest event time,
//! the statistics' and the expectations' partial state, the latest row of each entity).
//! Nothing is committed on the executors: this process merges what the partitions report
//! exactly as it merges its own writers' observations, asks the commit guard (lease,
//! expectations) and commits every file in one Delta commit.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    SendableRecordBatchStream,
};
use quiver_core::definitions::Definitions;
use serde::{Deserialize, Serialize};

use super::online::RunEnds;
use super::progress::CountRowsExec;
use crate::error::{Error, Result};
use crate::expect::{Checker, CheckerPart};
use crate::stats::Statistics;
use crate::store::{FileTarget, TargetSpec, write_stream};

/// What an executor needs to write one partition of a window and report on it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteSpec {
    /// The view being written (in errors and logs).
    pub view: String,
    pub target: TargetSpec,
    /// The view and the entities it joins on (nothing else of the registry), for the
    /// statistics and the expectations.
    pub defs: Definitions,
    /// Partitions of the write (the statistics' and the checks' partition count).
    pub partitions: usize,
    /// The seed of the statistics' samples.
    pub sample_seed: u64,
    /// The seeds of the expectations' `unique` fingerprints; `None`: no expectations.
    pub check_seeds: Option<(u64, u64)>,
    /// Keep each entity's latest row (the view is online and an online store is set).
    pub online: bool,
}

/// What one partition reported, beside its binary parts.
#[derive(Serialize, Deserialize)]
struct PartitionReport {
    adds: Vec<deltalake::kernel::Add>,
    /// Rows written.
    rows: u64,
    /// Rows kept, rows without a key, rows without an event time (read before the sort).
    counted: [u64; 3],
    newest_us: Option<i64>,
    statistics: String,
    /// The expectations' tally (JSON), when the view has expectations.
    tally: Option<String>,
}

/// Writes each partition of its input into the table `spec` names and returns one row per
/// partition: `report` (JSON), `latest` (the latest row of each entity, Arrow
/// IPC, when online) and `fingerprints` (the `unique` checks' fingerprints).
#[derive(Debug, Clone)]
pub struct WriteFilesExec {
    input: Arc<dyn ExecutionPlan>,
    spec: WriteSpec,
    cache: Arc<PlanProperties>,
}

fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("report", DataType::Utf8, false),
        Field::new("latest", DataType::Binary, true),
        Field::new("fingerprints", DataType::Binary, true),
    ]))
}

impl WriteFilesExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: WriteSpec) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        WriteFilesExec { input, spec, cache }
    }

    pub fn spec(&self) -> &WriteSpec {
        &self.spec
    }
}

impl DisplayAs for WriteFilesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WriteFilesExec: view={}", self.spec.view)
    }
}

impl ExecutionPlan for WriteFilesExec {
    fn name(&self) -> &'static str {
        "WriteFilesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        crate::exec::visit([], f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = crate::exec::exactly("WriteFilesExec", children)?;
        Ok(Arc::new(WriteFilesExec::new(input, self.spec.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.clone();
        let spec = self.spec.clone();
        let written = async move {
            // A DataFusion error from the input goes back as it came: Ballista finds a lost
            // shuffle file (its `FetchFailed`) by walking DataFusion's error chain, and then
            // re-runs the stage that wrote it instead of failing the job.
            write_partition(input, &spec, partition, context).await.map_err(|e| match e {
                Error::DataFusion(e) => e,
                other => DataFusionError::External(Box::new(other)),
            })
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(output_schema(), futures::stream::once(written))))
    }
}

/// The `CountRowsExec` under `plan` (down its first inputs), if any.
fn count_rows(plan: &Arc<dyn ExecutionPlan>) -> Option<&CountRowsExec> {
    let any: &dyn std::any::Any = plan.as_ref();
    any.downcast_ref::<CountRowsExec>().or_else(|| plan.children().first().and_then(|c| count_rows(c)))
}

/// One task: writes `partition` and returns its one-row report.
async fn write_partition(
    input: Arc<dyn ExecutionPlan>,
    spec: &WriteSpec,
    partition: usize,
    context: Arc<TaskContext>,
) -> Result<RecordBatch> {
    let view = spec
        .defs
        .feature_views
        .first()
        .ok_or_else(|| Error::Internal(format!("writing view '{}': no definition sent", spec.view)))?;
    let url = url::Url::parse(&spec.target.table_url)
        .map_err(|e| Error::Internal(format!("writing view '{}': the table URL: {e}", spec.view)))?;
    let store_url =
        datafusion::execution::object_store::ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
    let root = context.runtime_env().object_store(&store_url).map_err(|e| {
        Error::Store(format!(
            "writing view '{}': this executor has no object store for the table: {e}",
            spec.view
        ))
    })?;
    let prefix = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| Error::Internal(format!("writing view '{}': the table path: {e}", spec.view)))?;
    let store: deltalake::logstore::ObjectStoreRef =
        Arc::new(object_store::prefix::PrefixStore::new(root, prefix));
    let target = FileTarget::from_spec(&spec.target, store)?;
    let schema = input.schema();
    let statistics = Statistics::new(view, &schema, spec.partitions, spec.sample_seed);
    let checker = match spec.check_seeds {
        Some(seeds) => Checker::seeded(&spec.defs, view, &schema, spec.partitions, false, None, seeds)?,
        None => None,
    };
    let keys = spec.defs.join_keys(view).len();
    let mut ends = spec.online.then(|| RunEnds::new(keys));
    let mut newest_us: Option<i64> = None;
    let stream = input.execute(partition, context)?;
    let written = AtomicU64::new(0);
    let adds = write_stream(&spec.view, stream, &target, &written, |batch| {
        if let Some(t) = super::newest_event_us(batch) {
            newest_us = Some(newest_us.map_or(t, |n| n.max(t)));
        }
        if let Some(c) = &checker {
            c.observe(partition, batch)?;
        }
        statistics.observe(partition, batch)?;
        match &mut ends {
            Some(ends) => ends.push(batch),
            None => Ok(()),
        }
    })
    .await?;
    let counted = count_rows(&input).and_then(|c| c.finished(partition)).ok_or_else(|| {
        Error::Internal(format!("writing view '{}': partition {partition} was not counted", spec.view))
    })?;
    let latest = match ends {
        Some(ends) => Some(ipc(&schema, &ends.finish())?),
        None => None,
    };
    let part = checker.as_ref().map(|c| c.export(partition)).transpose()?;
    let (tally, fingerprints) = match part {
        Some(CheckerPart { tally, fingerprints }) => (Some(tally), Some(fingerprints)),
        None => (None, None),
    };
    let report = PartitionReport {
        adds,
        rows: written.into_inner(),
        counted,
        newest_us,
        statistics: statistics.export(partition)?,
        tally,
    };
    let report = serde_json::to_string(&report)
        .map_err(|e| Error::Internal(format!("writing view '{}': encoding the report: {e}", spec.view)))?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![report])),
        Arc::new(BinaryArray::from(vec![latest.as_deref()])),
        Arc::new(BinaryArray::from(vec![fingerprints.as_deref()])),
    ];
    RecordBatch::try_new(output_schema(), columns).map_err(arrow)
}

/// `batches` as one Arrow IPC stream.
fn ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer =
        datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, schema).map_err(arrow)?;
    for batch in batches {
        writer.write(batch).map_err(arrow)?;
    }
    writer.finish().map_err(arrow)?;
    drop(writer);
    Ok(out)
}

fn arrow(e: datafusion::arrow::error::ArrowError) -> Error {
    Error::from(DataFusionError::from(e))
}

/// The batches of an Arrow IPC stream.
fn from_ipc(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(arrow)?;
    reader.collect::<std::result::Result<Vec<_>, _>>().map_err(arrow)
}

/// What the partitions reported, merged into this process's observers.
pub(super) struct Merged {
    pub(super) adds: Vec<deltalake::kernel::Add>,
    pub(super) rows: u64,
}

/// The observers a report is merged into: the same ones a local write feeds.
pub(super) struct Sinks<'a> {
    pub(super) statistics: &'a Statistics,
    pub(super) checker: Option<&'a Checker>,
    pub(super) candidates: Option<&'a super::online::Candidates>,
    pub(super) counters: &'a super::progress::ViewRows,
    pub(super) newest: &'a std::sync::atomic::AtomicI64,
}

/// Merges the rows `WriteFilesExec` returned (one per partition, each exactly once).
pub(super) fn merge(
    view: &str,
    partitions: usize,
    batches: &[RecordBatch],
    sinks: &Sinks<'_>,
) -> Result<Merged> {
    use std::sync::atomic::Ordering;
    let bad = |what: String| Error::Internal(format!("writing view '{view}' on the cluster: {what}"));
    let mut slot = 0;
    let mut merged = Merged { adds: Vec::new(), rows: 0 };
    for batch in batches {
        let [report, latest, fingerprints] = batch.columns() else {
            return Err(bad("a report of another shape".into()));
        };
        let (Some(report), Some(latest), Some(fingerprints)) = (
            report.as_string_opt::<i32>(),
            latest.as_binary_opt::<i32>(),
            fingerprints.as_binary_opt::<i32>(),
        ) else {
            return Err(bad("a report of other column types".into()));
        };
        for row in 0..batch.num_rows() {
            // A Ballista task may run several partitions of a stage, numbering them from 0
            // within the task: the reports are told apart by their order of arrival.
            let partition = slot;
            slot += 1;
            if partition >= partitions {
                return Err(bad(format!("more reports than the {partitions} partitions")));
            }
            let report: PartitionReport =
                serde_json::from_str(report.value(row)).map_err(|e| bad(format!("a report: {e}")))?;
            sinks.statistics.absorb(partition, &report.statistics)?;
            match (sinks.checker, report.tally) {
                (Some(checker), Some(tally)) => {
                    let fingerprints =
                        if fingerprints.is_null(row) { Vec::new() } else { fingerprints.value(row).to_vec() };
                    checker.absorb(partition, &CheckerPart { tally, fingerprints })?;
                }
                (None, None) => {}
                _ => return Err(bad("expectation results that do not match the view's".into())),
            }
            if let Some(candidates) = sinks.candidates {
                if latest.is_null(row) {
                    return Err(bad(format!("partition {partition} kept no latest rows")));
                }
                for rows in from_ipc(latest.value(row))? {
                    candidates.push(partition, &rows)?;
                }
            }
            if let Some(t) = report.newest_us {
                sinks.newest.fetch_max(t, Ordering::Relaxed);
            }
            let [kept, no_key, no_time] = report.counted;
            let counters = sinks.counters;
            counters.read.fetch_add(kept, Ordering::Relaxed);
            counters.null_keys.fetch_add(no_key, Ordering::Relaxed);
            counters.null_event_times.fetch_add(no_time, Ordering::Relaxed);
            counters.written.fetch_add(report.rows, Ordering::Relaxed);
            counters.partitions_read.fetch_add(1, Ordering::Relaxed);
            merged.rows += report.rows;
            merged.adds.extend(report.adds);
        }
    }
    if slot != partitions {
        return Err(bad(format!("{slot} reports for {partitions} partitions")));
    }
    Ok(merged)
}
