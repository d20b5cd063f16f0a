//! Online reads: the latest feature values of entities, bounded before any row is built.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, RecordBatch, RecordBatchOptions, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int8Type, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use quiver_online::read::{EntityColumns, OnlineResponse, get_online_features};
use quiver_online::value::Value;

use super::project::Project;
use super::{Error, Result};

/// Entity rows most one request may hold.
pub const MAX_ENTITY_ROWS: usize = 10_000;
/// Join key columns most one request may hold.
pub const MAX_ENTITY_COLUMNS: usize = 32;

/// One online read.
#[derive(Clone, Debug, Default)]
pub struct OnlineRequest {
    /// A feature service, or (when `None`) the `features` references.
    pub feature_service: Option<String>,
    pub features: Vec<String>,
    /// Join key → one value per entity row.
    pub entities: BTreeMap<String, Vec<Value>>,
    /// The time to judge ttl against, nanoseconds since the epoch; `None` for now.
    pub at_ns: Option<i64>,
}

/// The answer, with the registry version it was read under.
#[derive(Debug)]
pub struct OnlineAnswer {
    pub registry_version: u64,
    pub response: OnlineResponse,
    /// Each requested feature's Arrow type (its declared dtype), in request order.
    pub types: Vec<DataType>,
    /// The entity rows read (join key -> one value per row), in request order: what the
    /// JSON answer names each result by.
    pub entity_rows: EntityColumns,
}

impl OnlineAnswer {
    /// The answer as one record batch, one row per entity row: per feature `view:feature`
    /// (its declared type; null unless present), `view:feature:status` (the status name,
    /// dictionary-encoded) and `view:feature:event_timestamp` (ns, UTC; null when not found).
    pub fn to_arrow(&self) -> Result<RecordBatch> {
        let rows = &self.response.rows;
        let mut fields = Vec::with_capacity(self.types.len() * 3);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.types.len() * 3);
        for (i, (feature, dtype)) in self.response.features.iter().zip(&self.types).enumerate() {
            let name = feature.to_string();
            let values: Vec<ScalarValue> =
                rows.iter().map(|row| scalar(&row[i].value, dtype)).collect::<Result<_>>()?;
            let values = if values.is_empty() {
                datafusion::arrow::array::new_empty_array(dtype)
            } else {
                ScalarValue::iter_to_array(values)
                    .map_err(|e| Error::Internal(format!("online answer as Arrow: {e}")))?
            };
            let statuses: DictionaryArray<Int8Type> =
                rows.iter().map(|row| Some(row[i].status.name())).collect();
            let times =
                TimestampNanosecondArray::from(rows.iter().map(|row| row[i].event_ns).collect::<Vec<_>>())
                    .with_timezone("UTC");
            fields.push(Field::new(&name, dtype.clone(), true));
            fields.push(Field::new(
                format!("{name}:status"),
                DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
                false,
            ));
            fields.push(Field::new(
                format!("{name}:event_timestamp"),
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ));
            columns.extend([values, Arc::new(statuses) as ArrayRef, Arc::new(times) as ArrayRef]);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
            .map_err(|e| Error::Internal(format!("online answer as Arrow: {e}")))
    }
}

/// A stored value as a scalar of the feature's Arrow type.
fn scalar(value: &Value, dtype: &DataType) -> Result<ScalarValue> {
    let plain = match value {
        Value::Null => return ScalarValue::try_from(dtype).map_err(|e| Error::Internal(e.to_string())),
        Value::Bool(v) => ScalarValue::Boolean(Some(*v)),
        Value::Int32(v) => ScalarValue::Int32(Some(*v)),
        Value::Int64(v) => ScalarValue::Int64(Some(*v)),
        Value::Float32(v) => ScalarValue::Float32(Some(*v)),
        Value::Float64(v) => ScalarValue::Float64(Some(*v)),
        Value::String(v) => ScalarValue::Utf8(Some(v.clone())),
        Value::Bytes(v) => ScalarValue::Binary(Some(v.clone())),
        Value::Timestamp(ns) => ScalarValue::TimestampNanosecond(Some(*ns), Some("UTC".into())),
        Value::List(items) => {
            let DataType::List(item) = dtype else {
                return Err(Error::Internal(format!("a list value for a feature of type {dtype}")));
            };
            let items: Vec<ScalarValue> =
                items.iter().map(|v| scalar(v, item.data_type())).collect::<Result<_>>()?;
            ScalarValue::List(ScalarValue::new_list_nullable(&items, item.data_type()))
        }
    };
    if plain.data_type() == *dtype {
        Ok(plain)
    } else {
        plain.cast_to(dtype).map_err(|e| Error::Internal(format!("online value as {dtype}: {e}")))
    }
}

impl Project {
    /// Reads the latest values of the requested features for each entity row. Refused before
    /// any row is built when features × entity rows exceed `max_values`, or the entity
    /// columns exceed [`MAX_ENTITY_COLUMNS`] / [`MAX_ENTITY_ROWS`].
    pub async fn online_features(&self, request: OnlineRequest, max_values: usize) -> Result<OnlineAnswer> {
        let snapshot = self.require_current()?;
        let defs = &snapshot.definitions;
        let refs = defs.resolve_features(request.feature_service.as_deref(), &request.features)?;
        let entity_count = entity_row_count(&request.entities)?;
        let cells = refs.len().saturating_mul(entity_count);
        if cells > max_values {
            return Err(Error::Limit(format!(
                "{} features for {entity_count} entity rows is {cells} values; the server's limit is \
                 {max_values} values per request (max_online_values): ask for fewer features or entities per call",
                refs.len(),
            )));
        }
        let rows = EntityColumns::new(request.entities)?;
        let now_ns =
            request.at_ns.unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
        let response = get_online_features(self.online().as_ref(), defs, &refs, &rows, now_ns).await?;
        let types = refs
            .iter()
            .map(|r| {
                defs.feature_view(&r.view)
                    .and_then(|v| v.features.iter().find(|f| f.name == r.feature))
                    .map(|f| quiver_offline::types::arrow_type(&f.dtype))
                    .ok_or_else(|| Error::Internal(format!("resolved feature {r} is not defined")))
            })
            .collect::<Result<_>>()?;
        Ok(OnlineAnswer { registry_version: snapshot.version, response, types, entity_rows: rows })
    }
}

/// The number of entity rows a request holds, checked before any row is built.
fn entity_row_count(entities: &BTreeMap<String, Vec<Value>>) -> Result<usize> {
    if entities.len() > MAX_ENTITY_COLUMNS {
        return Err(Error::Limit(format!(
            "{} entity columns in one request; the limit is {MAX_ENTITY_COLUMNS}: send only join keys",
            entities.len()
        )));
    }
    let n = entities.values().map(Vec::len).max().unwrap_or(0);
    if n > MAX_ENTITY_ROWS {
        return Err(Error::Limit(format!(
            "{n} entity rows in one request; the limit is {MAX_ENTITY_ROWS}: split the request"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columnar_entities_become_rows_and_ragged_columns_are_refused() {
        let mut cols = BTreeMap::new();
        cols.insert("driver_id".to_string(), vec![Value::Int64(1), Value::Int64(2)]);
        cols.insert("customer_id".to_string(), vec![Value::Int64(7), Value::Int64(8)]);
        let rows = EntityColumns::new(cols.clone()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.row(1)["driver_id"], Value::Int64(2));
        assert_eq!(rows.row(0)["customer_id"], Value::Int64(7));
        cols.insert("city".to_string(), vec![Value::Int64(1)]);
        let e = Error::from(EntityColumns::new(cols).unwrap_err());
        assert!(e.to_string().contains("differ in length"), "{e}");
        assert_eq!(crate::error::code(&e), tonic::Code::InvalidArgument);
        assert!(EntityColumns::new(BTreeMap::new()).is_err());
        let empty = BTreeMap::from([("driver_id".to_string(), Vec::new())]);
        assert!(EntityColumns::new(empty).unwrap_err().to_string().contains("columns are empty"));
    }

    #[test]
    fn requests_beyond_the_entity_bounds_are_refused_before_rows_are_built() {
        let wide: BTreeMap<String, Vec<Value>> =
            (0..=MAX_ENTITY_COLUMNS).map(|i| (format!("k{i}"), vec![Value::Int64(1)])).collect();
        assert!(entity_row_count(&wide).unwrap_err().to_string().contains("entity columns"));
        let long = BTreeMap::from([("k".to_string(), vec![Value::Null; MAX_ENTITY_ROWS + 1])]);
        assert!(entity_row_count(&long).unwrap_err().to_string().contains("entity rows"));
    }
}
