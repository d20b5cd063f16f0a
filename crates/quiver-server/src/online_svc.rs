//! `OnlineService`: the latest feature values of entities.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_online::read::{Status as ValueStatus, get_online_features};
use quiver_online::value::Value;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::convert::{resolve_features, value_from_pb, value_to_pb};
use crate::error::to_status;
use crate::pb;
use crate::pb::get_online_features_request::Kind;
use crate::pb::online_service_server::OnlineService;

/// Entity rows most one request may hold.
pub const MAX_ENTITY_ROWS: usize = 10_000;
/// Join key columns most one request may hold.
pub const MAX_ENTITY_COLUMNS: usize = 32;

pub struct OnlineApi {
    pub app: Arc<App>,
    /// Most features × entity rows one request may ask for.
    pub max_cells: usize,
}

/// The number of entity rows a request holds, checked before any row is built.
fn entity_row_count(
    entities: &std::collections::HashMap<String, pb::RepeatedValue>,
) -> Result<usize, Status> {
    if entities.len() > MAX_ENTITY_COLUMNS {
        return Err(Status::invalid_argument(format!(
            "{} entity columns in one request; the limit is {MAX_ENTITY_COLUMNS}: send only join keys",
            entities.len()
        )));
    }
    let n = entities.values().map(|c| c.values.len()).max().unwrap_or(0);
    if n > MAX_ENTITY_ROWS {
        return Err(Status::invalid_argument(format!(
            "{n} entity rows in one request; the limit is {MAX_ENTITY_ROWS}: split the request"
        )));
    }
    Ok(n)
}

/// Columnar entity rows (join key -> values) as one map per row.
fn entity_rows(
    entities: BTreeMap<String, pb::RepeatedValue>,
) -> Result<Vec<BTreeMap<String, Value>>, Status> {
    let Some(n) = entities.values().map(|c| c.values.len()).next() else {
        return Err(Status::invalid_argument("no entity rows: send join key columns in `entities`"));
    };
    if let Some((key, column)) = entities.iter().find(|(_, c)| c.values.len() != n) {
        return Err(Status::invalid_argument(format!(
            "entity columns differ in length: '{key}' has {} values, another column has {n}",
            column.values.len()
        )));
    }
    if n == 0 {
        return Err(Status::invalid_argument("no entity rows: the join key columns are empty"));
    }
    let mut rows = vec![BTreeMap::new(); n];
    for (key, column) in entities {
        for (row, value) in rows.iter_mut().zip(&column.values) {
            row.insert(key.clone(), value_from_pb(value));
        }
    }
    Ok(rows)
}

#[tonic::async_trait]
impl OnlineService for OnlineApi {
    async fn get_online_features(
        &self,
        request: Request<pb::GetOnlineFeaturesRequest>,
    ) -> Result<Response<pb::GetOnlineFeaturesResponse>, Status> {
        let req = request.into_inner();
        let snapshot = self.app.require_current()?;
        let defs = &snapshot.definitions;
        let refs = match &req.kind {
            Some(Kind::FeatureService(s)) => resolve_features(defs, Some(s), &[])?,
            Some(Kind::Features(list)) => resolve_features(defs, None, &list.refs)?,
            None => resolve_features(defs, None, &[])?,
        };
        // Checked before any row is built: the answer grows with features × entity rows.
        let entity_count = entity_row_count(&req.entities)?;
        let cells = refs.len().saturating_mul(entity_count);
        if cells > self.max_cells {
            return Err(Status::resource_exhausted(format!(
                "{} features for {entity_count} entity rows is {cells} values; the server's limit is {} \
                 values per request (max_online_values): ask for fewer features or entities per call",
                refs.len(),
                self.max_cells
            )));
        }
        let rows = entity_rows(req.entities.into_iter().collect())?;
        let now_ns = if req.at_ns != 0 {
            req.at_ns
        } else {
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
        };
        let answer = get_online_features(self.app.online.as_ref(), defs, &refs, &rows, now_ns)
            .await
            .map_err(to_status)?;
        let mut results: Vec<pb::FeatureColumn> = (0..refs.len())
            .map(|_| pb::FeatureColumn {
                values: Vec::with_capacity(rows.len()),
                statuses: Vec::with_capacity(rows.len()),
                event_timestamps_ns: Vec::with_capacity(rows.len()),
            })
            .collect();
        for row in answer.rows {
            for (column, fv) in results.iter_mut().zip(row) {
                column.values.push(value_to_pb(fv.value));
                column.statuses.push(match fv.status {
                    ValueStatus::Present => pb::FeatureStatus::Present,
                    ValueStatus::NullValue => pb::FeatureStatus::NullValue,
                    ValueStatus::NotFound => pb::FeatureStatus::NotFound,
                    ValueStatus::OutsideMaxAge => pb::FeatureStatus::OutsideMaxAge,
                } as i32);
                column.event_timestamps_ns.push(fv.event_ns.unwrap_or(0));
            }
        }
        Ok(Response::new(pb::GetOnlineFeaturesResponse {
            feature_names: answer.features.iter().map(|f| f.to_string()).collect(),
            results,
            registry_version: snapshot.version,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(values: Vec<i64>) -> pb::RepeatedValue {
        pb::RepeatedValue { values: values.into_iter().map(|v| value_to_pb(Value::Int64(v))).collect() }
    }

    #[test]
    fn columnar_entities_become_rows_and_ragged_columns_are_refused() {
        let mut cols = BTreeMap::new();
        cols.insert("driver_id".to_string(), column(vec![1, 2]));
        cols.insert("customer_id".to_string(), column(vec![7, 8]));
        let rows = entity_rows(cols.clone()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["driver_id"], Value::Int64(2));
        assert_eq!(rows[0]["customer_id"], Value::Int64(7));
        cols.insert("city".to_string(), column(vec![1]));
        let e = entity_rows(cols).unwrap_err();
        assert!(e.message().contains("differ in length"), "{}", e.message());
        assert!(entity_rows(BTreeMap::new()).is_err());
    }
}
