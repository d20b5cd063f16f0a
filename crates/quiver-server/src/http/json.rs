//! The JSON API: online reads and the registry objects of the version being served.
//!
//! `POST /v1/online` takes
//! `{"features": ["view:feature", "view"]}` or `{"feature_service": "name"}`, with
//! `{"entities": {"driver_id": [1001, 1002]}}` and an optional `"at"` (a time: RFC 3339,
//! `YYYY-MM-DD HH:MM:SS` UTC or a date), and answers exactly what `quiver online` prints
//! ([`quiver_online::read::OnlineResponse::to_json`]). The request becomes the same
//! [`OnlineRequest`] the gRPC service builds, so both share every check and limit.
//!
//! The body is parsed as untyped JSON first and then walked here, so every message is
//! Quiver's own: it names the field at fault and never repeats a value that was sent.

use std::collections::BTreeMap;

use bytes::Bytes;
use quiver_online::value::Value;
use serde_json::{Value as Json, json};

use crate::app::App;
use crate::domain::online::{MAX_ENTITY_COLUMNS, MAX_ENTITY_ROWS, OnlineRequest};
use crate::domain::{Error, Result, project};

/// Longest feature reference, service name or join key name a request may carry.
const MAX_NAME: usize = 256;
/// Longest string join key value.
const MAX_KEY_TEXT: usize = 4096;
/// Most feature references one request may list (each may expand to a whole view).
const MAX_REFERENCES: usize = 10_000;
/// Largest buffer reserved up front for an answer; a larger one grows as it is written.
const MAX_ANSWER_HINT: usize = 8 << 20;

/// `POST /v1/online`: the answer's JSON text, written straight from the answer.
pub async fn online(app: &App, body: Bytes, max_values: usize) -> Result<Vec<u8>> {
    let request = online_request(&body)?;
    let answer = app.project().online_features(request, max_values).await?;
    // One allocation, not a doubling buffer copied a dozen times for a large answer: per
    // entity row its keys, per value its name and about 100 bytes of time, status and value.
    let per_row = answer
        .response
        .features
        .iter()
        .map(|f| f.view.len() + f.feature.len() + 104)
        .fold(64usize, usize::saturating_add);
    let hint = answer.entity_rows.len().saturating_mul(per_row).saturating_add(16);
    let mut body = Vec::with_capacity(hint.min(MAX_ANSWER_HINT));
    answer
        .response
        .write_json(&answer.entity_rows, &mut body)
        .map_err(|e| Error::Internal(format!("the answer did not serialize: {e}")))?;
    Ok(body)
}

/// The online request a body holds, or what is wrong with it.
pub fn online_request(body: &[u8]) -> Result<OnlineRequest> {
    let parsed: Json = serde_json::from_slice(body).map_err(|e| {
        // serde_json's syntax errors give a position, never the text at it.
        Error::Invalid(format!("the body is not valid JSON: {e}"))
    })?;
    let Json::Object(fields) = parsed else {
        return Err(Error::Invalid(
            "the body must be a JSON object with `entities` and `features` or `feature_service`".into(),
        ));
    };
    const FIELDS: [&str; 4] = ["features", "feature_service", "entities", "at"];
    if fields.keys().any(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Error::Invalid(format!(
            "the body has a field this endpoint does not take; its fields are {}",
            FIELDS.join(", ")
        )));
    }
    let features = match fields.get("features") {
        None => Vec::new(),
        Some(Json::Array(items)) => {
            if items.len() > MAX_REFERENCES {
                return Err(Error::Limit(format!(
                    "`features` lists {} references; the limit is {MAX_REFERENCES}",
                    items.len()
                )));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Json::String(s) => bounded(s, &format!("features[{i}]")).map(str::to_string),
                    _ => Err(Error::Invalid(format!(
                        "features[{i}] is not a string (`view:feature` or `view`)"
                    ))),
                })
                .collect::<Result<_>>()?
        }
        Some(_) => {
            return Err(Error::Invalid(
                "`features` must be a list of strings (`view:feature` or `view`)".into(),
            ));
        }
    };
    let feature_service = match fields.get("feature_service") {
        None => None,
        Some(Json::String(s)) => Some(bounded(s, "feature_service")?.to_string()),
        Some(_) => return Err(Error::Invalid("`feature_service` must be a string".into())),
    };
    match (&feature_service, features.is_empty()) {
        (Some(_), false) => {
            return Err(Error::Invalid("give either `features` or `feature_service`, not both".into()));
        }
        (None, true) => {
            return Err(Error::Invalid(
                "give `features` (a list of `view:feature`) or `feature_service`".into(),
            ));
        }
        _ => {}
    }
    let entities = match fields.get("entities") {
        Some(Json::Object(columns)) => entity_columns(columns)?,
        Some(_) => {
            return Err(Error::Invalid(
                "`entities` must be an object: join key name -> list of values".into(),
            ));
        }
        None => {
            return Err(Error::Invalid("`entities` is missing: e.g. {\"driver_id\": [1001, 1002]}".into()));
        }
    };
    let at_ns = match fields.get("at") {
        None | Some(Json::Null) => None,
        Some(Json::String(text)) => Some(time_ns(text)?),
        Some(_) => {
            return Err(Error::Invalid("`at` must be a time as a string, e.g. 2026-01-03T00:00:00Z".into()));
        }
    };
    Ok(OnlineRequest { feature_service, features, entities, at_ns })
}

/// Columnar join key values: integers and strings, bounded in count and size.
fn entity_columns(columns: &serde_json::Map<String, Json>) -> Result<BTreeMap<String, Vec<Value>>> {
    if columns.len() > MAX_ENTITY_COLUMNS {
        return Err(Error::Limit(format!(
            "{} entity columns in one request; the limit is {MAX_ENTITY_COLUMNS}: send only join keys",
            columns.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (key, column) in columns {
        let key = bounded(key, "a join key name")?;
        let Json::Array(values) = column else {
            return Err(Error::Invalid(format!("entities.{key} must be a list of values")));
        };
        if values.len() > MAX_ENTITY_ROWS {
            return Err(Error::Limit(format!(
                "{} entity rows in one request; the limit is {MAX_ENTITY_ROWS}: split the request",
                values.len()
            )));
        }
        let values = values
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::Number(n) => n.as_i64().map(Value::Int64).ok_or_else(|| {
                    Error::Invalid(format!("entities.{key}[{i}] is not a whole number within 64 bits"))
                }),
                Json::String(s) if s.len() <= MAX_KEY_TEXT => Ok(Value::String(s.clone())),
                Json::String(_) => {
                    Err(Error::Invalid(format!("entities.{key}[{i}] is longer than {MAX_KEY_TEXT} bytes")))
                }
                _ => Err(Error::Invalid(format!(
                    "entities.{key}[{i}]: a join key value is an integer or a string"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        out.insert(key.to_string(), values);
    }
    Ok(out)
}

fn bounded<'a>(text: &'a str, what: &str) -> Result<&'a str> {
    if text.len() > MAX_NAME {
        return Err(Error::Invalid(format!("{what} is longer than {MAX_NAME} bytes")));
    }
    Ok(text)
}

/// `at` as nanoseconds since the epoch.
fn time_ns(text: &str) -> Result<i64> {
    let bad = || {
        Error::Invalid(
            "`at` is not a time: write RFC 3339 (2026-01-03T00:00:00Z), `YYYY-MM-DD HH:MM:SS` (UTC) or a date"
                .into(),
        )
    };
    if text.len() > 64 {
        return Err(bad());
    }
    let at = quiver_core::definitions::parse_instant(text.trim()).ok_or_else(bad)?;
    at.timestamp_nanos_opt().ok_or_else(|| Error::Invalid("`at` is outside the years 1677-2262".into()))
}

/// `GET /v1/views`: every feature view of the version served.
pub fn views(app: &App) -> Result<Json> {
    let s = app.project().require_current()?;
    Ok(json!({"registry_version": s.version, "feature_views": s.definitions.feature_views}))
}

/// `GET /v1/views/NAME`: one feature view, with its join keys resolved.
pub fn view(app: &App, name: &str) -> Result<Json> {
    let s = app.project().require_current()?;
    let view = project::view(&s, name)?;
    Ok(json!({
        "registry_version": s.version,
        "feature_view": view,
        "join_keys": s.definitions.join_keys(view),
    }))
}

/// `GET /v1/services`: every feature service, with the features it resolves to.
pub fn services(app: &App) -> Result<Json> {
    let s = app.project().require_current()?;
    let services: Vec<Json> = s
        .definitions
        .feature_services
        .iter()
        .map(|service| {
            let resolved = s.definitions.resolve_service(&service.name).unwrap_or_default();
            let mut item = json!(service);
            if let Json::Object(fields) = &mut item {
                let names: Vec<String> = resolved.iter().map(ToString::to_string).collect();
                fields.insert("resolved_features".into(), json!(names));
            }
            item
        })
        .collect();
    Ok(json!({"registry_version": s.version, "feature_services": services}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        online_request(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn a_body_becomes_the_request_grpc_builds() {
        let r = online_request(
            br#"{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001, 1002], "city": ["x"]}, "at": "2026-01-03T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(r.features, ["driver_stats:conv_rate"]);
        assert_eq!(r.entities["driver_id"], [Value::Int64(1001), Value::Int64(1002)]);
        assert_eq!(r.entities["city"], [Value::String("x".into())]);
        assert_eq!(r.at_ns, Some(1_767_398_400_000_000_000));
        let s = online_request(br#"{"feature_service": "ride_ranking_v1", "entities": {"driver_id": [1]}}"#)
            .unwrap();
        assert_eq!(s.feature_service.as_deref(), Some("ride_ranking_v1"));
    }

    #[test]
    fn bad_bodies_are_refused_naming_the_field_and_never_the_value() {
        assert!(refused("{").contains("not valid JSON"));
        assert!(refused("[1]").contains("JSON object"));
        assert!(
            refused(r#"{"features": ["a:b"], "entities": {"k": [1]}, "secret_field": 1}"#)
                .contains("does not take")
        );
        assert!(
            !refused(r#"{"features": ["a:b"], "entities": {"k": [1]}, "secret_field": 1}"#)
                .contains("secret")
        );
        assert!(refused(r#"{"entities": {"k": [1]}}"#).contains("give `features`"));
        assert!(
            refused(r#"{"features": ["a"], "feature_service": "s", "entities": {"k": [1]}}"#)
                .contains("not both")
        );
        assert!(refused(r#"{"features": "a:b", "entities": {"k": [1]}}"#).contains("list of strings"));
        assert!(refused(r#"{"features": ["a:b"]}"#).contains("`entities` is missing"));
        let float = refused(r#"{"features": ["a:b"], "entities": {"k": [1.5]}}"#);
        assert!(float.contains("entities.k[0]") && !float.contains("1.5"), "{float}");
        let at = refused(r#"{"features": ["a:b"], "entities": {"k": [1]}, "at": "yesterday-ish"}"#);
        assert!(at.contains("`at` is not a time") && !at.contains("yesterday"), "{at}");
        let long = format!(r#"{{"features": ["{}"], "entities": {{"k": [1]}}}}"#, "x".repeat(MAX_NAME + 1));
        assert!(refused(&long).contains("longer than"));
    }
}
