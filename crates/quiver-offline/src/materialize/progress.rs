//! Progress of a materialization: row counters a caller can watch while a view runs, the
//! callback it receives, and the pass-through operator that counts rows as they enter the
//! sorts (so progress needs no counting pass over the window).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

use super::ViewReport;

/// Row counters of a view being materialized, advanced as the run goes.
#[derive(Clone, Debug, Default)]
pub struct ViewRows {
    /// Rows of the window read from the lake so far (they are sorted before any is written).
    pub read: Arc<AtomicU64>,
    /// Rows of the window read so far that lack a join key: they name no entity, so they
    /// are left out (and not counted in `read`).
    pub null_keys: Arc<AtomicU64>,
    /// Rows of the source without an event time: they belong to no window, so every run
    /// reads them along with its window, leaves them out and counts them here.
    pub null_event_times: Arc<AtomicU64>,
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

/// Passes its input through, counting the rows (the rows read, for progress) and the
/// partitions read to the end, and leaving out rows that lack a join key or an event time
/// (each counted apart).
#[derive(Clone, Debug)]
pub(crate) struct CountRowsExec {
    input: Arc<dyn ExecutionPlan>,
    /// The join keys are the first `keys` columns (the offline layout).
    keys: usize,
    rows: Arc<AtomicU64>,
    null_keys: Arc<AtomicU64>,
    null_event_times: Arc<AtomicU64>,
    partitions_read: Arc<AtomicUsize>,
    /// Per partition read to the end: rows kept, rows without a key, rows without a time
    /// (what an executor reports of the partitions it ran).
    finished: Arc<Mutex<BTreeMap<usize, [u64; 3]>>>,
}

impl CountRowsExec {
    /// Counts `input`'s rows into `counters.read` and its finished partitions into
    /// `counters.partitions_read`; rows with a null in any of the first `keys` columns are
    /// dropped and counted into `counters.null_keys`, and the other rows whose event time
    /// (the column after the keys) is null into `counters.null_event_times`.
    pub(super) fn new(input: Arc<dyn ExecutionPlan>, keys: usize, counters: &ViewRows) -> Self {
        CountRowsExec {
            input,
            keys,
            rows: counters.read.clone(),
            null_keys: counters.null_keys.clone(),
            null_event_times: counters.null_event_times.clone(),
            partitions_read: counters.partitions_read.clone(),
            finished: Arc::default(),
        }
    }

    /// Counts of its own (an operator decoded on an executor).
    pub(crate) fn detached(input: Arc<dyn ExecutionPlan>, keys: usize) -> Self {
        CountRowsExec::new(input, keys, &ViewRows::default())
    }

    /// How many join-key columns lead its input.
    pub(crate) fn keys(&self) -> usize {
        self.keys
    }

    /// Rows kept, rows without a key and rows without a time of `partition`, once it was
    /// read to the end.
    pub(crate) fn finished(&self, partition: usize) -> Option<[u64; 3]> {
        crate::exec::lock(&self.finished).get(&partition).copied()
    }
}

/// `batch` without the rows that have a null in any of its first `keys` columns (counted
/// first) or in its event time, column `keys` (counted second, among the rows with keys).
fn without_null_keys(
    batch: datafusion::arrow::array::RecordBatch,
    keys: usize,
) -> DfResult<(datafusion::arrow::array::RecordBatch, u64, u64)> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::compute::{and, filter_record_batch, is_not_null};
    let key_columns = &batch.columns()[..keys.min(batch.num_columns())];
    let time = batch.columns().get(keys);
    if key_columns.iter().chain(time).all(|c| c.null_count() == 0) {
        return Ok((batch, 0, 0));
    }
    let mut with_keys = None;
    for column in key_columns {
        let present = is_not_null(column.as_ref())?;
        with_keys = Some(match with_keys {
            None => present,
            Some(k) => and(&k, &present)?,
        });
    }
    let rows = batch.num_rows();
    let keyed = with_keys.as_ref().map_or(rows, |k| k.true_count());
    let keep = match (with_keys, time) {
        (Some(k), Some(t)) => and(&k, &is_not_null(t.as_ref())?)?,
        (Some(k), None) => k,
        (None, Some(t)) => is_not_null(t.as_ref())?,
        (None, None) => return Ok((batch, 0, 0)),
    };
    let kept = filter_record_batch(&batch, &keep)?;
    let (no_key, no_time) = ((rows - keyed) as u64, (keyed - kept.num_rows()) as u64);
    Ok((kept, no_key, no_time))
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
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        crate::exec::visit([], f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = crate::exec::exactly("CountRowsExec", children)?;
        Ok(Arc::new(CountRowsExec { input, ..CountRowsExec::clone(&self) }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let rows = self.rows.clone();
        let null_keys = self.null_keys.clone();
        let null_event_times = self.null_event_times.clone();
        let keys = self.keys;
        let partitions_read = self.partitions_read.clone();
        let finished = self.finished.clone();
        let mine = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let counts = mine.clone();
        let end = futures::stream::once(async move {
            partitions_read.fetch_add(1, Ordering::Relaxed);
            let counts = counts.each_ref().map(|c| c.load(Ordering::Relaxed));
            crate::exec::lock(&finished).insert(partition, counts);
        })
        .filter_map(|()| futures::future::ready(None));
        let stream = self
            .input
            .execute(partition, context)?
            .map(move |batch| {
                let (batch, no_key, no_time) = without_null_keys(batch?, keys)?;
                null_keys.fetch_add(no_key, Ordering::Relaxed);
                null_event_times.fetch_add(no_time, Ordering::Relaxed);
                rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                for (counter, n) in mine.iter().zip([batch.num_rows() as u64, no_key, no_time]) {
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                Ok(batch)
            })
            .chain(end);
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.input.schema(), stream)))
    }
}
