//! From materialized Arrow rows to online rows: typed values, the latest row per entity,
//! and the fingerprint that ties a stored row to the view definition it was written for.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampNanosecondType,
};
use quiver_core::definitions::{Definitions, FeatureView};
use quiver_core::dtype::DType;

use crate::error::{Error, Result};
use crate::keys::entity_key;
use crate::store::{EntityKey, RowWrite};
use crate::value::{StoredRow, Value, encode};

/// Per feature of `view`, whether it takes part in the latest-row order (every feature
/// that is not a list): the values that make an online row's tie key ([`crate::value`]).
pub fn sortable_features(view: &FeatureView) -> Vec<bool> {
    view.features.iter().map(|f| !matches!(f.dtype, DType::List(_))).collect()
}

/// FNV-1a over the view's feature names and dtypes: changes when the features change.
pub fn view_fingerprint(view: &FeatureView) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for f in &view.features {
        for b in f.name.bytes().chain([0]).chain(f.dtype.to_string().bytes()).chain([0]) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The value at `row` of an Arrow array of a Quiver type.
pub fn value_at(array: &ArrayRef, row: usize) -> Result<Value> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int32 => Value::Int32(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::Int64(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => Value::Float32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => Value::Float64(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_string()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(row).to_vec()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Value::Timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row).saturating_mul(1000))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Value::Timestamp(array.as_primitive::<TimestampNanosecondType>().value(row))
        }
        DataType::List(_) => {
            let inner = array.as_list::<i32>().value(row);
            Value::List((0..inner.len()).map(|i| value_at(&inner, i)).collect::<Result<_>>()?)
        }
        DataType::LargeList(_) => {
            let inner = array.as_list::<i64>().value(row);
            Value::List((0..inner.len()).map(|i| value_at(&inner, i)).collect::<Result<_>>()?)
        }
        other => return Err(Error::Internal(format!("no online encoding for Arrow type {other}"))),
    })
}

fn timestamp_ns(array: &ArrayRef, row: usize) -> Result<Option<i64>> {
    match value_at(array, row)? {
        Value::Timestamp(ns) => Ok(Some(ns)),
        Value::Null => Ok(None),
        other => Err(Error::Internal(format!("expected a timestamp, found {other:?}"))),
    }
}

/// Turns offline-table rows of one view, sorted ascending by (keys, event time, created
/// time, feature values), into one row per entity: the last one of each key group, which is
/// the latest by the same rule the point-in-time join uses.
pub struct LatestRows {
    view: String,
    keys: Vec<String>,
    features: Vec<String>,
    /// Per feature, whether it is part of the latest-row order (not a list).
    sortable: Vec<bool>,
    fingerprint: u32,
    ttl_ms: Option<i64>,
    /// The last row seen (one-row batch) of an entity whose run may continue.
    pending: Option<(String, RecordBatch)>,
}

impl LatestRows {
    /// `expire`: give rows an expiry at event time + ttl (views with a ttl only).
    pub fn new(defs: &Definitions, view: &FeatureView, expire: bool) -> Self {
        let ttl = view.ttl.seconds();
        LatestRows {
            view: view.name.clone(),
            keys: defs.join_keys(view).into_iter().map(|k| k.name).collect(),
            features: view.features.iter().map(|f| f.name.clone()).collect(),
            sortable: sortable_features(view),
            fingerprint: view_fingerprint(view),
            ttl_ms: (expire && ttl > 0).then(|| (ttl as i64).saturating_mul(1000)),
            pending: None,
        }
    }

    /// Takes the next sorted batch; returns the rows of entities that are complete.
    ///
    /// Only the last row of each run of equal keys is decoded and encoded: runs are found on
    /// the key columns directly (`partition`), so the cost per input row is a comparison.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<Vec<RowWrite>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let keys: Vec<ArrayRef> = self.keys.iter().map(|k| column(batch, k)).collect::<Result<_>>()?;
        let runs =
            arrow::compute::partition(&keys).map_err(|e| Error::Internal(format!("grouping keys: {e}")))?;
        let mut done = Vec::new();
        for run in runs.ranges() {
            let Some(entity) = self.entity_at(&keys, run.start)? else { continue };
            if let Some((previous, row)) = self.pending.take()
                && previous != entity.0
            {
                done.push(self.encode(EntityKey(previous), &row, 0)?);
            }
            // A run that reaches the end of the batch may continue in the next one.
            if run.end < batch.num_rows() {
                done.push(self.encode(entity, batch, run.end - 1)?);
            } else {
                self.pending = Some((entity.0, batch.slice(run.end - 1, 1)));
            }
        }
        Ok(done)
    }

    fn entity_at(&self, keys: &[ArrayRef], row: usize) -> Result<Option<EntityKey>> {
        let values: Vec<Value> = keys.iter().map(|a| value_at(a, row)).collect::<Result<_>>()?;
        let parts: Vec<(&str, &Value)> = self.keys.iter().map(String::as_str).zip(values.iter()).collect();
        Ok(entity_key(&parts))
    }

    fn encode(&self, entity: EntityKey, batch: &RecordBatch, row: usize) -> Result<RowWrite> {
        let Some(event_ns) = timestamp_ns(&column(batch, "event_timestamp")?, row)? else {
            return Err(Error::Internal("a materialized row has no event time".into()));
        };
        let stored = StoredRow {
            event_ns,
            created_ns: timestamp_ns(&column(batch, "created_timestamp")?, row)?,
            values: self.features.iter().map(|f| value_at(&column(batch, f)?, row)).collect::<Result<_>>()?,
        };
        Ok(RowWrite {
            view: self.view.clone(),
            entity,
            bytes: encode(&stored, self.fingerprint, &self.sortable),
            expire_at_ms: self.ttl_ms.map(|t| (event_ns / 1_000_000).saturating_add(t)),
        })
    }

    /// The last entity's row.
    pub fn finish(mut self) -> Result<Option<RowWrite>> {
        match self.pending.take() {
            Some((entity, row)) => Ok(Some(self.encode(EntityKey(entity), &row, 0)?)),
            None => Ok(None),
        }
    }
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| Error::Internal(format!("materialized rows lack column '{name}'")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn defs() -> Definitions {
        let yaml = "entities:\n  - {name: e, join_keys: [{name: k, dtype: string}]}\nsources:\n  - {name: s, path: x/, format: parquet, timestamp_field: ts}\nfeature_views:\n  - {name: v, entities: [e], source: s, features: [{name: f, dtype: int64}]}\n";
        quiver_core::repo::parse_documents(&[("d.yaml".into(), yaml.into())]).definitions
    }

    /// Sorted rows (null keys first, as the sort puts them): runs of 3 rows per key.
    fn batch() -> RecordBatch {
        let keys: Vec<Option<String>> =
            (0..40).map(|i| if i < 4 { None } else { Some(format!("k{:02}", i / 3)) }).collect();
        let ts = TimestampMicrosecondArray::from((0..40).map(|i| i as i64).collect::<Vec<_>>())
            .with_timezone("UTC");
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", arrow::datatypes::DataType::Utf8, true),
            Field::new("event_timestamp", ts.data_type().clone(), true),
            Field::new("created_timestamp", ts.data_type().clone(), true),
            Field::new("f", arrow::datatypes::DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(ts.clone()),
                Arc::new(ts),
                Arc::new(Int64Array::from((0..40).collect::<Vec<i64>>())),
            ],
        )
        .unwrap()
    }

    fn latest(batches: &[RecordBatch]) -> Vec<(String, Vec<u8>)> {
        let d = defs();
        let mut l = LatestRows::new(&d, d.feature_view("v").unwrap(), false);
        let mut out = Vec::new();
        for b in batches {
            out.extend(l.push(b).unwrap());
        }
        out.extend(l.finish().unwrap());
        out.into_iter().map(|w| (w.entity.0, w.bytes)).collect()
    }

    #[test]
    fn the_last_row_of_each_entity_wins_whatever_the_batch_boundaries() {
        let whole = batch();
        let expected = latest(std::slice::from_ref(&whole));
        // One row per entity, the last of its run, null keys skipped.
        let keys: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(keys, unique);
        assert_eq!(expected.len(), 13, "k01..k13; the rows with null keys have no entity");
        let row_of_k02 = expected.iter().find(|(k, _)| k == "k=k02").unwrap();
        let decoded = crate::value::decode(&row_of_k02.1, "k02").unwrap();
        assert_eq!(decoded.values, vec![Value::Int64(8)], "rows 6, 7, 8 hold k02; 8 is the last");
        for size in [1, 2, 3, 5, 7, 39] {
            let parts: Vec<RecordBatch> =
                (0..40).step_by(size).map(|start| whole.slice(start, size.min(40 - start))).collect();
            assert_eq!(latest(&parts), expected, "batches of {size}");
        }
    }
}
