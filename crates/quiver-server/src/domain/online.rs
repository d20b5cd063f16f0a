//! Online reads: the latest feature values of entities, bounded before any row is built.

use std::collections::BTreeMap;

use quiver_online::read::{OnlineResponse, get_online_features};
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
        let rows = entity_rows(request.entities)?;
        let now_ns =
            request.at_ns.unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
        let response = get_online_features(self.online().as_ref(), defs, &refs, &rows, now_ns).await?;
        Ok(OnlineAnswer { registry_version: snapshot.version, response })
    }
}

/// The number of entity rows a request holds, checked before any row is built.
fn entity_row_count(entities: &BTreeMap<String, Vec<Value>>) -> Result<usize> {
    if entities.len() > MAX_ENTITY_COLUMNS {
        return Err(Error::Invalid(format!(
            "{} entity columns in one request; the limit is {MAX_ENTITY_COLUMNS}: send only join keys",
            entities.len()
        )));
    }
    let n = entities.values().map(Vec::len).max().unwrap_or(0);
    if n > MAX_ENTITY_ROWS {
        return Err(Error::Invalid(format!(
            "{n} entity rows in one request; the limit is {MAX_ENTITY_ROWS}: split the request"
        )));
    }
    Ok(n)
}

/// Columnar entity rows (join key -> values) as one map per row.
fn entity_rows(entities: BTreeMap<String, Vec<Value>>) -> Result<Vec<BTreeMap<String, Value>>> {
    let Some(n) = entities.values().map(Vec::len).next() else {
        return Err(Error::Invalid("no entity rows: send join key columns in `entities`".into()));
    };
    if let Some((key, column)) = entities.iter().find(|(_, c)| c.len() != n) {
        return Err(Error::Invalid(format!(
            "entity columns differ in length: '{key}' has {} values, another column has {n}",
            column.len()
        )));
    }
    if n == 0 {
        return Err(Error::Invalid("no entity rows: the join key columns are empty".into()));
    }
    let mut rows = vec![BTreeMap::new(); n];
    for (key, column) in entities {
        for (row, value) in rows.iter_mut().zip(column) {
            row.insert(key.clone(), value);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columnar_entities_become_rows_and_ragged_columns_are_refused() {
        let mut cols = BTreeMap::new();
        cols.insert("driver_id".to_string(), vec![Value::Int64(1), Value::Int64(2)]);
        cols.insert("customer_id".to_string(), vec![Value::Int64(7), Value::Int64(8)]);
        let rows = entity_rows(cols.clone()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["driver_id"], Value::Int64(2));
        assert_eq!(rows[0]["customer_id"], Value::Int64(7));
        cols.insert("city".to_string(), vec![Value::Int64(1)]);
        let e = entity_rows(cols).unwrap_err();
        assert!(e.to_string().contains("differ in length"), "{e}");
        assert!(entity_rows(BTreeMap::new()).is_err());
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
