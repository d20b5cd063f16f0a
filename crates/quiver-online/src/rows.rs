//! From materialized Arrow rows to online rows: typed values, the latest row per entity,
//! and the fingerprint that ties a stored row to the view definition it was written for.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampNanosecondType,
};
use quiver_core::definitions::{Definitions, FeatureView};

use crate::error::{Error, Result};
use crate::keys::entity_key;
use crate::store::RowWrite;
use crate::value::{StoredRow, Value, encode};

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
    fingerprint: u32,
    ttl_ms: Option<i64>,
    pending: Option<(String, RowWrite)>,
}

impl LatestRows {
    /// `expire`: give rows an expiry at event time + ttl (views with a ttl only).
    pub fn new(defs: &Definitions, view: &FeatureView, expire: bool) -> Self {
        let ttl = view.ttl.seconds();
        LatestRows {
            view: view.name.clone(),
            keys: defs.join_keys(view).into_iter().map(|k| k.name).collect(),
            features: view.features.iter().map(|f| f.name.clone()).collect(),
            fingerprint: view_fingerprint(view),
            ttl_ms: (expire && ttl > 0).then(|| (ttl as i64).saturating_mul(1000)),
            pending: None,
        }
    }

    /// Takes the next sorted batch; returns the rows of entities that are complete.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<Vec<RowWrite>> {
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| Error::Internal(format!("materialized rows lack column '{name}'")))
        };
        let keys: Vec<ArrayRef> = self.keys.iter().map(|k| col(k)).collect::<Result<_>>()?;
        let event = col("event_timestamp")?;
        let created = col("created_timestamp")?;
        let features: Vec<ArrayRef> = self.features.iter().map(|f| col(f)).collect::<Result<_>>()?;
        let mut done = Vec::new();
        for row in 0..batch.num_rows() {
            let values: Vec<Value> = keys.iter().map(|a| value_at(a, row)).collect::<Result<_>>()?;
            let parts: Vec<(&str, &Value)> =
                self.keys.iter().map(String::as_str).zip(values.iter()).collect();
            let Some(entity) = entity_key(&parts) else { continue };
            let Some(event_ns) = timestamp_ns(&event, row)? else { continue };
            let stored = StoredRow {
                event_ns,
                created_ns: timestamp_ns(&created, row)?,
                values: features.iter().map(|a| value_at(a, row)).collect::<Result<_>>()?,
            };
            let write = RowWrite {
                view: self.view.clone(),
                entity: entity.clone(),
                bytes: encode(&stored, self.fingerprint),
                expire_at_ms: self.ttl_ms.map(|t| (event_ns / 1_000_000).saturating_add(t)),
            };
            match &self.pending {
                Some((k, _)) if *k == entity.0 => {}
                _ => {
                    if let Some((_, w)) = self.pending.take() {
                        done.push(w);
                    }
                }
            }
            self.pending = Some((entity.0, write));
        }
        Ok(done)
    }

    /// The last entity's row.
    pub fn finish(mut self) -> Option<RowWrite> {
        self.pending.take().map(|(_, w)| w)
    }
}
