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
use crate::keys::write_entity_key;
use crate::rows::view_fingerprint;
use crate::store::{EntityKey, OnlineStore};
use crate::value::{Rfc3339, Value, decode_into, stored_fingerprint, write_json_value};

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

/// The entity rows of one read: for each row, the value of each join key it gives.
///
/// Two shapes hold them: one map per row (`[BTreeMap<String, Value>]`, as `quiver online`
/// parses `--entity` flags, each row free to name its own keys) and [`EntityColumns`] (one
/// list per join key, as the gRPC and JSON APIs send them), which a read of many rows takes
/// without building a map for each.
pub trait EntityRows: Sync {
    /// How many rows.
    fn count(&self) -> usize;
    /// Row `row`'s value of join key `key`, if the row gives one.
    fn value(&self, row: usize, key: &str) -> Option<&Value>;
    /// Appends row `row` as a JSON object with its keys sorted (`{"driver_id":1001}`): the
    /// bytes `serde_json` writes for the row's `BTreeMap<String, Value>`.
    fn write_row_json(&self, row: usize, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

impl EntityRows for [BTreeMap<String, Value>] {
    fn count(&self) -> usize {
        self.len()
    }
    fn value(&self, row: usize, key: &str) -> Option<&Value> {
        self.get(row)?.get(key)
    }
    fn write_row_json(&self, row: usize, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &self[row])
    }
}

/// Entity rows as columns: each join key once, with one value per row, every column as long
/// as the others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityColumns {
    /// (join key, its value in each row), sorted by join key, no key twice.
    columns: Vec<(String, Vec<Value>)>,
    rows: usize,
}

impl EntityColumns {
    /// The rows of `columns` (join key -> one value per row). Refused when the columns differ
    /// in length, or when there are no rows.
    pub fn new(columns: BTreeMap<String, Vec<Value>>) -> Result<Self> {
        let Some(rows) = columns.values().map(Vec::len).next() else {
            return Err(Error::InvalidInput("no entity rows: send join key columns in `entities`".into()));
        };
        if let Some((key, column)) = columns.iter().find(|(_, c)| c.len() != rows) {
            return Err(Error::InvalidInput(format!(
                "entity columns differ in length: '{key}' has {} values, another column has {rows}",
                column.len()
            )));
        }
        if rows == 0 {
            return Err(Error::InvalidInput("no entity rows: the join key columns are empty".into()));
        }
        // A BTreeMap iterates in key order: the columns come out sorted.
        Ok(EntityColumns { columns: columns.into_iter().collect(), rows })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether there are no rows (never, for columns made by [`EntityColumns::new`]).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// One row as a map, join key -> value.
    pub fn row(&self, row: usize) -> BTreeMap<String, Value> {
        self.columns.iter().filter_map(|(k, c)| Some((k.clone(), c.get(row)?.clone()))).collect()
    }
}

impl EntityRows for EntityColumns {
    fn count(&self) -> usize {
        self.rows
    }
    fn value(&self, row: usize, key: &str) -> Option<&Value> {
        self.columns.iter().find(|(k, _)| k == key)?.1.get(row)
    }
    fn write_row_json(&self, row: usize, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.push(b'{');
        for (i, (key, column)) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, key.as_str())?;
            out.push(b':');
            serde_json::to_writer(&mut *out, &column[row])?;
        }
        out.push(b'}');
        Ok(())
    }
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
    /// rows the answer was read for, in the same order). Keys are in sorted order at every
    /// level, as a `serde_json::Value` holds them.
    pub fn to_json(&self, entity_rows: &[BTreeMap<String, Value>]) -> serde_json::Value {
        serde_json::to_value(self.json(entity_rows)).unwrap_or_default()
    }

    /// The same answer, serialized where it goes (`serde_json::to_vec(&response.json(rows))`
    /// writes the bytes with no tree in between).
    pub fn json<'a>(&'a self, entity_rows: &'a [BTreeMap<String, Value>]) -> OnlineJson<'a> {
        OnlineJson { response: self, entity_rows, names: self.names() }
    }

    /// Each distinct feature reference as text, sorted, with its position in the answer. A
    /// feature asked for twice is one key; both positions hold the same value.
    fn names(&self) -> Vec<(String, usize)> {
        let mut names: Vec<(String, usize)> =
            self.features.iter().enumerate().map(|(i, r)| (r.to_string(), i)).collect();
        names.sort();
        names.dedup_by(|later, earlier| later.0 == earlier.0);
        names
    }
}

impl OnlineResponse {
    /// Appends the answer's JSON to `out`: the same bytes as `serde_json::to_writer(out,
    /// &self.json(entity_rows))`, written with less work per value, which is what a large
    /// answer spends its time on. Each feature name is escaped once per answer rather than
    /// once per entity row, the constant keys are copied as bytes, and an event time shared
    /// by the features of one view row is formatted once.
    pub fn write_json<R: EntityRows + ?Sized>(
        &self,
        entity_rows: &R,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let names = self.names();
        // Every distinct name as `"name":`, escaped, one after the other in one buffer.
        let mut keys = Vec::with_capacity(names.iter().map(|(n, _)| n.len() + 3).sum());
        let mut ends = Vec::with_capacity(names.len());
        for (name, _) in &names {
            serde_json::to_writer(&mut keys, name.as_str())?;
            keys.push(b':');
            ends.push(keys.len());
        }
        let mut time: Option<(i64, Rfc3339)> = None;
        out.extend_from_slice(b"{\"results\":[");
        for (r, values) in self.rows.iter().enumerate().take(entity_rows.count()) {
            if r > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"entity\":");
            entity_rows.write_row_json(r, out)?;
            out.extend_from_slice(b",\"features\":{");
            let mut start = 0;
            let mut first = true;
            for ((_, i), &end) in names.iter().zip(&ends) {
                let key = &keys[start..end];
                start = end;
                let Some(fv) = values.get(*i) else { continue };
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(key);
                out.extend_from_slice(b"{\"event_timestamp\":");
                match fv.event_ns {
                    Some(ns) => {
                        if time.as_ref().is_none_or(|(at, _)| *at != ns) {
                            time = Some((ns, Rfc3339::new(ns)));
                        }
                        if let Some((_, text)) = &time {
                            // Digits, '-', ':', '.', 'T' and 'Z' only: nothing to escape.
                            out.push(b'"');
                            out.extend_from_slice(text.as_bytes());
                            out.push(b'"');
                        }
                    }
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\"status\":\"");
                out.extend_from_slice(fv.status.name().as_bytes());
                out.extend_from_slice(b"\",\"value\":");
                write_json_value(&fv.value, out)?;
                out.push(b'}');
            }
            out.extend_from_slice(b"}}");
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

/// An [`OnlineResponse`] ready to serialize: see [`OnlineResponse::json`].
pub struct OnlineJson<'a> {
    response: &'a OnlineResponse,
    entity_rows: &'a [BTreeMap<String, Value>],
    /// Each distinct feature reference as text, sorted, with its position in the answer.
    names: Vec<(String, usize)>,
}

impl Serialize for OnlineJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let results = ResultsJson(self);
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("results", &results)?;
        map.end()
    }
}

struct ResultsJson<'a, 'b>(&'b OnlineJson<'a>);

impl Serialize for ResultsJson<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let all = self.0;
        s.collect_seq(all.entity_rows.iter().zip(&all.response.rows).map(|(entity, values)| ResultJson {
            entity,
            values,
            names: &all.names,
        }))
    }
}

struct ResultJson<'a> {
    entity: &'a BTreeMap<String, Value>,
    values: &'a [FeatureValue],
    names: &'a [(String, usize)],
}

impl Serialize for ResultJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("entity", self.entity)?;
        map.serialize_entry("features", &FeaturesJson(self))?;
        map.end()
    }
}

struct FeaturesJson<'a, 'b>(&'b ResultJson<'a>);

impl Serialize for FeaturesJson<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let row = self.0;
        s.collect_map(
            row.names
                .iter()
                .filter_map(|(name, i)| row.values.get(*i).map(|fv| (name.as_str(), FeatureJson(fv)))),
        )
    }
}

struct FeatureJson<'a>(&'a FeatureValue);

impl Serialize for FeatureJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fv = self.0;
        let mut map = s.serialize_map(Some(3))?;
        match fv.event_ns {
            Some(ns) => map.serialize_entry("event_timestamp", &*Rfc3339::new(ns))?,
            None => map.serialize_entry("event_timestamp", &())?,
        }
        map.serialize_entry("status", fv.status.name())?;
        map.serialize_entry("value", &fv.value)?;
        map.end()
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
pub async fn get_online_features<R: EntityRows + ?Sized>(
    store: &dyn OnlineStore,
    defs: &Definitions,
    features: &[FeatureRef],
    entity_rows: &R,
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
    let view_keys: Vec<_> = views.iter().map(|v| defs.join_keys(v)).collect();
    let row_count = entity_rows.count();
    let mut keys: Vec<(&str, EntityKey)> = Vec::with_capacity(row_count.saturating_mul(views.len()));
    // One buffer for the typed key values of a (row, view), reused for every key.
    let mut values: Vec<Value> = Vec::new();
    for i in 0..row_count {
        for (view, join_keys) in views.iter().zip(&view_keys) {
            values.clear();
            for k in join_keys {
                let given = entity_rows.value(i, &k.name).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "entity row {i} has no value for join key '{}' of feature view '{}'",
                        k.name, view.name
                    ))
                })?;
                values.push(key_value(view, &k.name, &k.dtype, given)?);
            }
            let mut entity = String::with_capacity(32);
            if !write_entity_key(&mut entity, join_keys.iter().map(|k| k.name.as_str()).zip(&values)) {
                return Err(Error::Internal("a typed key did not encode".into()));
            }
            keys.push((view.name.as_str(), EntityKey(entity)));
        }
    }
    let stored = store.read(&keys).await?;
    if stored.len() != keys.len() {
        return Err(Error::Internal(format!("the store answered {} of {} keys", stored.len(), keys.len())));
    }
    let fingerprints: Vec<u32> = views.iter().map(|v| view_fingerprint(v)).collect();
    let mut rows = Vec::with_capacity(row_count);
    // Per view, the event time of the entity row's stored row (None: nothing usable stored)
    // and its values, decoded into a buffer reused row after row.
    let mut decoded: Vec<(Option<i64>, Vec<Value>)> = views.iter().map(|_| (None, Vec::new())).collect();
    for i in 0..row_count {
        for (vi, view) in views.iter().enumerate() {
            let k = i * views.len() + vi;
            let (event, values) = &mut decoded[vi];
            *event = match &stored[k] {
                Some(bytes) if stored_fingerprint(bytes) == Some(fingerprints[vi]) => {
                    // The key is named only when the row does not decode.
                    let (event_ns, _) = decode_into(bytes, "", values).map_err(|e| match e {
                        Error::Corrupt { message, .. } => {
                            Error::Corrupt { key: format!("{}:{}", view.name, keys[k].1), message }
                        }
                        other => other,
                    })?;
                    Some(event_ns)
                }
                _ => None,
            };
        }
        let mut out = Vec::with_capacity(columns.len());
        for (vi, position) in &columns {
            let view = views[*vi];
            let (event, values) = &decoded[*vi];
            let fv = match *event {
                None => FeatureValue { value: Value::Null, status: Status::NotFound, event_ns: None },
                // The stored row is newer than the time asked about: it was not known then.
                // The store keeps only the latest row, so what held at that time is not here
                // (a training set has it); the answer is NOT_FOUND, never a value from later.
                Some(event_ns) if event_ns > now_ns => {
                    FeatureValue { value: Value::Null, status: Status::NotFound, event_ns: None }
                }
                Some(event_ns) => {
                    let ttl_ns = (view.ttl.seconds() as i64).saturating_mul(1_000_000_000);
                    if ttl_ns > 0 && now_ns.saturating_sub(event_ns) > ttl_ns {
                        FeatureValue {
                            value: Value::Null,
                            status: Status::OutsideMaxAge,
                            event_ns: Some(event_ns),
                        }
                    } else {
                        let value = values.get(*position).cloned().unwrap_or(Value::Null);
                        let status = if value.is_null() { Status::NullValue } else { Status::Present };
                        FeatureValue { value, status, event_ns: Some(event_ns) }
                    }
                }
            };
            out.push(fv);
        }
        rows.push(out);
    }
    Ok(OnlineResponse { features: features.to_vec(), rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(r: &str) -> FeatureRef {
        let (view, feature) = r.split_once(':').unwrap();
        FeatureRef { view: view.into(), feature: feature.into() }
    }

    #[test]
    fn the_json_written_straight_is_the_json_of_the_tree_with_keys_sorted_and_repeats_once() {
        let features = ["zeta:b", "alpha:\"q\"", "zeta:a", "alpha:\"q\""].map(reference).to_vec();
        let fv =
            |value: Value, status: Status, event_ns: Option<i64>| FeatureValue { value, status, event_ns };
        let present = Status::Present;
        let rows = vec![
            vec![
                fv(Value::Float32(0.5329), present, Some(1_767_225_600_123_000_000)),
                fv(Value::List(vec![Value::Bytes(vec![0, 255]), Value::Null]), present, Some(-1)),
                fv(Value::Null, Status::NullValue, Some(0)),
                fv(Value::List(vec![Value::Bytes(vec![0, 255]), Value::Null]), present, Some(-1)),
            ],
            vec![
                fv(Value::Null, Status::NotFound, None),
                fv(Value::Timestamp(1_500), present, Some(7)),
                fv(Value::Null, Status::OutsideMaxAge, Some(1)),
                fv(Value::Timestamp(1_500), present, Some(7)),
            ],
        ];
        let response = OnlineResponse { features, rows };
        let entities: Vec<BTreeMap<String, Value>> = [
            [("z_key", Value::String("é\n".into())), ("a_key", Value::Int64(-3))],
            [("z_key", Value::String(String::new())), ("a_key", Value::Int64(i64::MAX))],
        ]
        .into_iter()
        .map(|row| row.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        .collect();
        let written = serde_json::to_string(&response.json(&entities)).unwrap();
        let tree = response.to_json(&entities);
        // The same text byte for byte: a tree's maps are sorted, so the writer's are too.
        assert_eq!(written, tree.to_string());
        let mut by_hand = b"already here".to_vec();
        response.write_json(&entities[..], &mut by_hand).unwrap();
        assert_eq!(by_hand, [b"already here", written.as_bytes()].concat());
        // The same rows held as columns (as the gRPC and JSON APIs send them) write the same bytes.
        let mut columns: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for row in &entities {
            for (k, v) in row {
                columns.entry(k.clone()).or_default().push(v.clone());
            }
        }
        let columns = EntityColumns::new(columns).unwrap();
        assert_eq!((0..2).map(|r| columns.row(r)).collect::<Vec<_>>(), entities);
        let mut from_columns = Vec::new();
        response.write_json(&columns, &mut from_columns).unwrap();
        assert_eq!(String::from_utf8(from_columns).unwrap(), written);
        let first = &tree["results"][0]["features"];
        assert_eq!(first.as_object().unwrap().len(), 3, "a feature asked for twice is one key: {first}");
        assert_eq!(first["zeta:b"]["value"], serde_json::json!(0.5329));
        assert_eq!(first["zeta:b"]["event_timestamp"], "2026-01-01T00:00:00.123Z");
        assert_eq!(first["alpha:\"q\""]["value"], serde_json::json!(["00ff", null]));
        assert_eq!(first["zeta:a"]["status"], "NULL_VALUE");
        let second = &tree["results"][1];
        assert_eq!(second["entity"], serde_json::json!({"a_key": i64::MAX, "z_key": ""}));
        assert_eq!(
            second["features"]["zeta:b"],
            serde_json::json!({"event_timestamp": null, "status": "NOT_FOUND", "value": null})
        );
        assert_eq!(second["features"]["alpha:\"q\""]["value"], "1970-01-01T00:00:00.000001500Z");
        assert_eq!(second["features"]["zeta:a"]["status"], "OUTSIDE_MAX_AGE");
    }

    /// A small random generator for the test below (the sequence depends only on the seed).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    fn random_value(g: &mut Lcg, depth: u32) -> Value {
        match g.below(if depth > 1 { 10 } else { 11 }) {
            0 => Value::Null,
            1 => Value::Bool(g.below(2) == 1),
            2 => Value::Int32(g.below(u64::MAX) as i32),
            3 => Value::Int64(g.below(u64::MAX) as i64 - (1 << 62)),
            4 => Value::Float32(f32::from_bits(g.below(1 << 32) as u32)),
            5 => Value::Float64(f64::from_bits(g.below(u64::MAX) << 1)),
            6 => Value::String(["", "a\"b", "\\", "é\u{1}\t", "gold"][g.below(5) as usize].to_string()),
            7 => Value::Bytes((0..g.below(4)).map(|_| g.below(256) as u8).collect()),
            8 | 9 => Value::Timestamp(g.below(u64::MAX) as i64),
            _ => Value::List((0..g.below(4)).map(|_| random_value(g, depth + 1)).collect()),
        }
    }

    #[test]
    fn the_hand_written_json_is_the_serialized_json_byte_for_byte_over_random_answers() {
        let names = ["v:a", "v:b", "w:\"q\"", "w:é", "x:\u{7f}", "a:z"];
        for seed in 0..300 {
            let mut g = Lcg(seed);
            let features: Vec<FeatureRef> =
                (0..g.below(6)).map(|_| reference(names[g.below(names.len() as u64) as usize])).collect();
            let entities: Vec<BTreeMap<String, Value>> = (0..g.below(4))
                .map(|_| (0..g.below(3)).map(|k| (format!("key_{k}"), random_value(&mut g, 1))).collect())
                .collect();
            let shared_time = g.below(u64::MAX) as i64;
            let rows = (0..entities.len())
                .map(|_| {
                    // Some rows are one value short, as a store row written for an older
                    // definition can be; those features are left out of the answer.
                    let len = features.len().saturating_sub(g.below(2) as usize);
                    (0..len)
                        .map(|_| {
                            let status =
                                [Status::Present, Status::NullValue, Status::NotFound, Status::OutsideMaxAge]
                                    [g.below(4) as usize];
                            let event_ns = match g.below(3) {
                                0 => None,
                                1 => Some(shared_time),
                                _ => Some(g.below(u64::MAX) as i64),
                            };
                            FeatureValue { value: random_value(&mut g, 0), status, event_ns }
                        })
                        .collect()
                })
                .collect();
            let response = OnlineResponse { features, rows };
            let expected = serde_json::to_vec(&response.json(&entities)).unwrap();
            let mut written = Vec::new();
            response.write_json(&entities[..], &mut written).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap(),
                "seed {seed}"
            );
        }
    }
}
