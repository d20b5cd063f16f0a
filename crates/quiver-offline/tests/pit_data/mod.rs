//! Random feature views, their sources and spines, and the brute-force point-in-time
//! reference, shared by the tests that check training sets against it: this crate's
//! `point_in_time.rs` and quiver-ballista's `cluster.rs` (which includes this file by path).

#![allow(dead_code)] // each including test uses a part

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use quiver_core::definitions::FeatureRef;

/// The workspace's seeded generator: a failing seed can be replayed.
pub type Rng = quiver_sample::rng::SplitMix64;

pub const BASE_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
pub const SECOND_US: i64 = 1_000_000;

/// One raw row of a view's source, with its values as scalars (keys first, then features).
#[derive(Clone, Debug)]
pub struct Row {
    pub keys: Vec<ScalarValue>,
    pub event_us: i64,
    pub created_us: Option<i64>,
    pub features: Vec<ScalarValue>,
}

pub struct ViewData {
    pub name: &'static str,
    pub keys: Vec<(&'static str, DataType)>,
    pub features: Vec<(&'static str, DataType)>,
    pub has_created: bool,
    pub ttl_s: i64,
    pub rows: Vec<Row>,
}

pub fn key_value(rng: &mut Rng, t: &DataType, universe: u64) -> ScalarValue {
    let k = rng.below(universe);
    match t {
        DataType::Int64 => ScalarValue::Int64(Some(k as i64 + 100)),
        DataType::Utf8 => ScalarValue::Utf8(Some(format!("k{k}"))),
        _ => unreachable!(),
    }
}

pub fn feature_value(rng: &mut Rng, t: &DataType) -> ScalarValue {
    let null = rng.chance(15);
    match t {
        DataType::Int64 => ScalarValue::Int64((!null).then(|| rng.below(5) as i64)),
        DataType::Int32 => ScalarValue::Int32((!null).then(|| rng.below(5) as i32)),
        DataType::Float64 => ScalarValue::Float64((!null).then(|| rng.below(8) as f64 / 4.0)),
        DataType::Utf8 => ScalarValue::Utf8((!null).then(|| format!("v{}", rng.below(4)))),
        DataType::Boolean => ScalarValue::Boolean((!null).then(|| rng.chance(50))),
        _ => unreachable!(),
    }
}

pub fn generate_views(rng: &mut Rng) -> Vec<ViewData> {
    let ttls = [0, 30, 120, 600];
    let mut views = vec![
        ViewData {
            name: "by_int",
            keys: vec![("k1", DataType::Int64)],
            features: vec![("a_i64", DataType::Int64), ("a_f64", DataType::Float64)],
            has_created: true,
            ttl_s: ttls[rng.below(4) as usize],
            rows: vec![],
        },
        ViewData {
            name: "by_str",
            keys: vec![("k2", DataType::Utf8)],
            features: vec![("b_str", DataType::Utf8), ("b_bool", DataType::Boolean)],
            has_created: false,
            ttl_s: ttls[rng.below(4) as usize],
            rows: vec![],
        },
        ViewData {
            name: "by_pair",
            keys: vec![("k1", DataType::Int64), ("k3", DataType::Utf8)],
            features: vec![("c_i32", DataType::Int32)],
            has_created: true,
            ttl_s: ttls[rng.below(4) as usize],
            rows: vec![],
        },
    ];
    for v in &mut views {
        let n = 20 + rng.below(120);
        let universe = 2 + rng.below(6);
        for _ in 0..n {
            // Few distinct times so that equal event times (and equal created times) happen.
            let event_us =
                BASE_US + (rng.below(40) as i64) * 15 * SECOND_US + if rng.chance(10) { 7 } else { 0 };
            let created_us = if v.has_created && !rng.chance(10) {
                Some(event_us + (rng.below(3) as i64) * SECOND_US)
            } else {
                None
            };
            v.rows.push(Row {
                keys: v.keys.iter().map(|(_, t)| key_value(rng, t, universe)).collect(),
                event_us,
                created_us,
                features: v.features.iter().map(|(_, t)| feature_value(rng, t)).collect(),
            });
        }
    }
    views
}

pub fn array_of(values: &[ScalarValue], t: &DataType) -> ArrayRef {
    if values.is_empty() {
        return datafusion::arrow::array::new_empty_array(t);
    }
    ScalarValue::iter_to_array(values.iter().cloned()).unwrap()
}

pub fn write_parquet(path: &Path, batch: &RecordBatch) {
    quiver_sample::write_batch(path, batch).unwrap();
}

pub fn write_source(lake: &Path, v: &ViewData) {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, (name, t)) in v.keys.iter().enumerate() {
        fields.push(Field::new(*name, t.clone(), true));
        columns.push(array_of(&v.rows.iter().map(|r| r.keys[i].clone()).collect::<Vec<_>>(), t));
    }
    let ts_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    fields.push(Field::new("ts", ts_type.clone(), false));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(v.rows.iter().map(|r| r.event_us).collect::<Vec<_>>())
            .with_timezone("UTC"),
    ));
    if v.has_created {
        fields.push(Field::new("created", ts_type, true));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(v.rows.iter().map(|r| r.created_us).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ));
    }
    for (i, (name, t)) in v.features.iter().enumerate() {
        fields.push(Field::new(*name, t.clone(), true));
        columns.push(array_of(&v.rows.iter().map(|r| r.features[i].clone()).collect::<Vec<_>>(), t));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    write_parquet(&lake.join(v.name).join("part-0.parquet"), &batch);
}

pub fn dtype_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int64 => "int64",
        DataType::Int32 => "int32",
        DataType::Float64 => "float64",
        DataType::Utf8 => "string",
        DataType::Boolean => "bool",
        _ => unreachable!(),
    }
}

pub fn definitions_yaml(views: &[ViewData]) -> String {
    let mut y = String::from(
        "entities:\n  - {name: e1, join_keys: [{name: k1, dtype: int64}]}\n  - {name: e2, join_keys: [{name: k2, dtype: string}]}\n  - {name: e3, join_keys: [{name: k3, dtype: string}]}\nsources:\n",
    );
    for v in views {
        y.push_str(&format!(
            "  - {{name: {n}_src, path: {n}/, format: parquet, timestamp_field: ts{c}}}\n",
            n = v.name,
            c = if v.has_created { ", created_timestamp_field: created" } else { "" }
        ));
    }
    y.push_str("feature_views:\n");
    for v in views {
        let entities = match v.name {
            "by_int" => "[e1]",
            "by_str" => "[e2]",
            _ => "[e1, e3]",
        };
        let features: Vec<String> =
            v.features.iter().map(|(n, t)| format!("{{name: {n}, dtype: {}}}", dtype_name(t))).collect();
        y.push_str(&format!(
            "  - {{name: {n}, entities: {entities}, source: {n}_src, ttl: \"{ttl}s\", features: [{f}]}}\n",
            n = v.name,
            ttl = v.ttl_s,
            f = features.join(", ")
        ));
    }
    y.replace("ttl: \"0s\"", "ttl: \"0\"")
}

/// A spine row: keys by name, time in nanoseconds, a label.
pub struct SpineRow {
    pub k1: Option<i64>,
    pub k2: Option<String>,
    pub k3: Option<String>,
    pub t_ns: i64,
    pub label: i64,
}

pub fn generate_spine(rng: &mut Rng, views: &[ViewData]) -> Vec<SpineRow> {
    let n = rng.below(150) as usize;
    let mut rows: Vec<SpineRow> = Vec::with_capacity(n);
    let all: Vec<&Row> = views.iter().flat_map(|v| &v.rows).collect();
    for i in 0..n {
        if i > 0 && rng.chance(8) {
            // An exact duplicate of an earlier row.
            let j = rng.below(i as u64) as usize;
            let r = &rows[j];
            rows.push(SpineRow {
                k1: r.k1,
                k2: r.k2.clone(),
                k3: r.k3.clone(),
                t_ns: r.t_ns,
                label: r.label,
            });
            continue;
        }
        let near = all[rng.below(all.len() as u64) as usize];
        let t_ns = match rng.below(6) {
            0 => near.event_us * 1000,                    // exactly at an event
            1 => near.event_us * 1000 - 1,                // one nanosecond before it
            2 => (near.event_us + 30 * SECOND_US) * 1000, // exactly at a ttl boundary of some views
            3 => (BASE_US - 10 * SECOND_US) * 1000,       // before any data
            _ => (BASE_US + rng.below(700) as i64 * SECOND_US) * 1000 + rng.below(3) as i64,
        };
        let k1 = if rng.chance(5) { None } else { Some(100 + rng.below(9) as i64) };
        let k2 = if rng.chance(5) { None } else { Some(format!("k{}", rng.below(9))) };
        let k3 = Some(format!("k{}", rng.below(9)));
        rows.push(SpineRow { k1, k2, k3, t_ns, label: i as i64 });
    }
    rows
}

/// Every feature of `views`, in view order rotated by a random shift: the request mix of a
/// random training set.
pub fn rotated_features(rng: &mut Rng, views: &[ViewData]) -> Vec<FeatureRef> {
    let mut features: Vec<FeatureRef> = views
        .iter()
        .flat_map(|v| {
            v.features.iter().map(|(f, _)| FeatureRef { view: v.name.into(), feature: (*f).into() })
        })
        .collect();
    let shift = rng.below(features.len() as u64) as usize;
    features.rotate_left(shift);
    features
}

pub fn spine_batch(rows: &[SpineRow]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::Int64, false),
        Field::new("k1", DataType::Int64, true),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false),
        Field::new("k2", DataType::Utf8, true),
        Field::new("k3", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.label).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.k1).collect::<Vec<_>>())),
            Arc::new(
                TimestampNanosecondArray::from(rows.iter().map(|r| r.t_ns).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(rows.iter().map(|r| r.k2.clone()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.k3.clone()).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

/// Null sorts first, as in the store's tie-break order.
pub fn cmp_scalar(a: &ScalarValue, b: &ScalarValue) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap(),
    }
}

/// The brute-force reference: the chosen row of `v` for keys and time, if any.
pub fn reference<'a>(v: &'a ViewData, keys: &[ScalarValue], t_ns: i64) -> Option<&'a Row> {
    if keys.iter().any(|k| k.is_null()) {
        return None;
    }
    v.rows
        .iter()
        .filter(|r| r.keys == keys)
        .filter(|r| r.event_us * 1000 <= t_ns)
        .filter(|r| v.ttl_s == 0 || r.event_us * 1000 >= t_ns - v.ttl_s * 1_000_000_000)
        .max_by(|a, b| {
            a.event_us
                .cmp(&b.event_us)
                .then(a.created_us.cmp(&b.created_us)) // None < Some: nulls first
                .then_with(|| {
                    a.features
                        .iter()
                        .zip(&b.features)
                        .map(|(x, y)| cmp_scalar(x, y))
                        .find(|o| *o != Ordering::Equal)
                        .unwrap_or(Ordering::Equal)
                })
        })
}

/// Checks a training set built for `spine_rows` with `features` (full feature names): every
/// spine row once, in spine order, its columns untouched, then each feature equal to the
/// brute-force [`reference`]. Returns the number of feature cells compared.
pub fn check_training_set(
    seed: u64,
    out: &RecordBatch,
    spine_rows: &[SpineRow],
    views: &[ViewData],
    features: &[FeatureRef],
) -> usize {
    // Same rows, same order, spine columns first and untouched.
    assert_eq!(out.num_rows(), spine_rows.len(), "seed {seed}");
    let names: Vec<String> = out.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(&names[..5], ["label", "k1", "event_timestamp", "k2", "k3"]);
    let labels = out.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    for (i, r) in spine_rows.iter().enumerate() {
        assert_eq!(labels.value(i), r.label, "seed {seed}: row {i} moved");
    }

    let mut checked = 0;
    for (i, s) in spine_rows.iter().enumerate() {
        for (j, fref) in features.iter().enumerate() {
            let v = views.iter().find(|v| v.name == fref.view).unwrap();
            let keys: Vec<ScalarValue> = v
                .keys
                .iter()
                .map(|(k, _)| match *k {
                    "k1" => ScalarValue::Int64(s.k1),
                    "k2" => ScalarValue::Utf8(s.k2.clone()),
                    _ => ScalarValue::Utf8(s.k3.clone()),
                })
                .collect();
            let f_index = v.features.iter().position(|(f, _)| *f == fref.feature).unwrap();
            let expected = match reference(v, &keys, s.t_ns) {
                Some(row) => row.features[f_index].clone(),
                None => ScalarValue::try_from(&v.features[f_index].1).unwrap(),
            };
            let actual = ScalarValue::try_from_array(out.column(5 + j), i).unwrap();
            assert_eq!(
                actual, expected,
                "seed {seed}: spine row {i} (k1={:?} k2={:?} k3={:?} t={}), feature {fref}, ttl {}s",
                s.k1, s.k2, s.k3, s.t_ns, v.ttl_s
            );
            checked += 1;
        }
    }
    checked
}
