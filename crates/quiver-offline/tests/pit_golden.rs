//! The point-in-time join's boundary rules on a table small enough to read: a feature row is
//! visible from its own event time through exactly `ttl` later (both ends inclusive), a row
//! with a created time beats one without at the same event time, a full tie is broken by
//! the feature values, and a null or unknown key gets nulls. The expected training set is
//! written out as a table; a mismatch prints both tables with the differing rows marked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::physical_plan::collect;
use datafusion::prelude::ParquetReadOptions;
use quiver_core::definitions::FeatureRef;
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_core::storage::resolve_location;
use quiver_offline::historical::{HistoricalRequest, plan_historical, spine_session};
use quiver_offline::lake::Lake;
use quiver_offline::materialize::{Materializer, NoProgress, Span};
use quiver_offline::store::OfflineStore;
use url::Url;

const DEFS: &str = "
entities:
  - {name: driver, join_keys: [{name: driver_id, dtype: int64}]}
sources:
  - {name: stats_src, path: stats/, format: parquet, timestamp_field: ts, created_timestamp_field: created}
feature_views:
  - {name: stats, entities: [driver], source: stats_src, ttl: 1h, features: [{name: rate, dtype: float64}, {name: trips, dtype: int64}]}
";

/// `2026-01-01T` + `hms` (with optional fraction) in microseconds.
fn at(hms: &str) -> i64 {
    DateTime::parse_from_rfc3339(&format!("2026-01-01T{hms}Z")).unwrap().timestamp_micros()
}

fn timestamps(values: Vec<Option<i64>>) -> Arc<TimestampMicrosecondArray> {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    quiver_sample::write_batch(path, batch).unwrap();
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A source row: (driver, event time, created time, rate, trips).
type SourceRow = (Option<i64>, &'static str, Option<&'static str>, f64, i64);

fn source() -> RecordBatch {
    let rows: [SourceRow; 6] = [
        (Some(1), "10:00:00", None, 0.1, 1),
        (Some(1), "12:00:00", None, 0.2, 2),
        // Same event time, with a created time: wins over the row without one.
        (Some(1), "12:00:00", Some("12:05:00"), 0.3, 3),
        // A full tie on (event, created): the larger values win, whatever the file order.
        (Some(2), "10:00:00", None, 0.5, 5),
        (Some(2), "10:00:00", None, 0.4, 9),
        // No key: never materialized, never joined.
        (None, "10:00:00", None, 0.9, 9),
    ];
    let schema = Schema::new(vec![
        Field::new("driver_id", DataType::Int64, true),
        Field::new("ts", timestamp_type(), false),
        Field::new("created", timestamp_type(), true),
        Field::new("rate", DataType::Float64, true),
        Field::new("trips", DataType::Int64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            timestamps(rows.iter().map(|r| Some(at(r.1))).collect()),
            timestamps(rows.iter().map(|r| r.2.map(at)).collect()),
            Arc::new(Float64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

/// The spine: (driver, time).
fn spine() -> RecordBatch {
    let rows: [(Option<i64>, &str); 8] = [
        (Some(1), "09:59:59.999999"), // before the driver's first row
        (Some(1), "10:00:00"),        // exactly at a row's event time
        (Some(1), "11:00:00"),        // exactly ttl after it: still visible
        (Some(1), "11:00:00.000001"), // a microsecond past the ttl
        (Some(1), "12:00:00"),        // two rows at this time, one with a created time
        (Some(2), "10:30:00"),        // a full tie
        (None, "10:30:00"),           // no key
        (Some(3), "10:30:00"),        // a key with no rows
    ];
    let schema = Schema::new(vec![
        Field::new("driver_id", DataType::Int64, true),
        Field::new("event_timestamp", timestamp_type(), false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            timestamps(rows.iter().map(|r| Some(at(r.1))).collect()),
        ],
    )
    .unwrap()
}

const EXPECTED: &str = "
driver_id | event_timestamp             | rate | trips
1         | 2026-01-01T09:59:59.999999Z | NULL | NULL
1         | 2026-01-01T10:00:00.000000Z | 0.1  | 1
1         | 2026-01-01T11:00:00.000000Z | 0.1  | 1
1         | 2026-01-01T11:00:00.000001Z | NULL | NULL
1         | 2026-01-01T12:00:00.000000Z | 0.3  | 3
2         | 2026-01-01T10:30:00.000000Z | 0.5  | 5
NULL      | 2026-01-01T10:30:00.000000Z | NULL | NULL
3         | 2026-01-01T10:30:00.000000Z | NULL | NULL
";

/// One line per row (the header first), cells separated by ` | ` and padded to a column.
fn render(batch: &RecordBatch) -> Vec<String> {
    let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut lines = vec![names];
    for row in 0..batch.num_rows() {
        let cells = batch
            .columns()
            .iter()
            .map(|column| {
                if column.is_null(row) {
                    return "NULL".to_string();
                }
                let any = column.as_any();
                if let Some(a) = any.downcast_ref::<Int64Array>() {
                    a.value(row).to_string()
                } else if let Some(a) = any.downcast_ref::<Float64Array>() {
                    a.value(row).to_string()
                } else if let Some(a) = any.downcast_ref::<TimestampMicrosecondArray>() {
                    let t: DateTime<Utc> = DateTime::from_timestamp_micros(a.value(row)).unwrap();
                    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
                } else {
                    panic!("no rendering for {}", column.data_type())
                }
            })
            .collect();
        lines.push(cells);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0)).collect();
    lines
        .iter()
        .map(|cells| {
            let padded: Vec<String> = cells.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
            padded.join(" | ").trim_end().to_string()
        })
        .collect()
}

/// The cells of a rendered line, whatever its padding.
fn cells(line: &str) -> Vec<&str> {
    line.split('|').map(str::trim).collect()
}

/// Fails with both tables, the differing lines marked, when their cells differ.
fn assert_table(actual: &[String], expected: &str) {
    let expected: Vec<&str> = expected.trim().lines().map(str::trim_end).collect();
    let same = |e: &str, a: &str| cells(e) == cells(a);
    if actual.len() == expected.len() && actual.iter().zip(&expected).all(|(a, e)| same(e, a)) {
        return;
    }
    let mut report = String::from("training set differs from the expected table\n\nexpected:\n");
    let rows = expected.len().max(actual.len());
    for i in 0..rows {
        let e = expected.get(i).copied().unwrap_or("");
        let a = actual.get(i).map(String::as_str).unwrap_or("");
        report.push_str(&format!("{} {e}\n", if same(e, a) { ' ' } else { '-' }));
    }
    report.push_str("\nactual:\n");
    for i in 0..rows {
        let e = expected.get(i).copied().unwrap_or("");
        let a = actual.get(i).map(String::as_str).unwrap_or("");
        report.push_str(&format!("{} {a}\n", if same(e, a) { ' ' } else { '+' }));
    }
    panic!("{report}");
}

#[tokio::test]
async fn the_join_keeps_its_boundary_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let lake_dir = tmp.path().join("lake");
    write_parquet(&lake_dir.join("stats").join("part-0.parquet"), &source());
    let loaded = parse_documents(&[("defs.yaml".into(), DEFS.into())]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let registry = Registry::open(&resolve_location("registry/", tmp.path()).unwrap(), "golden").unwrap();
    registry.apply(&loaded.definitions, 0, "test").await.unwrap();
    let lake = Lake::new(Url::from_directory_path(&lake_dir).unwrap());
    let store = OfflineStore::new(Url::from_directory_path(tmp.path().join("offline")).unwrap());
    let materializer = Materializer::new(lake.clone(), store.clone(), registry).unwrap();
    let start = DateTime::from_timestamp_micros(at("00:00:00")).unwrap();
    let end = DateTime::from_timestamp_micros(at("23:59:59")).unwrap();
    let reports = materializer.run(Span::Window { start, end }, &[], &NoProgress).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].rows, &reports[0].error), (5, &None), "the keyless row is not materialized");

    let spine_path = tmp.path().join("spine.parquet");
    write_parquet(&spine_path, &spine());
    let ctx = lake.session().clone();
    let spine = spine_session(&ctx)
        .read_parquet(spine_path.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let feature = |name: &str| FeatureRef { view: "stats".into(), feature: name.into() };
    let request = HistoricalRequest {
        features: vec![feature("rate"), feature("trips")],
        full_feature_names: false,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
        partitions: 1,
    };
    let planned = plan_historical(&ctx, &loaded.definitions, &store, spine, &request).await.unwrap();
    let batches = collect(planned.plan, ctx.task_ctx()).await.unwrap();
    let out = datafusion::arrow::compute::concat_batches(&planned.schema, &batches).unwrap();
    assert_table(&render(&out), EXPECTED);
    assert_eq!(ctx.runtime_env().memory_pool.reserved(), 0, "the join returned all its memory");
}
