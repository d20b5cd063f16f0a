//! The online step of a materialization: the latest row of each entity, picked on the way
//! into the offline writers (no second pass over the window), written to the online store
//! only once the offline commit succeeded.
//!
//! Each writer's partition arrives in the latest-row order, so the last row of each run of
//! equal keys is a candidate ([`RunEnds`]); an entity's rows may lie in several partitions,
//! so the candidates of all partitions are compared at the end ([`latest_of`]).
//!
//! [`rebuild_online`] refills the online store from a view's whole offline table instead, for
//! an online store that lost its rows (Redis restarted without persistence) or is new (a
//! switch from the embedded store to Redis): materialization only writes the windows it
//! runs, so an incremental run has nothing to write for windows already done.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use quiver_core::definitions::{Definitions, FeatureView};
use quiver_online::rows::LatestRows;
use quiver_online::{OnlineStore, RowWrite};

use crate::error::{Error, Result};
use crate::layout::{SORT_OPTIONS, sort_columns};

/// Rows per online write call.
const ONLINE_CHUNK: usize = 10_000;

/// The candidates of every partition of one write, fed by the write's row observer.
pub(super) struct Candidates {
    partitions: Vec<Mutex<RunEnds>>,
}

impl Candidates {
    /// Collectors for `partitions` partitions of a view whose first `keys` columns are its
    /// join keys.
    pub(super) fn new(keys: usize, partitions: usize) -> Self {
        Candidates { partitions: (0..partitions).map(|_| Mutex::new(RunEnds::new(keys))).collect() }
    }

    /// Takes the next batch of `partition` (in the partition's order).
    pub(super) fn push(&self, partition: usize, batch: &RecordBatch) -> Result<()> {
        let slot = self
            .partitions
            .get(partition)
            .ok_or_else(|| Error::Internal(format!("no online row collector for partition {partition}")))?;
        slot.lock().map_err(|_| Error::Internal("online row collector poisoned".into()))?.push(batch)
    }

    /// The latest row of each entity over all partitions, encoded for the online store.
    pub(super) fn finish(
        self: Arc<Self>,
        defs: &Definitions,
        view: &FeatureView,
        expire: bool,
        schema: &SchemaRef,
    ) -> Result<Vec<RowWrite>> {
        let this = Arc::try_unwrap(self)
            .map_err(|_| Error::Internal("online row collector still shared after the write".into()))?;
        let mut batches = Vec::new();
        for slot in this.partitions {
            let ends =
                slot.into_inner().map_err(|_| Error::Internal("online row collector poisoned".into()))?;
            batches.extend(ends.finish());
        }
        latest_of(defs, view, expire, schema, &batches)
    }
}

/// What [`rebuild_online`] did for one view.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RebuildReport {
    pub view: String,
    /// The offline table version read (`None`: never materialized, nothing written).
    pub table_version: Option<u64>,
    /// Rows of the table read.
    pub rows_read: u64,
    /// Entities found (one latest row each).
    pub entities: u64,
    /// Online rows created or replaced; the others were already as new or newer (a push to
    /// the online store only, say).
    pub written: u64,
    pub seconds: f64,
}

/// Writes the latest row of every entity of `view`'s offline table (its newest version,
/// pushed rows included) to the online store, newer-wins. The table is read in the
/// latest-row order as one stream and written in chunks, so memory stays bounded by a
/// chunk, whatever the table's size. `expire`: rows get an expiry at event time + ttl.
pub async fn rebuild_online(
    ctx: &datafusion::prelude::SessionContext,
    defs: &Definitions,
    view: &FeatureView,
    store: &crate::store::OfflineStore,
    online: &dyn OnlineStore,
    expire: bool,
) -> Result<RebuildReport> {
    use futures::StreamExt;
    let started = std::time::Instant::now();
    let mut report = RebuildReport { view: view.name.clone(), ..RebuildReport::default() };
    if !view.online {
        return Err(Error::InvalidInput(format!(
            "feature view '{}' is not online (online: false); it has no online rows to rebuild",
            view.name
        )));
    }
    let Some(snapshot) = store.snapshot(&view.name, None).await? else {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    };
    let expected = crate::layout::offline_schema(defs, view);
    let names = |s: &datafusion::arrow::datatypes::Schema| -> Vec<String> {
        s.fields().iter().map(|f| f.name().clone()).collect()
    };
    if names(&snapshot.schema) != names(&expected) {
        return Err(Error::Schema(format!(
            "the offline table of view '{}' has columns [{}] but the view now declares [{}]; \
             materialize it again with `quiver materialize --rebuild` first",
            view.name,
            names(&snapshot.schema).join(", "),
            names(&expected).join(", ")
        )));
    }
    report.table_version = Some(snapshot.version);
    let plan = crate::sorted::sorted_rows(ctx, Some(&snapshot), snapshot.schema.clone())?;
    let mut stream = plan.execute(0, ctx.task_ctx())?;
    let mut latest = LatestRows::new(defs, view, expire);
    let mut pending: Vec<RowWrite> = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        report.rows_read += batch.num_rows() as u64;
        pending.extend(latest.push(&batch).map_err(Error::Online)?);
        if pending.len() >= ONLINE_CHUNK {
            report.entities += pending.len() as u64;
            report.written += online.write(&pending).await.map_err(Error::Online)?;
            pending.clear();
        }
    }
    pending.extend(latest.finish().map_err(Error::Online)?);
    report.entities += pending.len() as u64;
    report.written += online.write(&pending).await.map_err(Error::Online)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes the collected latest rows to the online store; returns how many entities.
pub(super) async fn write_latest(online: &dyn OnlineStore, rows: Vec<RowWrite>) -> Result<u64> {
    for chunk in rows.chunks(ONLINE_CHUNK) {
        online.write(chunk).await.map_err(Error::Online)?;
    }
    Ok(rows.len() as u64)
}

/// The last row of each run of equal join keys in one sorted partition.
pub(super) struct RunEnds {
    /// The join keys are the first columns of the offline layout.
    keys: usize,
    /// Complete runs' last rows.
    done: Vec<RecordBatch>,
    /// The last row of the previous batch, whose run may continue.
    pending: Option<RecordBatch>,
}

impl RunEnds {
    pub(super) fn new(keys: usize) -> Self {
        RunEnds { keys, done: Vec::new(), pending: None }
    }

    pub(super) fn push(&mut self, batch: &RecordBatch) -> Result<()> {
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

    pub(super) fn finish(mut self) -> Vec<RecordBatch> {
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
    schema: &SchemaRef,
    candidates: &[RecordBatch],
) -> Result<Vec<RowWrite>> {
    use datafusion::arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
    let all = datafusion::arrow::compute::concat_batches(schema, candidates)?;
    if all.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let columns = sort_columns(schema)
        .iter()
        .map(|name| {
            let values = all
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| Error::Internal(format!("materialized rows lack column '{name}'")))?;
            Ok(SortColumn { values, options: Some(SORT_OPTIONS) })
        })
        .collect::<Result<Vec<_>>>()?;
    let sorted = take_record_batch(&all, &lexsort_to_indices(&columns, None)?)?;
    let mut rows = LatestRows::new(defs, view, expire);
    let mut out = rows.push(&sorted).map_err(Error::Online)?;
    out.extend(rows.finish().map_err(Error::Online)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::layout::{CREATED_TIMESTAMP, EVENT_TIMESTAMP};
    use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn defs() -> Definitions {
        let yaml = "entities:\n  - {name: e, join_keys: [{name: k, dtype: int64}]}\nsources:\n  - {name: s, path: x/, format: parquet, timestamp_field: ts}\nfeature_views:\n  - {name: v, entities: [e], source: s, features: [{name: f, dtype: int64}]}\n";
        quiver_core::repo::parse_documents(&[("d.yaml".into(), yaml.into())]).definitions
    }

    fn schema() -> SchemaRef {
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

    fn encoded(rows: Vec<RowWrite>) -> Vec<(String, Vec<u8>)> {
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
