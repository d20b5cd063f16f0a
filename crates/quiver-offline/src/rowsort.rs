//! Sorting a partition in memory on row-format keys, spilling sorted runs under the memory
//! limit: a materialization window's partitions, and the spine and unlisted table files of
//! a training set.
//!
//! A window is sorted by every scalar column (keys, both times, then the feature values:
//! [`crate::layout::sort_columns`]). DataFusion's sort compares such rows column by column
//! through a comparator per column, sorts each batch on its own and merges the sorted
//! batches. [`SortRowsExec`] sorts the whole partition at once instead:
//!
//! 1. the partition's batches are collected, their memory reserved from the session's pool;
//! 2. the sort columns of each batch are encoded in Arrow's row format, where comparing two
//!    rows is comparing their bytes (a batch at a time: only the prefixes below are kept);
//! 3. one index entry per row carries the first 16 bytes of its row inline (for the usual
//!    layout: the join key and most of the event time); the index is radix-sorted on those
//!    bytes (a byte equal in every row, such as a null marker or the high bytes of times in
//!    one window, costs no pass); the few runs of entries whose 16 bytes are equal are
//!    then ordered by their whole rows, encoded again for those rows alone;
//! 4. each batch is reordered on its own into the order its rows take in the whole (a
//!    gather inside one batch, which fits in cache), so that building the output reads
//!    every batch front to back rather than at random across the partition;
//! 5. the output is gathered in batches of the session's batch size, lazily, so the writer
//!    encodes the first batch while later ones are still to be gathered.
//!
//! When the pool cannot hold more of a partition (its batches, and the index and scratch
//! space reserved with each batch), the rows held so far are sorted as above and written to
//! a spill file as one sorted run; the memory is given back and collecting goes on. A run
//! is written in batches of a sixteenth of what the partition held when it spilled (a batch
//! larger than the partition's whole share: of what the pool would hold for it then). At the
//! end the runs are merged by DataFusion's multi-level merge, which merges as many runs at a
//! time as the pool holds a few batches of, through further spill files if need be: with
//! batches sized to the share, that is several runs at a time however wide the rows. Every
//! byte the sort holds is reserved by the partition itself, as one spillable consumer: no
//! reservation outside its fair share of the pool is needed, so sorts of several partitions
//! do not starve each other's merges. Only a batch larger than the partition's whole share
//! is held unreserved, alone, long enough to be sorted and spilled.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{interleave_record_batch, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_plan::SpillManager;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, SpillMetrics,
};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::streaming_merge::{SortedSpillFile, StreamingMergeBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};

/// Sorts each partition of its input on its own (the output keeps the input's
/// partitioning), in memory when the pool allows, else in sorted runs on disk merged at the
/// end.
#[derive(Debug)]
pub struct SortRowsExec {
    input: Arc<dyn ExecutionPlan>,
    ordering: LexOrdering,
    /// The plan properties of the equivalent DataFusion sort (same ordering, partitioning).
    properties: Arc<PlanProperties>,
    /// Output rows and time, and what was spilled (files, rows, bytes), per partition.
    metrics: ExecutionPlanMetricsSet,
}

impl SortRowsExec {
    pub fn new(ordering: LexOrdering, input: Arc<dyn ExecutionPlan>) -> Self {
        let equivalent = SortExec::new(ordering.clone(), input.clone()).with_preserve_partitioning(true);
        SortRowsExec {
            properties: equivalent.properties().clone(),
            input,
            ordering,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The order each partition is sorted in.
    pub fn ordering(&self) -> &LexOrdering {
        &self.ordering
    }
}

impl DisplayAs for SortRowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SortRowsExec: [{}]", self.ordering)
    }
}

impl ExecutionPlan for SortRowsExec {
    fn name(&self) -> &'static str {
        "SortRowsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        crate::exec::visit(self.ordering.iter().map(|sort| &sort.expr), f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = crate::exec::exactly("SortRowsExec", children)?;
        Ok(Arc::new(SortRowsExec::new(self.ordering.clone(), input)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context.clone())?;
        let schema = self.input.schema();
        let reservation = MemoryConsumer::new(format!("SortRowsExec[{partition}]"))
            .with_can_spill(true)
            .register(context.memory_pool());
        let spill = SpillManager::new(
            context.runtime_env(),
            SpillMetrics::new(&self.metrics, partition),
            schema.clone(),
        )
        .with_compression_type(context.session_config().spill_compression());
        let sorter =
            Sorter::new(schema.clone(), self.ordering.clone(), context.session_config().batch_size().max(1))?;
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let sorted =
            futures::stream::once(sort_partition(input, sorter, reservation, spill, baseline)).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, sorted)))
    }
}

/// One row of the index: the first 16 bytes of its row (big-endian, zero-padded) and where
/// the row is.
#[derive(Clone, Copy)]
struct Entry {
    high: u64,
    low: u64,
    batch: u32,
    row: u32,
}

/// Bytes reserved with each row held: its index entry and as much again as scratch space
/// for the radix sort.
const INDEX_BYTES_PER_ROW: usize = 2 * std::mem::size_of::<Entry>();

/// A spilled run is written in batches of at most this fraction of what the partition held
/// (its share of the pool): merging runs holds about four of each run's largest batch
/// (DataFusion reserves twice a batch's size, for two batches read ahead), so the share
/// seats a merge of several runs at a time however wide the rows are.
const SPILL_BATCHES_PER_SHARE: usize = 16;

/// Fewest rows in a spilled batch: a share too small to merge two runs of batches this
/// small is too small for the sort, and the merge says so (naming the memory limit).
const MIN_SPILL_ROWS: usize = 16;

/// About how much `reservation` may grow to now (its partition's share of the pool, less
/// what others hold), found by halving from `upper`; the reservation is left empty.
fn room(reservation: &MemoryReservation, upper: usize) -> usize {
    let mut size = upper / 2;
    while size >= 1024 {
        if reservation.try_grow(size).is_ok() {
            reservation.free();
            return size;
        }
        size /= 2;
    }
    0
}

fn prefix(bytes: &[u8]) -> (u64, u64) {
    let mut head = [0u8; 16];
    let n = bytes.len().min(16);
    head[..n].copy_from_slice(&bytes[..n]);
    let (high, low) = head.split_at(8);
    let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    (word(high), word(low))
}

/// Reads one partition to its end, sorting what the pool holds and spilling it as a sorted
/// run whenever it holds no more; returns the partition's rows in order.
async fn sort_partition(
    mut input: SendableRecordBatchStream,
    sorter: Sorter,
    reservation: MemoryReservation,
    spill: SpillManager,
    baseline: BaselineMetrics,
) -> Result<SendableRecordBatchStream> {
    let mut held: Vec<RecordBatch> = Vec::new();
    let mut runs = Runs { files: Vec::new(), batch_rows: sorter.batch_size };
    // The merge of the runs reserves a few of each run's largest batch: runs are written in
    // batches of a sixteenth of what the pool let this partition hold when it spilled.
    let mut spill_batch_bytes = 0;
    while let Some(batch) = input.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        if u32::try_from(batch.num_rows()).is_err() {
            return Err(DataFusionError::Internal(format!(
                "a batch of {} rows is too large to sort (at most {} rows a batch)",
                batch.num_rows(),
                u32::MAX
            )));
        }
        let wanted = batch.get_array_memory_size() + INDEX_BYTES_PER_ROW * batch.num_rows();
        // The index addresses batches with 32 bits: a run ends there at the latest.
        if held.len() >= u32::MAX as usize || reservation.try_grow(wanted).is_err() {
            if !held.is_empty() {
                spill_batch_bytes = reservation.size() / SPILL_BATCHES_PER_SHARE;
                runs.spill(&sorter, std::mem::take(&mut held), &spill, spill_batch_bytes)?;
                reservation.free();
            }
            if reservation.try_grow(wanted).is_err() {
                // Larger than this partition's whole share: sorted and spilled on its own,
                // in batches sized to what the pool holds for this partition now.
                spill_batch_bytes = room(&reservation, wanted) / SPILL_BATCHES_PER_SHARE;
                runs.spill(&sorter, vec![batch], &spill, spill_batch_bytes)?;
                continue;
            }
        }
        held.push(batch);
    }
    let schema = sorter.schema.clone();
    if runs.files.is_empty() {
        if held.is_empty() {
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::empty())));
        }
        let sorted = sorter.sort(held)?;
        // The scratch space of the radix sort is free again.
        let scratch = sorted.index.len() * std::mem::size_of::<Entry>();
        reservation.shrink(scratch.min(reservation.size()));
        let out = HeldRun { run: sorted, _reservation: reservation };
        let stream =
            futures::stream::unfold(out, |mut out| async move { out.run.next_batch().map(|b| (b, out)) });
        return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)));
    }
    if !held.is_empty() {
        spill_batch_bytes = spill_batch_bytes.max(reservation.size() / SPILL_BATCHES_PER_SHARE);
        runs.spill(&sorter, held, &spill, spill_batch_bytes)?;
    }
    reservation.free();
    tracing::debug!(
        consumer = reservation.consumer().name(),
        runs = runs.files.len(),
        "the pool could not hold this partition: merging its sorted runs from spill files"
    );
    // The merge holds a few batches of each run it reads, in this partition's reservation.
    // Its batches are as small as the runs' (the runs a merge pass writes, to be merged
    // again, as well): a batch of the session's size may not fit the share twice.
    let merged = StreamingMergeBuilder::new()
        .with_sorted_spill_files(runs.files)
        .with_spill_manager(spill)
        .with_schema(schema.clone())
        .with_expressions(&sorter.ordering)
        .with_metrics(baseline)
        .with_batch_size(runs.batch_rows)
        .with_fetch(None)
        .with_reservation(reservation)
        .build()?;
    let merged = merged.map_err(|e| match e {
        DataFusionError::ResourcesExhausted(_) => e.context(
            "a sort could not merge its sorted runs within the memory limit (each run needs a \
             few batches in memory at once): raise the memory limit",
        ),
        other => other,
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, merged)))
}

/// The sorted runs a partition spilled, and the fewest rows per batch any was written in.
struct Runs {
    files: Vec<SortedSpillFile>,
    batch_rows: usize,
}

impl Runs {
    /// Sorts `batches` into a new run on disk, written in batches of about `batch_bytes`.
    fn spill(
        &mut self,
        sorter: &Sorter,
        batches: Vec<RecordBatch>,
        spill: &SpillManager,
        batch_bytes: usize,
    ) -> Result<()> {
        let rows = sorter.rows_within(&batches, batch_bytes);
        self.batch_rows = self.batch_rows.min(rows);
        self.files.extend(sorter.spill(batches, spill, rows)?);
        Ok(())
    }
}

/// How a partition's rows are ordered: the sort columns in Arrow's row format.
struct Sorter {
    schema: SchemaRef,
    ordering: LexOrdering,
    converter: RowConverter,
    batch_size: usize,
}

impl Sorter {
    fn new(schema: SchemaRef, ordering: LexOrdering, batch_size: usize) -> Result<Self> {
        let fields = ordering
            .iter()
            .map(|sort| Ok(SortField::new_with_options(sort.expr.data_type(&schema)?, sort.options)))
            .collect::<Result<Vec<_>>>()?;
        let converter = RowConverter::new(fields)?;
        Ok(Sorter { schema, ordering, converter, batch_size })
    }

    fn sort_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.ordering.iter().map(|sort| sort.expr.evaluate(batch)?.into_array(batch.num_rows())).collect()
    }

    /// The held batches as one sorted run (steps 2 to 4 of the module doc).
    fn sort(&self, mut batches: Vec<RecordBatch>) -> Result<SortedRun> {
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut index: Vec<Entry> = Vec::with_capacity(total);
        for (b, batch) in batches.iter().enumerate() {
            // Rows are encoded a batch at a time, for their prefixes only.
            let encoded = self.converter.convert_columns(&self.sort_columns(batch)?)?;
            for r in 0..encoded.num_rows() {
                let (high, low) = prefix(encoded.row(r).data());
                index.push(Entry { high, low, batch: b as u32, row: r as u32 });
            }
        }
        radix_sort(&mut index);
        order_ties(&mut index, &batches, self)?;

        // Each batch is reordered on its own (a gather within one batch, which stays in
        // cache) into the order its rows take in the sorted whole; the output batches then
        // read every batch front to back, instead of at random across the partition.
        let mut orders: Vec<Vec<u32>> = batches.iter().map(|b| Vec::with_capacity(b.num_rows())).collect();
        for entry in index.iter_mut() {
            let order = &mut orders[entry.batch as usize];
            let rank = order.len() as u32;
            order.push(entry.row);
            entry.row = rank;
        }
        for (batch, order) in batches.iter_mut().zip(orders) {
            *batch = take_record_batch(batch, &UInt32Array::from(order))?;
        }
        Ok(SortedRun { batches, index, next: 0, batch_size: self.batch_size })
    }

    /// Rows per batch for batches of about `batch_bytes` or less of `batches`' rows: at
    /// least [`MIN_SPILL_ROWS`], at most the session's batch size.
    fn rows_within(&self, batches: &[RecordBatch], batch_bytes: usize) -> usize {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        // Held batches may carry spare capacity: the size a row takes here is an upper bound.
        let per_row = (bytes / rows.max(1)).max(1);
        (batch_bytes / per_row).clamp(MIN_SPILL_ROWS, self.batch_size.max(MIN_SPILL_ROWS))
    }

    /// The held batches sorted into one spill file written in batches of `batch_rows`; `None`
    /// when they hold no row.
    fn spill(
        &self,
        batches: Vec<RecordBatch>,
        spill: &SpillManager,
        batch_rows: usize,
    ) -> Result<Option<SortedSpillFile>> {
        let mut run = self.sort(batches)?;
        run.batch_size = batch_rows;
        let mut file = spill.create_in_progress_file("SortRowsExec sorted run")?;
        let mut largest = 0;
        while let Some(batch) = run.next_batch() {
            largest = largest.max(file.append_batch(&batch?)?);
        }
        Ok(file.finish()?.map(|file| SortedSpillFile { file, max_record_batch_memory: largest }))
    }
}

/// Puts each run of entries with equal prefixes in the order of their whole rows: the tied
/// rows (few: equal keys and nearly equal times) are gathered and encoded together.
fn order_ties(index: &mut [Entry], batches: &[RecordBatch], sorter: &Sorter) -> Result<()> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < index.len() {
        let (high, low) = (index[start].high, index[start].low);
        let end = start + index[start..].iter().take_while(|e| e.high == high && e.low == low).count();
        if end - start > 1 {
            runs.push(start..end);
        }
        start = end;
    }
    if runs.is_empty() {
        return Ok(());
    }
    let tied = gather(batches, runs.iter().flat_map(|run| index[run.clone()].iter()))?;
    let rows = sorter.converter.convert_columns(&sorter.sort_columns(&tied)?)?;
    let mut first = 0;
    for run in runs {
        let mut order: Vec<usize> = (0..run.len()).collect();
        order.sort_unstable_by(|a, b| rows.row(first + a).cmp(&rows.row(first + b)));
        let ordered: Vec<Entry> = order.iter().map(|i| index[run.start + i]).collect();
        first += run.len();
        index[run].copy_from_slice(&ordered);
    }
    Ok(())
}

/// Byte `d` (0 = most significant) of an entry's 16-byte prefix.
fn digit(entry: &Entry, d: usize) -> usize {
    let word = if d < 8 { entry.high } else { entry.low };
    ((word >> (56 - 8 * (d % 8))) & 0xff) as usize
}

/// Sorts entries by their prefix, least significant byte first; a byte that is the same in
/// every entry (the null markers, the high bytes of nearby times) costs no pass.
fn radix_sort(entries: &mut Vec<Entry>) {
    let n = entries.len();
    let mut counts = vec![[0usize; 256]; 16];
    for entry in entries.iter() {
        for (d, count) in counts.iter_mut().enumerate() {
            count[digit(entry, d)] += 1;
        }
    }
    let mut scratch = vec![Entry { high: 0, low: 0, batch: 0, row: 0 }; n];
    for d in (0..16).rev() {
        let count = &counts[d];
        if count.contains(&n) {
            continue;
        }
        let mut offsets = [0usize; 256];
        let mut sum = 0;
        for (offset, c) in offsets.iter_mut().zip(count.iter()) {
            *offset = sum;
            sum += c;
        }
        for entry in entries.iter() {
            let slot = &mut offsets[digit(entry, d)];
            scratch[*slot] = *entry;
            *slot += 1;
        }
        std::mem::swap(entries, &mut scratch);
    }
}

/// Sorted rows, gathered into batches on demand.
struct SortedRun {
    batches: Vec<RecordBatch>,
    index: Vec<Entry>,
    next: usize,
    batch_size: usize,
}

impl SortedRun {
    fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        if self.next >= self.index.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.index.len());
        let picked = gather(&self.batches, self.index[self.next..end].iter());
        self.next = end;
        Some(picked)
    }
}

/// A run sorted in memory, with the reservation of its memory, held until the last batch
/// is out.
struct HeldRun {
    run: SortedRun,
    _reservation: MemoryReservation,
}

/// The rows `entries` point at, in their order, as one batch.
fn gather<'a>(batches: &[RecordBatch], entries: impl Iterator<Item = &'a Entry>) -> Result<RecordBatch> {
    let picks: Vec<(usize, usize)> = entries.map(|e| (e.batch as usize, e.row as usize)).collect();
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    Ok(interleave_record_batch(&sources, &picks)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use datafusion::arrow::array::{
        BooleanArray, Float32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::compute::{SortOptions, concat_batches};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::physical_expr::PhysicalSortExpr;
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_plan::{ExecutionPlanProperties, collect_partitioned};
    use datafusion::prelude::{SessionConfig, SessionContext};

    type Rng = quiver_sample::rng::SplitMix64;

    fn schema() -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let item = Arc::new(Field::new("item", DataType::Int64, true));
        Arc::new(Schema::new(vec![
            Field::new("city", DataType::Utf8, true),
            Field::new("driver", DataType::Int64, true),
            Field::new("event", ts.clone(), true),
            Field::new("created", ts, true),
            Field::new("rate", DataType::Float32, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("trips", DataType::List(item), true),
        ]))
    }

    /// Few distinct values per column, so that rows tie on long prefixes (and on
    /// everything: full duplicates), with nulls, NaN and both zeros among the floats.
    fn batch(rng: &mut Rng, rows: usize) -> RecordBatch {
        let mut city = Vec::new();
        let mut driver = Vec::new();
        let mut event = Vec::new();
        let mut created = Vec::new();
        let mut rate = Vec::new();
        let mut flag = Vec::new();
        let mut trips = Vec::new();
        let cities = ["", "a", "ab", "abcdefghijklmnopq", "abcdefghijklmnopr"];
        for _ in 0..rows {
            let c = rng.below(6);
            city.push((c < 5).then(|| cities[c as usize]));
            let d = rng.below(5) as i64;
            driver.push((d != 4).then_some(d - 2));
            event.push(Some(rng.below(4) as i64 * 256 + rng.below(2) as i64));
            created.push((rng.below(5) != 0).then(|| rng.below(3) as i64));
            let r = [f32::NAN, -0.0, 0.0, 1.5, -1.5, f32::INFINITY][rng.below(6) as usize];
            rate.push((rng.below(7) != 0).then_some(r));
            flag.push((rng.below(4) != 0).then(|| rng.below(2) == 0));
            // A function of the sort columns, so full ties are full duplicates.
            trips.push(d.checked_sub(1).map(|x| vec![Some(x), None]));
        }
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(city)),
                Arc::new(Int64Array::from(driver)),
                Arc::new(TimestampMicrosecondArray::from(event).with_timezone("UTC")),
                Arc::new(TimestampMicrosecondArray::from(created).with_timezone("UTC")),
                Arc::new(Float32Array::from(rate)),
                Arc::new(BooleanArray::from(flag)),
                Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(trips)),
            ],
        )
        .unwrap()
    }

    fn ordering() -> LexOrdering {
        let schema = schema();
        let sorts =
            ["city", "driver", "event", "created", "rate", "flag"].iter().enumerate().map(|(i, name)| {
                // Mixed directions and null placements, as a general sort must handle.
                let options = SortOptions { descending: i == 3, nulls_first: i != 4 };
                PhysicalSortExpr::new(col(name, &schema).unwrap(), options)
            });
        LexOrdering::new(sorts).unwrap()
    }

    fn partitions(seed: u64) -> Vec<Vec<RecordBatch>> {
        let mut rng = Rng::new(seed);
        (0..2).map(|_| [700, 0, 1, 1500, 64, 900].iter().map(|n| batch(&mut rng, *n)).collect()).collect()
    }

    /// Sorts `input` with [`SortRowsExec`] (`ours`) or DataFusion's sort in `ctx`; returns
    /// each partition's rows and the number of spill files the sort wrote.
    async fn sorted_and_spilled(
        ctx: &SessionContext,
        input: Vec<Vec<RecordBatch>>,
        ours: bool,
    ) -> (Vec<RecordBatch>, usize) {
        let input_partitions = input.len();
        let source = MemorySourceConfig::try_new_exec(&input, schema(), None).unwrap();
        let plan: Arc<dyn ExecutionPlan> = if ours {
            Arc::new(SortRowsExec::new(ordering(), source))
        } else {
            Arc::new(SortExec::new(ordering(), source).with_preserve_partitioning(true))
        };
        assert_eq!(plan.output_partitioning().partition_count(), input_partitions);
        let parts = collect_partitioned(plan.clone(), ctx.task_ctx()).await.unwrap();
        assert_eq!(ctx.runtime_env().memory_pool.reserved(), 0, "the sort gave back all its memory");
        let spilled = plan.metrics().and_then(|m| m.spill_count()).unwrap_or(0);
        (parts.iter().map(|p| concat_batches(&schema(), p).unwrap()).collect(), spilled)
    }

    async fn sorted_by(ctx: &SessionContext, input: Vec<Vec<RecordBatch>>, ours: bool) -> Vec<RecordBatch> {
        sorted_and_spilled(ctx, input, ours).await.0
    }

    #[test]
    fn the_radix_sort_orders_by_the_whole_prefix() {
        let mut rng = Rng::new(7);
        // Few distinct values in some bytes, none in others, all in the rest.
        let mut entries: Vec<Entry> = (0..20_000)
            .map(|i| Entry {
                high: (rng.below(3) << 60) | (rng.below(1 << 16) << 8) | 0x01,
                low: (rng.below(1 << 30) << 34) | rng.below(4),
                batch: 0,
                row: i,
            })
            .collect();
        let mut expected = entries.clone();
        expected.sort_by_key(|e| (e.high, e.low, e.row));
        radix_sort(&mut entries);
        // Stable: equal prefixes keep their order.
        let got: Vec<_> = entries.iter().map(|e| (e.high, e.low, e.row)).collect();
        let want: Vec<_> = expected.iter().map(|e| (e.high, e.low, e.row)).collect();
        assert_eq!(got, want);
        let mut one = vec![Entry { high: 5, low: 5, batch: 0, row: 0 }];
        radix_sort(&mut one);
        assert_eq!(one[0].row, 0);
    }

    #[tokio::test]
    async fn each_partition_comes_out_as_datafusions_sort_orders_it() {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(500));
        for seed in 1..6 {
            let ours = sorted_by(&ctx, partitions(seed), true).await;
            let theirs = sorted_by(&ctx, partitions(seed), false).await;
            assert_eq!(ours, theirs, "seed {seed}");
            assert_eq!(ours.iter().map(RecordBatch::num_rows).sum::<usize>(), 2 * 3165);
        }
        // An empty partition stays empty.
        let ours = sorted_by(&ctx, vec![vec![], vec![batch(&mut Rng::new(9), 10)]], true).await;
        assert_eq!((ours[0].num_rows(), ours[1].num_rows()), (0, 10));
    }

    fn small_pool(pool: usize) -> SessionContext {
        pool_with_batches(pool, 500)
    }

    fn pool_with_batches(pool: usize, batch_size: usize) -> SessionContext {
        let config =
            SessionConfig::new().with_batch_size(batch_size).with_sort_spill_reservation_bytes(256 << 10);
        let runtime =
            RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(pool))).build_arc();
        SessionContext::new_with_config_rt(config, runtime.unwrap())
    }

    #[tokio::test]
    async fn a_partition_larger_than_the_pool_is_merged_from_sorted_runs_on_disk() {
        let input = || {
            let mut rng = Rng::new(42);
            (0..2).map(|_| (0..32).map(|_| batch(&mut rng, 2000)).collect()).collect::<Vec<Vec<_>>>()
        };
        let bytes: usize = input()[0].iter().map(RecordBatch::get_array_memory_size).sum();
        assert!(bytes > 2 << 20, "a partition holds {bytes} bytes");
        let roomy = SessionContext::new_with_config(SessionConfig::new().with_batch_size(500));
        let expected = sorted_by(&roomy, input(), false).await;
        let (in_memory, spilled) = sorted_and_spilled(&roomy, input(), true).await;
        assert_eq!((in_memory == expected, spilled), (true, 0));

        // 4 MiB: each partition's share holds a part of it (a few runs). 512 KiB: its share
        // holds a batch or two (many runs, more than the merge may seat at once).
        // DataFusion's own sort gives the same rows under the 4 MiB pool.
        let control = sorted_by(&small_pool(4 << 20), input(), false).await;
        assert_eq!(control, expected);
        for pool in [4 << 20, 512 << 10] {
            let (ours, spilled) = sorted_and_spilled(&small_pool(pool), input(), true).await;
            assert!(spilled >= 4, "a pool of {pool} bytes spilled {spilled} runs");
            assert_eq!(ours, expected, "a pool of {pool} bytes");
        }
    }

    #[tokio::test]
    async fn batches_larger_than_the_pools_share_are_spilled_in_pieces_the_merge_can_seat() {
        // Every batch is larger than a partition's share of the pool: each is sorted and
        // spilled alone, in batches small enough for two runs to be merged in the share.
        let input = || -> Vec<Vec<RecordBatch>> {
            let mut rng = Rng::new(11);
            (0..2).map(|_| (0..6).map(|_| batch(&mut rng, 4000)).collect()).collect()
        };
        let largest = input()[0].iter().map(RecordBatch::get_array_memory_size).max().unwrap();
        // Batches of the session's batch size, as a scan gives them.
        let ctx = pool_with_batches(2 * largest, 4000);
        let expected = sorted_by(&SessionContext::new(), input(), false).await;
        let (ours, spilled) = sorted_and_spilled(&ctx, input(), true).await;
        assert!(spilled >= 12, "{spilled} runs spilled");
        assert_eq!(ours, expected);
    }

    #[tokio::test]
    async fn a_pool_too_small_to_merge_two_runs_is_an_error_naming_the_memory_limit() {
        let input: Vec<Vec<RecordBatch>> = vec![(0..8).map(|i| batch(&mut Rng::new(i), 2000)).collect()];
        let source = MemorySourceConfig::try_new_exec(&input, schema(), None).unwrap();
        let plan = Arc::new(SortRowsExec::new(ordering(), source));
        // Too small for a batch of the fewest rows a run is written in.
        let err = collect_partitioned(plan, small_pool(512).task_ctx()).await.unwrap_err();
        assert!(err.to_string().contains("raise the memory limit"), "{err}");
    }
}
