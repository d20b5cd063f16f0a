//! Definitions checked against real files through DataFusion: every problem with the data
//! is found before apply, and good definitions over parquet, csv, json, globs, hive
//! partitions and SQL transforms pass.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use quiver_core::problem::Problem;
use quiver_core::repo::{LoadedDefinitions, parse_documents};
use quiver_core::validate::validate_references;
use quiver_offline::check::check_against_lake;
use quiver_offline::lake::Lake;
use quiver_offline::types::timestamp_type;
use url::Url;

const JAN_1_2026_US: i64 = 1_767_225_600_000_000;

fn write_parquet(path: &Path, drivers: &[i64], hours: &[i64], rate: &[f64]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("conv_rate", DataType::Float64, true),
        Field::new("city", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(drivers.to_vec())),
            Arc::new(
                TimestampMicrosecondArray::from(
                    hours.iter().map(|h| JAN_1_2026_US + h * 3_600_000_000).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from(rate.to_vec())),
            Arc::new(StringArray::from(
                drivers.iter().map(|d| format!("city_{}", d % 3)).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A small lake: parquet in two files, hive-partitioned parquet, csv and json with text
/// timestamps, and a file that is not parquet at all.
fn lake(dir: &Path) {
    write_parquet(&dir.join("stats/part-0.parquet"), &[1, 2], &[0, 1], &[0.5, 0.25]);
    write_parquet(&dir.join("stats/part-1.parquet"), &[3], &[2], &[0.75]);
    write_parquet(&dir.join("parted/region=eu/a.parquet"), &[1], &[0], &[0.1]);
    write_parquet(&dir.join("parted/region=us/a.parquet"), &[2], &[0], &[0.2]);
    write_parquet(&dir.join("nested/x/a.parquet"), &[1, 2], &[0, 1], &[0.1, 0.2]);
    write_parquet(&dir.join("nested/y/deeper/b.parquet"), &[3], &[0], &[0.3]);
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(
        dir.join("zones/z.csv"),
        "zone_id,event_timestamp,open_requests\nzone_001,2026-01-01 00:00:00,5\nzone_002,2026-01-01 01:30:00,7\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(
        dir.join("profiles/p.json"),
        "{\"driver_id\": 1, \"ts\": \"2026-01-01T02:00:00Z\", \"rating\": 4.5}\n{\"driver_id\": 2, \"ts\": \"2026-01-01T03:00:00+01:00\", \"rating\": 3.9}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("broken")).unwrap();
    std::fs::write(dir.join("broken/x.parquet"), b"this is not parquet").unwrap();
}

const GOOD: &str = r#"
entities:
  - {name: driver, join_keys: [{name: driver_id, dtype: int64}]}
  - {name: zone, join_keys: [{name: zone_id, dtype: string}]}
sources:
  - {name: stats, path: "stats/*.parquet", format: parquet, timestamp_field: event_timestamp}
  - {name: parted, path: parted/, format: parquet, timestamp_field: event_timestamp}
  - {name: zones, path: zones/z.csv, format: csv, timestamp_field: event_timestamp}
  - {name: profiles, path: profiles, format: json, timestamp_field: ts}
  - {name: nested_glob, path: "nested/*/*.parquet", format: parquet, timestamp_field: event_timestamp}
  - {name: nested_folder, path: nested, format: parquet, timestamp_field: event_timestamp}
  - {name: parted_glob, path: "parted/region=*/*.parquet", format: parquet, timestamp_field: event_timestamp}
feature_views:
  - {name: v_nested_glob, entities: [driver], source: nested_glob, features: [{name: conv_rate, dtype: "float64"}]}
  - {name: v_nested_folder, entities: [driver], source: nested_folder, features: [{name: conv_rate, dtype: "float64"}]}
  - {name: v_parted_glob, entities: [driver], source: parted_glob, features: [{name: region, dtype: string}]}
  - name: driver_stats
    entities: [driver]
    source: stats
    ttl: 2h
    features:
      - {name: conv_rate, dtype: float64}
      - {name: city, dtype: string}
  - name: by_region
    entities: [driver]
    source: parted
    features:
      - {name: region, dtype: string}
  - name: zone_demand
    entities: [zone]
    source: zones
    features:
      - {name: open_requests, dtype: int64}
  - name: profile
    entities: [driver]
    source: profiles
    features:
      - {name: rating, dtype: float64}
  - name: derived
    entities: [driver]
    source: stats
    features:
      - {name: conv_pct, dtype: float64}
      - {name: conv_rate_f32, dtype: float32}
    transform: |
      SELECT driver_id, event_timestamp, conv_rate * 100 AS conv_pct,
             CAST(conv_rate AS FLOAT) AS conv_rate_f32
      FROM source WHERE conv_rate IS NOT NULL
"#;

async fn problems(dir: &Path, yaml: &str) -> (LoadedDefinitions, Vec<Problem>) {
    let loaded = parse_documents(&[("defs.yaml".into(), yaml.into())]);
    let mut all = loaded.problems.0.clone();
    all.extend(validate_references(&loaded).0);
    assert!(all.is_empty(), "structural problems in the fixture: {all:#?}");
    let lake = Lake::new(Url::from_directory_path(dir).unwrap());
    let found = check_against_lake(&loaded, &lake).await.0;
    (loaded, found)
}

fn expect<'a>(problems: &'a [Problem], object: &str, text: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.object.as_deref() == Some(object) && p.message.contains(text))
        .unwrap_or_else(|| panic!("no problem for {object} containing {text:?} in:\n{problems:#?}"))
}

#[tokio::test]
async fn good_definitions_over_every_format_pass() {
    let tmp = tempfile::tempdir().unwrap();
    lake(tmp.path());
    let (_, found) = problems(tmp.path(), GOOD).await;
    assert!(found.is_empty(), "{found:#?}");
}

#[tokio::test]
async fn text_timestamps_are_parsed_as_utc_and_partitions_become_columns() {
    let tmp = tempfile::tempdir().unwrap();
    lake(tmp.path());
    let (loaded, _) = problems(tmp.path(), GOOD).await;
    let lake = Lake::new(Url::from_directory_path(tmp.path()).unwrap());
    let defs = &loaded.definitions;

    let zones = lake.view_frame(defs, defs.feature_view("zone_demand").unwrap()).await.unwrap();
    let ts = zones.schema().field_with_unqualified_name("event_timestamp").unwrap().data_type().clone();
    assert_eq!(ts, timestamp_type());
    let batches = zones.sort_by(vec![datafusion::prelude::col("zone_id")]).unwrap().collect().await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    assert!(text.contains("2026-01-01T00:00:00Z"), "{text}");
    assert!(text.contains("2026-01-01T01:30:00Z"), "{text}");

    // An explicit offset is honoured: 03:00+01:00 is 02:00 UTC.
    let profiles = lake.view_frame(defs, defs.feature_view("profile").unwrap()).await.unwrap();
    let batches =
        profiles.sort_by(vec![datafusion::prelude::col("driver_id")]).unwrap().collect().await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    assert_eq!(text.matches("2026-01-01T02:00:00Z").count(), 2, "{text}");

    let parted = lake.view_frame(defs, defs.feature_view("by_region").unwrap()).await.unwrap();
    let batches = parted.sort_by(vec![datafusion::prelude::col("region")]).unwrap().collect().await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    assert!(text.contains("| eu ") && text.contains("| us "), "{text}");

    // The glob reads both files.
    let stats = lake.view_frame(defs, defs.feature_view("driver_stats").unwrap()).await.unwrap();
    assert_eq!(stats.count().await.unwrap(), 3);
    // A glob's `*` matches across folder levels, as does a folder read; a glob through
    // partition folders still yields the partition column.
    let count = |v: &'static str| {
        let lake = lake.clone();
        let defs = defs.clone();
        async move { lake.view_frame(&defs, defs.feature_view(v).unwrap()).await.unwrap().count().await.unwrap() }
    };
    assert_eq!(count("v_nested_glob").await, 3);
    assert_eq!(count("v_nested_folder").await, 3);
    assert_eq!(count("v_parted_glob").await, 2);
}

#[tokio::test]
async fn every_data_problem_is_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    lake(tmp.path());
    let broken = GOOD
        // missing column
        .replace("{name: city, dtype: string}", "{name: city, dtype: string}\n      - {name: acc_rate, dtype: float32}")
        // wrong dtype
        .replace("{name: conv_rate, dtype: float64}", "{name: conv_rate, dtype: float32}")
        // SQL that does not plan
        .replace("FROM source WHERE conv_rate IS NOT NULL", "FROM sauce WHERE conv_rate IS NOT NULL")
        // no files
        .replace("path: profiles,", "path: profile_typo/,")
        // a timestamp column that does not exist
        .replace("path: zones/z.csv, format: csv, timestamp_field: event_timestamp", "path: zones/z.csv, format: csv, timestamp_field: event_time")
        // a file that is not parquet
        + "  - {name: broken_view, entities: [driver], source: broken_src, features: [{name: x, dtype: int64}]}\n";
    let broken = broken.replace(
        "feature_views:",
        "  - {name: broken_src, path: broken/, format: parquet, timestamp_field: ts}\nfeature_views:",
    );
    let (_, found) = problems(tmp.path(), &broken).await;

    let missing = expect(&found, "driver_stats", "feature column 'acc_rate' is not in the source");
    assert!(missing.hint.as_deref().unwrap().contains("conv_rate (Float64)"), "{missing}");
    assert_eq!(missing.origin.as_ref().unwrap().file, "defs.yaml");
    let wrong = expect(&found, "driver_stats", "'conv_rate' is declared float32 but the column is Float64");
    assert!(wrong.hint.as_deref().unwrap().contains("declare it as float64"), "{wrong}");
    let sql = expect(&found, "derived", "the SQL does not plan");
    assert!(sql.message.contains("sauce"), "{sql}");
    assert_eq!(sql.field.as_deref(), Some("transform"));
    let none = expect(&found, "profiles", "no .json file under");
    assert_eq!(none.field.as_deref(), Some("path"));
    let ts = expect(&found, "zones", "column 'event_time' is not in the data");
    assert!(ts.hint.as_deref().unwrap().contains("event_timestamp"), "{ts}");
    expect(&found, "broken_src", "cannot read");
    assert_eq!(found.len(), 6, "{found:#?}");
}

#[tokio::test]
async fn transform_output_is_checked_for_keys_timestamps_and_runtime_failures() {
    let tmp = tempfile::tempdir().unwrap();
    lake(tmp.path());
    let yaml = r#"
entities:
  - {name: driver, join_keys: [{name: driver_id, dtype: int64}]}
sources:
  - {name: stats, path: "stats/*.parquet", format: parquet, timestamp_field: event_timestamp}
  - {name: profiles, path: profiles/, format: json, timestamp_field: ts}
feature_views:
  - name: no_key
    entities: [driver]
    source: stats
    features: [{name: conv_rate, dtype: float64}]
    transform: SELECT event_timestamp, conv_rate FROM source
  - name: int_time
    entities: [driver]
    source: stats
    features: [{name: conv_rate, dtype: float64}]
    transform: SELECT driver_id, 5 AS event_timestamp, conv_rate FROM source
  - name: fails_on_data
    entities: [driver]
    source: stats
    features: [{name: n, dtype: int64}]
    transform: SELECT driver_id, event_timestamp, CAST(city AS BIGINT) AS n FROM source
"#;
    let (_, found) = problems(tmp.path(), yaml).await;
    expect(&found, "no_key", "join key column 'driver_id' is not in the transform's output");
    let int_time = expect(&found, "int_time", "is Int64, not a timestamp");
    assert!(int_time.hint.as_deref().unwrap().contains("to_timestamp_seconds"));
    expect(&found, "fails_on_data", "reading the first 100 rows failed");
    assert_eq!(found.len(), 3, "{found:#?}");
}
