//! Online reads: for entity rows and feature references, each feature's latest value, its
//! event time and a status, exactly as a model saw it in training:
//!
//! - `PRESENT`: a value;
//! - `NULL_VALUE`: the latest row has a null for this feature (the row is taken whole: no
//!   older value is substituted);
//! - `NOT_FOUND`: nothing stored for this entity and view (or only a row written for an
//!   older definition of the view);
//! - `OUTSIDE_MAX_AGE`: the latest row is older than the view's ttl; the value is returned
//!   as null, as a point-in-time read at this moment would.
//!
//! The whole request is one call to the store (one round trip), whatever the number of
//! views and entities.

use std::collections::BTreeMap;

use quiver_core::definitions::{Definitions, FeatureRef, FeatureView, suggest};
use quiver_core::dtype::DType;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys::entity_key;
use crate::rows::view_fingerprint;
use crate::store::{EntityKey, OnlineStore};
use crate::value::{Value, decode, stored_fingerprint};

/// How a value was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Present,
    NullValue,
    NotFound,
    OutsideMaxAge,
}

impl Status {
    /// The wire and JSON name (`PRESENT`, `NULL_VALUE`, `NOT_FOUND`, `OUTSIDE_MAX_AGE`), as
    /// the gRPC `FeatureStatus`, `quiver online` and the skew report spell it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Present => "PRESENT",
            Status::NullValue => "NULL_VALUE",
            Status::NotFound => "NOT_FOUND",
            Status::OutsideMaxAge => "OUTSIDE_MAX_AGE",
        }
    }
}

/// One feature of one entity row.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureValue {
    pub value: Value,
    pub status: Status,
    /// Event time of the row the value came from (also for OUTSIDE_MAX_AGE).
    pub event_ns: Option<i64>,
}

/// The answer: per entity row, per requested feature (in request order).
#[derive(Clone, Debug, PartialEq)]
pub struct OnlineResponse {
    pub features: Vec<FeatureRef>,
    pub rows: Vec<Vec<FeatureValue>>,
}

impl OnlineResponse {
    /// The answer as JSON, as `quiver online` prints it and `POST /v1/online` returns it:
    /// `{"results": [{"entity": {key: value}, "features": {"view:feature": {"value",
    /// "status", "event_timestamp"}}}]}`, one result per entity row of `entity_rows` (the
    /// rows the answer was read for, in the same order).
    pub fn to_json(&self, entity_rows: &[BTreeMap<String, Value>]) -> serde_json::Value {
        let results: Vec<serde_json::Value> = entity_rows
            .iter()
            .zip(&self.rows)
            .map(|(row, values)| {
                let entity: serde_json::Map<String, serde_json::Value> =
                    row.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                let features: serde_json::Map<String, serde_json::Value> = self
                    .features
                    .iter()
                    .zip(values)
                    .map(|(r, fv)| {
                        let value = serde_json::json!({
                            "value": fv.value.to_json(),
                            "status": fv.status.name(),
                            "event_timestamp": fv.event_ns.map(crate::value::format_ns),
                        });
                        (r.to_string(), value)
                    })
                    .collect();
                serde_json::json!({"entity": entity, "features": features})
            })
            .collect();
        serde_json::json!({ "results": results })
    }
}

/// Converts a key value to the declared join key type, or says why it cannot.
pub fn key_value(view: &FeatureView, key: &str, dtype: &DType, value: &Value) -> Result<Value> {
    let bad = |what: &str| {
        Error::InvalidInput(format!(
            "join key '{key}' of feature view '{}' is {dtype}, but the request gives {what}",
            view.name
        ))
    };
    Ok(match (dtype, value) {
        (_, Value::Null) => return Err(bad("null")),
        (DType::Int64, Value::Int64(_))
        | (DType::Int32, Value::Int32(_))
        | (DType::String, Value::String(_))
        | (DType::Bytes, Value::Bytes(_)) => value.clone(),
        (DType::Int64, Value::Int32(v)) => Value::Int64(i64::from(*v)),
        // Text clients (`quiver online`, JSON over HTTP) give a bytes key as its text.
        (DType::Bytes, Value::String(s)) => Value::Bytes(s.as_bytes().to_vec()),
        (DType::Int32, Value::Int64(v)) => {
            Value::Int32(i32::try_from(*v).map_err(|_| bad(&format!("{v}, out of int32 range")))?)
        }
        (_, other) => return Err(bad(&format!("{other:?}"))),
    })
}

/// Reads `features` for `entity_rows` (join key name -> value, per row) at time `now_ns`.
/// A stored row whose event time is after `now_ns` reads as `NotFound`: the online store
/// holds only each entity's latest row, and a value from later is not what was known then.
pub async fn get_online_features(
    store: &dyn OnlineStore,
    defs: &Definitions,
    features: &[FeatureRef],
    entity_rows: &[BTreeMap<String, Value>],
    now_ns: i64,
) -> Result<OnlineResponse> {
    if features.is_empty() {
        return Err(Error::InvalidInput("no features requested".into()));
    }
    // Views in order of first mention; per feature, its view's index and feature position.
    let mut views: Vec<&FeatureView> = Vec::new();
    let mut columns: Vec<(usize, usize)> = Vec::with_capacity(features.len());
    for r in features {
        let view = defs.feature_view(&r.view).ok_or_else(|| {
            Error::InvalidInput(format!(
                "unknown feature view '{}'{}",
                r.view,
                suggest(&r.view, defs.feature_views.iter().map(|v| v.name.as_str()))
            ))
        })?;
        let position = view.features.iter().position(|f| f.name == r.feature).ok_or_else(|| {
            Error::InvalidInput(format!(
                "feature view '{}' has no feature '{}'{}",
                r.view,
                r.feature,
                suggest(&r.feature, view.features.iter().map(|f| f.name.as_str()))
            ))
        })?;
        let vi = match views.iter().position(|v| v.name == view.name) {
            Some(i) => i,
            None => {
                views.push(view);
                views.len() - 1
            }
        };
        columns.push((vi, position));
    }
    // One store key per (entity row, view).
    let mut keys: Vec<(String, EntityKey)> = Vec::with_capacity(entity_rows.len() * views.len());
    for (i, row) in entity_rows.iter().enumerate() {
        for view in &views {
            let join_keys = defs.join_keys(view);
            let mut values = Vec::with_capacity(join_keys.len());
            for k in &join_keys {
                let given = row.get(&k.name).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "entity row {i} has no value for join key '{}' of feature view '{}'",
                        k.name, view.name
                    ))
                })?;
                values.push(key_value(view, &k.name, &k.dtype, given)?);
            }
            let parts: Vec<(&str, &Value)> =
                join_keys.iter().map(|k| k.name.as_str()).zip(values.iter()).collect();
            let entity =
                entity_key(&parts).ok_or_else(|| Error::Internal("a typed key did not encode".into()))?;
            keys.push((view.name.clone(), entity));
        }
    }
    let stored = store.read(&keys).await?;
    if stored.len() != keys.len() {
        return Err(Error::Internal(format!("the store answered {} of {} keys", stored.len(), keys.len())));
    }
    let fingerprints: Vec<u32> = views.iter().map(|v| view_fingerprint(v)).collect();
    let mut rows = Vec::with_capacity(entity_rows.len());
    for i in 0..entity_rows.len() {
        // Decode each view's row once per entity row.
        let mut decoded = Vec::with_capacity(views.len());
        for (vi, view) in views.iter().enumerate() {
            let k = i * views.len() + vi;
            let row = match &stored[k] {
                Some(bytes) if stored_fingerprint(bytes) == Some(fingerprints[vi]) => {
                    Some(decode(bytes, &format!("{}:{}", view.name, keys[k].1))?)
                }
                _ => None,
            };
            decoded.push(row);
        }
        let mut out = Vec::with_capacity(columns.len());
        for (vi, position) in &columns {
            let view = views[*vi];
            let fv = match &decoded[*vi] {
                None => FeatureValue { value: Value::Null, status: Status::NotFound, event_ns: None },
                // The stored row is newer than the time asked about: it was not known then.
                // The store keeps only the latest row, so what held at that time is not here
                // (a training set has it); the answer is NOT_FOUND, never a value from later.
                Some(row) if row.event_ns > now_ns => {
                    FeatureValue { value: Value::Null, status: Status::NotFound, event_ns: None }
                }
                Some(row) => {
                    let ttl_ns = (view.ttl.seconds() as i64).saturating_mul(1_000_000_000);
                    if ttl_ns > 0 && now_ns.saturating_sub(row.event_ns) > ttl_ns {
                        FeatureValue {
                            value: Value::Null,
                            status: Status::OutsideMaxAge,
                            event_ns: Some(row.event_ns),
                        }
                    } else {
                        let value = row.values.get(*position).cloned().unwrap_or(Value::Null);
                        let status = if value.is_null() { Status::NullValue } else { Status::Present };
                        FeatureValue { value, status, event_ns: Some(row.event_ns) }
                    }
                }
            };
            out.push(fv);
        }
        rows.push(out);
    }
    Ok(OnlineResponse { features: features.to_vec(), rows })
}
