//! The point-in-time join against a brute-force reference written here: for each spine row
//! and view, scan every materialized row, keep those with the same keys and
//! `t - ttl <= event_ts <= t`, take the greatest by (event ts, created ts, feature values).
//! Randomized data over many seeds: ties, nulls, ttl 0, rows before any data, unknown and
//! null keys, duplicate spine rows, nanosecond boundaries, string and compound keys, several
//! views in one request. Zero differences allowed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::physical_plan::{collect, displayable};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use quiver_core::definitions::FeatureRef;
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_core::storage::resolve_location;
use quiver_offline::historical::{HistoricalRequest, plan_historical, spine_session};
use quiver_offline::lake::Lake;
use quiver_offline::layout::sort_columns;
use quiver_offline::materialize::{Materializer, NoProgress, Span};
use quiver_offline::pit::QuiverCodec;
use quiver_offline::store::OfflineStore;
use url::Url;

/// The workspace's seeded generator: a failing seed can be replayed.
type Rng = quiver_sample::rng::SplitMix64;

const BASE_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const SECOND_US: i64 = 1_000_000;

/// One raw row of a view's source, with its values as scalars (keys first, then features).
#[derive(Clone, Debug)]
struct Row {
    keys: Vec<ScalarValue>,
    event_us: i64,
    created_us: Option<i64>,
    features: Vec<ScalarValue>,
}

struct ViewData {
    name: &'static str,
    keys: Vec<(&'static str, DataType)>,
    features: Vec<(&'static str, DataType)>,
    has_created: bool,
    ttl_s: i64,
    rows: Vec<Row>,
}

fn key_value(rng: &mut Rng, t: &DataType, universe: u64) -> ScalarValue {
    let k = rng.below(universe);
    match t {
        DataType::Int64 => ScalarValue::Int64(Some(k as i64 + 100)),
        DataType::Utf8 => ScalarValue::Utf8(Some(format!("k{k}"))),
        _ => unreachable!(),
    }
}

fn feature_value(rng: &mut Rng, t: &DataType) -> ScalarValue {
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

fn generate_views(rng: &mut Rng) -> Vec<ViewData> {
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

fn array_of(values: &[ScalarValue], t: &DataType) -> ArrayRef {
    if values.is_empty() {
        return datafusion::arrow::array::new_empty_array(t);
    }
    ScalarValue::iter_to_array(values.iter().cloned()).unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    quiver_sample::write_batch(path, batch).unwrap();
}

fn write_source(lake: &Path, v: &ViewData) {
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

fn dtype_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int64 => "int64",
        DataType::Int32 => "int32",
        DataType::Float64 => "float64",
        DataType::Utf8 => "string",
        DataType::Boolean => "bool",
        _ => unreachable!(),
    }
}

fn definitions_yaml(views: &[ViewData]) -> String {
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
struct SpineRow {
    k1: Option<i64>,
    k2: Option<String>,
    k3: Option<String>,
    t_ns: i64,
    label: i64,
}

fn generate_spine(rng: &mut Rng, views: &[ViewData]) -> Vec<SpineRow> {
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

fn spine_batch(rows: &[SpineRow]) -> RecordBatch {
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
fn cmp_scalar(a: &ScalarValue, b: &ScalarValue) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap(),
    }
}

/// The brute-force reference: the chosen row of `v` for keys and time, if any.
fn reference<'a>(v: &'a ViewData, keys: &[ScalarValue], t_ns: i64) -> Option<&'a Row> {
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

/// Reads a Parquet file and checks its rows ascend (nulls first) by `order`.
fn assert_file_sorted(url: &str, order: &[String]) {
    use datafusion::arrow::row::{RowConverter, SortField};
    let path = Url::parse(url).unwrap().to_file_path().unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let Some(first) = batches.first() else { return };
    let schema = first.schema();
    let all = datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap();
    let columns: Vec<ArrayRef> = order.iter().map(|name| all.column_by_name(name).unwrap().clone()).collect();
    let converter =
        RowConverter::new(columns.iter().map(|c| SortField::new(c.data_type().clone())).collect()).unwrap();
    let rows = converter.convert_columns(&columns).unwrap();
    for i in 1..rows.num_rows() {
        assert!(rows.row(i - 1) <= rows.row(i), "{}: row {i} sorts before row {}", path.display(), i - 1);
    }
}

async fn run_seed(seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let views = generate_views(&mut rng);
    for v in &views {
        write_source(&lake_dir, v);
    }
    let loaded = parse_documents(&[("defs.yaml".into(), definitions_yaml(&views))]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let registry = Registry::open(&resolve_location("registry/", tmp.path()).unwrap(), "pit").unwrap();
    registry.apply(&loaded.definitions, 0, "test").await.unwrap();
    // Every other run of four seeds (so with each way of windowing below) materializes as a
    // many-core machine would: windows read in three partitions of small batches, each
    // partition sorted and written by its own writer.
    let many_writers = (seed / 4) % 2 == 1;
    let lake_url = Url::from_directory_path(&lake_dir).unwrap();
    let lake = if many_writers {
        let config = quiver_offline::lake::lake_config().with_batch_size(7).with_target_partitions(3);
        Lake::with_session(lake_url, SessionContext::new_with_config(config))
    } else {
        Lake::new(lake_url)
    };
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let mut materializer = Materializer::new(lake.clone(), store.clone(), registry.clone()).unwrap();
    if many_writers {
        materializer.rows_per_writer = 1;
    }
    // Seeds take turns: one window (one sorted file per view); three windows (three sorted
    // files, merged on read); three windows and then a window across two of them, which
    // rewrites the files it cuts with their rows outside it, in their order (sorted files
    // still, merged with the others); and the same with the sorted-files sidecar removed, as
    // for a table some other writer made (every file sorted on read, then merged).
    let day = chrono::Duration::days(1);
    let minute = chrono::Duration::minutes(1);
    let base: DateTime<Utc> = DateTime::from_timestamp_micros(BASE_US).unwrap();
    let mode = seed % 4;
    let windows = match mode {
        0 => vec![(base - day, base + day)],
        1 => vec![
            (base - day, base + minute * 3),
            (base + minute * 3, base + minute * 6),
            (base + minute * 6, base + day),
        ],
        _ => vec![
            (base - day, base + minute * 3),
            (base + minute * 3, base + minute * 6),
            (base + minute * 6, base + day),
            (base + minute * 2, base + minute * 4),
        ],
    };
    for (start, end) in windows {
        let reports = materializer.run(Span::Window { start, end }, &[], &NoProgress).await.unwrap();
        for r in &reports {
            assert!(r.error.is_none(), "{r:?}");
        }
    }
    // The sorts and writers gave back every byte they reserved.
    assert_eq!(
        lake.session().runtime_env().memory_pool.reserved(),
        0,
        "seed {seed}: memory held after materializing"
    );

    if mode == 3 {
        for v in &views {
            std::fs::remove_file(
                tmp.path().join("offline").join(v.name).join(quiver_offline::sidecar::SIDECAR),
            )
            .unwrap();
        }
    }
    // Every file the sidecar lists as sorted really is, and every file is listed: the
    // windows' own files and, after the straddling re-run, the rewrites of the files it cut.
    for v in &views {
        let snapshot = store.snapshot(v.name, None).await.unwrap().expect("materialized");
        let order = sort_columns(&snapshot.schema);
        for file in &snapshot.files {
            assert_eq!(file.sorted, mode < 3, "seed {seed}: {} of view {}", file.path, v.name);
            assert_file_sorted(&file.url, &order);
        }
    }

    let spine_rows = generate_spine(&mut rng, &views);
    let spine_path = tmp.path().join("spine.parquet");
    write_parquet(&spine_path, &spine_batch(&spine_rows));

    // Request a feature mix across the three views, in a shuffled order.
    let mut features: Vec<FeatureRef> = views
        .iter()
        .flat_map(|v| {
            v.features.iter().map(|(f, _)| FeatureRef { view: v.name.into(), feature: (*f).into() })
        })
        .collect();
    let shift = rng.below(features.len() as u64) as usize;
    features.rotate_left(shift);
    let request = HistoricalRequest {
        features: features.clone(),
        full_feature_names: true,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
    };
    // Odd seeds read in batches of a few rows, so candidates and order checks cross batch
    // boundaries on both sides of the join.
    let ctx = if seed % 2 == 1 {
        let session = lake.session();
        SessionContext::new_with_config_rt(session.copied_config().with_batch_size(3), session.runtime_env())
    } else {
        lake.session().clone()
    };
    let spine_ctx = spine_session(&ctx);
    let spine =
        spine_ctx.read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
    let planned = plan_historical(&ctx, &loaded.definitions, &store, spine, &request).await.unwrap();
    // Sorted files are merged, not sorted again: the only sorts are the spine's (one per
    // view, one back to input order), unless the files are not known to be sorted.
    let plan_text = displayable(planned.plan.as_ref()).indent(false).to_string();
    let sorts = plan_text.matches("SortRowsExec").count();
    assert_eq!(plan_text.matches("SortExec").count(), 0, "every sort is Quiver's own:\n{plan_text}");
    if mode < 3 {
        assert_eq!(sorts, views.len() + 1, "seed {seed}: feature rows were sorted again:\n{plan_text}");
    } else {
        assert!(sorts > views.len() + 1, "seed {seed}: unlisted files were trusted as sorted:\n{plan_text}");
    }
    let batches = collect(planned.plan.clone(), ctx.task_ctx()).await.unwrap();
    let out = datafusion::arrow::compute::concat_batches(&planned.schema, &batches).unwrap();
    assert_eq!(ctx.runtime_env().memory_pool.reserved(), 0, "seed {seed}: memory held after the join");

    // The plan survives serialization with the Quiver codec and gives the same answer.
    let bytes = datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
        planned.plan.clone(),
        &QuiverCodec,
    )
    .unwrap();
    let decoded = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
        &bytes,
        &ctx.task_ctx(),
        &QuiverCodec,
    )
    .unwrap();
    let again = collect(decoded, ctx.task_ctx()).await.unwrap();
    let again = datafusion::arrow::compute::concat_batches(&planned.schema, &again).unwrap();
    assert_eq!(out, again, "seed {seed}: the deserialized plan differs");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_join_matches_brute_force_over_many_seeds() {
    let mut cells = 0;
    for seed in 1..=40 {
        cells += run_seed(seed).await;
    }
    assert!(cells > 10_000, "only {cells} cells were compared");
}

#[tokio::test]
async fn an_empty_spine_gives_an_empty_result_with_the_right_schema() {
    let mut rng = Rng::new(7);
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let views = generate_views(&mut rng);
    for v in &views {
        write_source(&lake_dir, v);
    }
    let loaded = parse_documents(&[("defs.yaml".into(), definitions_yaml(&views))]);
    let lake = Lake::new(Url::from_directory_path(&lake_dir).unwrap());
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let spine_path = tmp.path().join("spine.parquet");
    write_parquet(&spine_path, &spine_batch(&[]));
    let ctx = lake.session().clone();
    let spine = spine_session(&ctx)
        .read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let request = HistoricalRequest {
        features: vec![FeatureRef { view: "by_int".into(), feature: "a_f64".into() }],
        full_feature_names: false,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
    };
    // Nothing materialized either: the view reads as empty.
    let planned = plan_historical(&ctx, &loaded.definitions, &store, spine, &request).await.unwrap();
    let batches = collect(planned.plan.clone(), ctx.task_ctx()).await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    let names: Vec<&str> = planned.schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["label", "k1", "event_timestamp", "k2", "k3", "a_f64"]);
    assert_eq!(planned.schema.field(5).data_type(), &DataType::Float64);
    let _ = (BooleanArray::from(vec![true]), Float64Array::from(vec![1.0]), Int32Array::from(vec![1]));
}

#[tokio::test]
async fn feature_names_that_clash_need_full_names() {
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    let mut rng = Rng::new(3);
    let views = generate_views(&mut rng);
    for v in &views {
        write_source(&lake_dir, v);
    }
    // A second view over by_int's source with a feature of the same name.
    let yaml = definitions_yaml(&views)
        + "  - {name: by_int_copy, entities: [e1], source: by_int_src, features: [{name: a_i64, dtype: int64}]}\n";
    let loaded = parse_documents(&[("defs.yaml".into(), yaml)]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let lake = Lake::new(Url::from_directory_path(&lake_dir).unwrap());
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let spine_path = tmp.path().join("spine.parquet");
    write_parquet(&spine_path, &spine_batch(&generate_spine(&mut rng, &views)));
    let ctx = lake.session().clone();
    let request = |full: bool| HistoricalRequest {
        features: vec![
            FeatureRef { view: "by_int".into(), feature: "a_i64".into() },
            FeatureRef { view: "by_int_copy".into(), feature: "a_i64".into() },
        ],
        full_feature_names: full,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
    };
    let read = || async {
        spine_session(&ctx)
            .read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap()
    };
    let err = plan_historical(&ctx, &loaded.definitions, &store, read().await, &request(false))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("feature name 'a_i64' is requested from both view 'by_int' and view 'by_int_copy'"),
        "{err}"
    );
    let planned =
        plan_historical(&ctx, &loaded.definitions, &store, read().await, &request(true)).await.unwrap();
    let names: Vec<&str> = planned.schema.fields().iter().map(|f| f.name().as_str()).skip(5).collect();
    assert_eq!(names, ["by_int__a_i64", "by_int_copy__a_i64"]);
}
