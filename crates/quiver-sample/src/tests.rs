//! Unit tests of the lake generator: determinism, counts, schemas, read-back through
//! Arrow's own Parquet, CSV and JSON readers, and the deliberate quirks (ties, nulls,
//! cancelled trips) the rest of Quiver is tested against.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampSecondType};
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::tables::{CITIES, EMBEDDING_DIM, EMBEDDING_MODELS, VEHICLE_TYPES, ZONES};

fn small_spec() -> SampleSpec {
    SampleSpec { rows: 3_000, drivers: 20, customers: 50, days: 2, seed: 7, ..SampleSpec::default() }
}

/// Small enough that every table of `small_spec` spans several batches and (for the big
/// ones) several files.
fn tiny_layout() -> Layout {
    Layout { batch_rows: 128, rows_per_file: 700, row_group_rows: 300 }
}

fn lake_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn generate(dir: &Path, spec: &SampleSpec, layout: &Layout) -> LakeSummary {
    generate_lake_with(dir, spec, layout).unwrap()
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    builder.build().unwrap().collect::<Result<Vec<_>, _>>().unwrap()
}

/// All rows of a Parquet table, in file order, as one batch.
fn read_parquet_table(lake: &Path, summary: &LakeSummary, table: Table) -> RecordBatch {
    let prefix = format!("{}/", table.dir_name());
    let mut batches = Vec::new();
    for (file, _) in summary.files.iter().filter(|(f, _)| f.starts_with(&prefix)) {
        batches.extend(read_parquet(&lake.join(file)));
    }
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn files_of(summary: &LakeSummary, table: Table) -> Vec<(String, u64)> {
    let prefix = format!("{}/", table.dir_name());
    summary.files.iter().filter(|(f, _)| f.starts_with(&prefix)).cloned().collect()
}

fn window_micros(spec: &SampleSpec) -> (i64, i64) {
    let (start, end) = spec.window().unwrap();
    (start.timestamp_micros(), end.timestamp_micros())
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has an unexpected type"))
}

#[test]
fn default_spec_is_the_quickstart_lake() {
    let spec = SampleSpec::default();
    assert_eq!((spec.rows, spec.drivers, spec.customers, spec.days, spec.seed), (20_000, 100, 500, 7, 42));
    assert_eq!(spec.start.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    let rows: Vec<u64> = Table::ALL.iter().map(|t| spec.rows_of(*t)).collect();
    assert_eq!(rows, vec![20_000, 5_000, 5_000, 1_000, 10_000, 2_000, 400]);
}

#[test]
fn same_spec_gives_identical_bytes() {
    let (a, b, c) = (lake_dir(), lake_dir(), lake_dir());
    let spec = small_spec();
    let first = generate(a.path(), &spec, &Layout::default());
    let second = generate(b.path(), &spec, &Layout::default());
    assert_eq!(first, second);
    let (first_files, second_files) = (files_under(a.path()), files_under(b.path()));
    assert_eq!(first_files.keys().collect::<Vec<_>>(), second_files.keys().collect::<Vec<_>>());
    for (path, bytes) in &first_files {
        assert!(bytes == &second_files[path], "{path} differs between two runs");
    }

    // Regenerating in place gives the same bytes too; another seed gives other data.
    generate(a.path(), &spec, &Layout::default());
    assert_eq!(files_under(a.path()), first_files);
    generate(c.path(), &SampleSpec { seed: 8, ..spec }, &Layout::default());
    let other = files_under(c.path());
    for path in first_files.keys() {
        assert_ne!(first_files[path], other[path], "{path} ignores the seed");
    }
}

#[test]
fn layout_does_not_change_the_rows() {
    let (a, b) = (lake_dir(), lake_dir());
    let spec = small_spec();
    let whole = generate(a.path(), &spec, &Layout::default());
    let split = generate(b.path(), &spec, &tiny_layout());
    assert_eq!(files_of(&whole, Table::DriverStats).len(), 1);
    assert_eq!(files_of(&split, Table::DriverStats).len(), 5);
    for table in Table::ALL {
        match table.format() {
            FileFormat::Parquet => assert_eq!(
                read_parquet_table(a.path(), &whole, table),
                read_parquet_table(b.path(), &split, table),
                "{table:?}"
            ),
            FileFormat::Csv | FileFormat::Json => {
                let lines = |dir: &Path, summary: &LakeSummary| {
                    let mut lines = Vec::new();
                    for (file, _) in files_of(summary, table) {
                        let text = fs::read_to_string(dir.join(file)).unwrap();
                        let skip = usize::from(table.format() == FileFormat::Csv);
                        lines.extend(text.lines().skip(skip).map(str::to_owned));
                    }
                    lines
                };
                assert_eq!(lines(a.path(), &whole), lines(b.path(), &split), "{table:?}");
            }
        }
    }
}

#[test]
fn row_counts_match_the_spec_and_the_summary() {
    let dir = lake_dir();
    let spec = small_spec();
    let summary = generate(dir.path(), &spec, &tiny_layout());

    // The summary lists exactly the files on disk.
    let on_disk: Vec<String> = files_under(dir.path()).into_keys().collect();
    let mut listed: Vec<String> = summary.files.iter().map(|(f, _)| f.clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);

    let expected = [3_000, 750, 750, 150, 1_500, 300, 60];
    for (table, rows) in Table::ALL.into_iter().zip(expected) {
        assert_eq!(spec.rows_of(table), rows, "{table:?}");
        assert_eq!(summary.rows(table), rows, "{table:?}");
    }
    assert_eq!(summary.total_rows(), expected.iter().sum::<u64>());
    assert_eq!(summary.window_start, spec.start);
    assert_eq!(summary.window_end, spec.start + chrono::TimeDelta::days(2));

    for (file, rows) in &summary.files {
        let path = dir.path().join(file);
        let actual = match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => read_parquet(&path).iter().map(|b| b.num_rows() as u64).sum(),
            Some("csv") => fs::read_to_string(&path).unwrap().lines().count() as u64 - 1,
            Some("json") => fs::read_to_string(&path).unwrap().lines().count() as u64,
            other => panic!("unexpected file {file} ({other:?})"),
        };
        assert_eq!(actual, *rows, "{file}");
        assert!(*rows <= 700, "{file} exceeds rows_per_file");
    }
    assert!(files_of(&summary, Table::DriverStats)[0].0.ends_with("driver_stats/part-00000.parquet"));
}

#[test]
fn parquet_tables_have_the_documented_schemas() {
    let dir = lake_dir();
    let summary = generate(dir.path(), &small_spec(), &Layout::default());
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let expected: [(Table, Vec<(&str, DataType)>); 5] = [
        (
            Table::DriverStats,
            vec![
                ("driver_id", DataType::Int64),
                ("event_timestamp", ts.clone()),
                ("created", ts.clone()),
                ("conv_rate", DataType::Float32),
                ("acc_rate", DataType::Float32),
                ("avg_daily_trips", DataType::Int64),
            ],
        ),
        (
            Table::CustomerProfile,
            vec![
                ("customer_id", DataType::Int64),
                ("event_timestamp", ts.clone()),
                ("created", ts.clone()),
                ("current_balance", DataType::Float32),
                ("avg_passenger_count", DataType::Float32),
                ("lifetime_trip_count", DataType::Int64),
            ],
        ),
        (
            Table::DriverCityStats,
            vec![
                ("driver_id", DataType::Int64),
                ("city", DataType::Utf8),
                ("event_timestamp", ts.clone()),
                ("trips_in_city", DataType::Int64),
                ("avg_fare_in_city", DataType::Float64),
            ],
        ),
        (
            Table::CustomerEmbeddings,
            vec![
                ("customer_id", DataType::Int64),
                ("event_timestamp", ts.clone()),
                ("embedding", DataType::List(Arc::new(Field::new("item", DataType::Float32, true)))),
                ("embedding_model", DataType::Utf8),
            ],
        ),
        (
            Table::Trips,
            vec![
                ("trip_id", DataType::Int64),
                ("driver_id", DataType::Int64),
                ("customer_id", DataType::Int64),
                ("event_timestamp", ts.clone()),
                ("distance_km", DataType::Float64),
                ("fare", DataType::Float64),
                ("duration_min", DataType::Float64),
            ],
        ),
    ];
    for (table, columns) in expected {
        let batch = read_parquet_table(dir.path(), &summary, table);
        let schema = Schema::new(
            columns
                .into_iter()
                .map(|(name, data_type)| Field::new(name, data_type, true))
                .collect::<Vec<_>>(),
        );
        assert_eq!(batch.schema().as_ref(), &schema, "{table:?}");
    }
}

#[test]
fn event_timestamps_stay_inside_the_window() {
    let dir = lake_dir();
    let spec = small_spec();
    let (start, end) = window_micros(&spec);
    let summary = generate(dir.path(), &spec, &tiny_layout());
    for table in Table::ALL.into_iter().filter(|t| t.format() == FileFormat::Parquet) {
        let batch = read_parquet_table(dir.path(), &summary, table);
        let events: &TimestampMicrosecondArray = column(&batch, "event_timestamp");
        assert_eq!(events.null_count(), 0);
        let values = events.values();
        assert!(values.iter().all(|t| (start..end).contains(t)), "{table:?}");
        assert!(values.iter().all(|t| t % 1_000_000 == 0), "{table:?}: not whole seconds");
        // Spread over the whole window, not bunched at one end.
        let (min, max) = (values.iter().min().unwrap(), values.iter().max().unwrap());
        assert!(min - start < (end - start) / 10 && end - max < (end - start) / 10, "{table:?}");
        if let Some(created) = batch.column_by_name("created") {
            let created = created.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            assert_eq!(created.null_count(), 0);
            for (c, e) in created.values().iter().zip(values.iter()) {
                assert!(c >= e, "{table:?}: created {c} before event {e}");
            }
        }
    }
}

#[test]
fn driver_stats_holds_ties_and_nulls() {
    let dir = lake_dir();
    let spec = small_spec();
    let summary = generate(dir.path(), &spec, &tiny_layout());
    let batch = read_parquet_table(dir.path(), &summary, Table::DriverStats);
    let drivers: &Int64Array = column(&batch, "driver_id");
    let events: &TimestampMicrosecondArray = column(&batch, "event_timestamp");
    let created: &TimestampMicrosecondArray = column(&batch, "created");

    let mut groups: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    for i in 0..batch.num_rows() {
        groups.entry((drivers.value(i), events.value(i))).or_default().push(created.value(i));
    }
    let ties: Vec<_> = groups.values().filter(|c| c.len() > 1).collect();
    assert!(ties.len() >= 20, "only {} tied keys", ties.len());
    for created in ties {
        let distinct: HashSet<_> = created.iter().collect();
        assert_eq!(distinct.len(), created.len(), "a tie with equal created timestamps");
    }

    for name in ["conv_rate", "acc_rate", "avg_daily_trips"] {
        let nulls = batch.column_by_name(name).unwrap().null_count();
        assert!(nulls > 0 && nulls * 100 < batch.num_rows() * 3, "{name}: {nulls} nulls");
    }
    let conv: &Float32Array = column(&batch, "conv_rate");
    assert!(conv.iter().flatten().all(|v| (0.0..=1.0).contains(&v)));
    let ids = 1001..=1000 + spec.drivers as i64;
    assert!(drivers.values().iter().all(|d| ids.contains(d)));
    let seen: HashSet<_> = drivers.values().iter().collect();
    assert_eq!(seen.len() as u64, spec.drivers, "every driver appears");
}

#[test]
fn other_parquet_tables_hold_valid_keys_and_values() {
    let dir = lake_dir();
    let spec = small_spec();
    let summary = generate(dir.path(), &spec, &tiny_layout());
    let customer_ids = 2001..=2000 + spec.customers as i64;
    let driver_ids = 1001..=1000 + spec.drivers as i64;

    let profile = read_parquet_table(dir.path(), &summary, Table::CustomerProfile);
    let customers: &Int64Array = column(&profile, "customer_id");
    assert!(customers.values().iter().all(|c| customer_ids.contains(c)));
    assert_eq!(profile.columns().iter().map(|c| c.null_count()).sum::<usize>(), 0);

    let city_stats = read_parquet_table(dir.path(), &summary, Table::DriverCityStats);
    let cities: &StringArray = column(&city_stats, "city");
    let seen: HashSet<_> = cities.iter().flatten().collect();
    assert!(seen.iter().all(|c| CITIES.contains(c)) && seen.len() > 1);
    let drivers: &Int64Array = column(&city_stats, "driver_id");
    assert!(drivers.values().iter().all(|d| driver_ids.contains(d)));

    let embeddings = read_parquet_table(dir.path(), &summary, Table::CustomerEmbeddings);
    let lists = embeddings.column_by_name("embedding").unwrap().as_list::<i32>();
    assert_eq!(lists.null_count(), 0);
    for i in 0..lists.len() {
        let values = lists.value(i);
        assert_eq!(values.len(), EMBEDDING_DIM);
        assert_eq!(values.null_count(), 0);
    }
    let models: &StringArray = column(&embeddings, "embedding_model");
    let seen: HashSet<_> = models.iter().flatten().collect();
    assert_eq!(seen, EMBEDDING_MODELS.into_iter().collect());

    let trips = read_parquet_table(dir.path(), &summary, Table::Trips);
    let ids: &Int64Array = column(&trips, "trip_id");
    assert!(ids.values().iter().copied().eq(1..=1_500));
    let distance: &Float64Array = column(&trips, "distance_km");
    let duration: &Float64Array = column(&trips, "duration_min");
    let fare: &Float64Array = column(&trips, "fare");
    let cancelled = distance.values().iter().filter(|d| **d == 0.0).count();
    assert!(cancelled > 0, "no cancelled trip to exercise NULLIF");
    for i in 0..trips.num_rows() {
        assert_eq!(distance.value(i) == 0.0, duration.value(i) == 0.0);
        assert!(fare.value(i) >= 2.5);
    }
}

#[test]
fn csv_reads_back_with_the_expected_types() {
    let dir = lake_dir();
    let spec = small_spec();
    let (start, end) = spec.window().unwrap();
    let summary = generate(dir.path(), &spec, &tiny_layout());
    let mut rows = 0;
    for (file, expected_rows) in files_of(&summary, Table::ZoneDemand) {
        let mut reader = File::open(dir.path().join(&file)).unwrap();
        let format = arrow::csv::reader::Format::default().with_header(true);
        let (schema, _) = format.infer_schema(&mut reader, None).unwrap();
        let types: Vec<_> =
            schema.fields().iter().map(|f| (f.name().as_str(), f.data_type().clone())).collect();
        assert_eq!(
            types,
            vec![
                ("zone_id", DataType::Utf8),
                ("event_timestamp", DataType::Timestamp(TimeUnit::Second, None)),
                ("open_requests", DataType::Int64),
                ("surge_multiplier", DataType::Float64),
            ],
            "{file}"
        );
        reader.rewind().unwrap();
        let csv = arrow::csv::ReaderBuilder::new(Arc::new(schema)).with_header(true).build(reader).unwrap();
        let batches = csv.collect::<Result<Vec<_>, _>>().unwrap();
        let batch = concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(batch.num_rows() as u64, expected_rows);
        rows += expected_rows;

        let times = batch.column(1).as_primitive::<TimestampSecondType>();
        let window = start.timestamp()..end.timestamp();
        assert!(times.values().iter().all(|t| window.contains(t)));
        let zones: &StringArray = column(&batch, "zone_id");
        for zone in zones.iter().flatten() {
            let number: u64 = zone.strip_prefix("zone_").unwrap().parse().unwrap();
            assert!(zone.len() == 8 && number < ZONES, "{zone}");
        }
        let surge: &Float64Array = column(&batch, "surge_multiplier");
        assert!(surge.values().iter().all(|s| (1.0..=3.0).contains(s)));
    }
    assert_eq!(rows, spec.rows_of(Table::ZoneDemand));
}

#[test]
fn json_reads_back_with_the_expected_types() {
    let dir = lake_dir();
    let spec = small_spec();
    let (start, end) = spec.window().unwrap();
    let summary = generate(dir.path(), &spec, &Layout::default());
    let files = files_of(&summary, Table::DriverProfile);
    assert_eq!(files.len(), 1);
    let (file, expected_rows) = &files[0];
    assert!(file.ends_with(".json"));
    let mut reader = BufReader::new(File::open(dir.path().join(file)).unwrap());
    let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(&mut reader, None).unwrap();
    // Arrow's JSON inference orders fields by name, whatever the order in the file.
    let mut types: Vec<_> =
        schema.fields().iter().map(|f| (f.name().as_str(), f.data_type().clone())).collect();
    types.sort_by_key(|(name, _)| *name);
    assert_eq!(
        types,
        vec![
            ("driver_id", DataType::Int64),
            ("event_timestamp", DataType::Utf8),
            ("rating", DataType::Float64),
            ("vehicle_type", DataType::Utf8),
            ("years_active", DataType::Int64),
        ]
    );
    let json = arrow::json::ReaderBuilder::new(Arc::new(schema)).build(reader).unwrap();
    let batches = json.collect::<Result<Vec<_>, _>>().unwrap();
    let batch = concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(batch.num_rows() as u64, *expected_rows);

    let times: &StringArray = column(&batch, "event_timestamp");
    for text in times.iter().flatten() {
        assert!(text.ends_with('Z'), "{text}");
        let time: DateTime<Utc> = DateTime::parse_from_rfc3339(text).unwrap().into();
        assert!(time >= start && time < end, "{text}");
    }
    let vehicles: &StringArray = column(&batch, "vehicle_type");
    assert!(vehicles.iter().flatten().all(|v| VEHICLE_TYPES.contains(&v)));
    let ratings: &Float64Array = column(&batch, "rating");
    assert!(ratings.values().iter().all(|r| (3.0..=5.0).contains(r)));
    let drivers: &Int64Array = column(&batch, "driver_id");
    assert!(drivers.values().iter().all(|d| (1001..=1020).contains(d)));
}

#[test]
fn invalid_specs_are_rejected_before_writing() {
    let base = small_spec();
    let cases = [
        SampleSpec { rows: 0, ..base.clone() },
        SampleSpec { drivers: 0, ..base.clone() },
        SampleSpec { customers: 0, ..base.clone() },
        SampleSpec { drivers: u64::MAX, ..base.clone() },
        SampleSpec { days: 0, ..base.clone() },
        SampleSpec { start: base.start + chrono::TimeDelta::milliseconds(1), ..base.clone() },
        SampleSpec { days: u32::MAX, ..base.clone() },
        SampleSpec { start: DateTime::<Utc>::MIN_UTC, ..base.clone() },
    ];
    for spec in cases {
        let dir = lake_dir();
        let lake = dir.path().join("lake");
        match generate_lake(&lake, &spec) {
            Err(Error::InvalidSpec { reason }) => assert!(!reason.is_empty()),
            other => panic!("{spec:?} gave {other:?}"),
        }
        assert!(!lake.exists(), "{spec:?} touched the file system");
    }
    assert!(base.validate().is_ok());
}

#[test]
fn regenerating_removes_stale_part_files_only() {
    let dir = lake_dir();
    let big = generate(dir.path(), &small_spec(), &tiny_layout());
    assert_eq!(files_of(&big, Table::DriverStats).len(), 5);
    let notes = dir.path().join("driver_stats").join("README.txt");
    fs::write(&notes, "kept").unwrap();
    fs::write(dir.path().join("driver_stats").join(".part-00009.parquet.tmp"), "junk").unwrap();

    let small = generate(dir.path(), &SampleSpec { rows: 1_000, ..small_spec() }, &tiny_layout());
    assert_eq!(files_of(&small, Table::DriverStats).len(), 2);
    let mut on_disk: Vec<String> = files_under(dir.path()).into_keys().collect();
    on_disk.retain(|f| !f.ends_with("README.txt"));
    let mut listed: Vec<String> = small.files.iter().map(|(f, _)| f.clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(fs::read_to_string(&notes).unwrap(), "kept");
}

/// Pretty-prints `batch` and compares it line by line, showing the whole table on failure.
fn assert_table_eq(expected: &[&str], batch: &RecordBatch) {
    let actual = arrow::util::pretty::pretty_format_batches(std::slice::from_ref(batch)).unwrap().to_string();
    let actual: Vec<&str> = actual.lines().collect();
    assert_eq!(
        expected,
        actual,
        "\n\nexpected:\n{}\n\nactual:\n{}\n\n",
        expected.join("\n"),
        actual.join("\n")
    );
}

/// Pins the generated values: a change here changes every lake users, tests and
/// benchmarks rely on, and must be deliberate.
#[test]
fn golden_rows_do_not_drift() {
    let dir = lake_dir();
    let spec = SampleSpec { rows: 100, ..SampleSpec::default() };
    let summary = generate(dir.path(), &spec, &Layout::default());
    let head = |table: Table| read_parquet_table(dir.path(), &summary, table).slice(0, 3);

    assert_table_eq(
        &[
            "+-----------+----------------------+-----------------------------+-----------+----------+-----------------+",
            "| driver_id | event_timestamp      | created                     | conv_rate | acc_rate | avg_daily_trips |",
            "+-----------+----------------------+-----------------------------+-----------+----------+-----------------+",
            "| 1039      | 2026-01-01T01:11:08Z | 2026-01-01T01:12:20.195924Z | 0.1687    | 0.6156   | 12              |",
            "| 1053      | 2026-01-01T02:12:24Z | 2026-01-01T02:12:49.960008Z | 0.51      | 0.6136   | 23              |",
            "| 1056      | 2026-01-01T03:30:27Z | 2026-01-01T03:30:30.888630Z | 0.5048    | 0.6584   | 19              |",
            "+-----------+----------------------+-----------------------------+-----------+----------+-----------------+",
        ],
        &head(Table::DriverStats),
    );
    assert_table_eq(
        &[
            "+-------------+----------------------+-----------------------------+-----------------+---------------------+---------------------+",
            "| customer_id | event_timestamp      | created                     | current_balance | avg_passenger_count | lifetime_trip_count |",
            "+-------------+----------------------+-----------------------------+-----------------+---------------------+---------------------+",
            "| 2197        | 2026-01-01T05:41:17Z | 2026-01-01T05:43:52.180020Z | 474.68          | 2.3                 | 466                 |",
            "| 2068        | 2026-01-01T10:52:10Z | 2026-01-01T10:54:59.086035Z | 319.46          | 1.62                | 135                 |",
            "| 2296        | 2026-01-01T14:04:29Z | 2026-01-01T14:09:14.130605Z | 345.63          | 1.87                | 7                   |",
            "+-------------+----------------------+-----------------------------+-----------------+---------------------+---------------------+",
        ],
        &head(Table::CustomerProfile),
    );
    assert_table_eq(
        &[
            "+-----------+--------+----------------------+---------------+------------------+",
            "| driver_id | city   | event_timestamp      | trips_in_city | avg_fare_in_city |",
            "+-----------+--------+----------------------+---------------+------------------+",
            "| 1065      | lisbon | 2026-01-01T06:24:54Z | 3             | 10.68            |",
            "| 1057      | lisbon | 2026-01-01T10:32:36Z | 11            | 13.16            |",
            "| 1025      | lisbon | 2026-01-01T17:42:18Z | 14            | 10.41            |",
            "+-----------+--------+----------------------+---------------+------------------+",
        ],
        &head(Table::DriverCityStats),
    );
    assert_table_eq(
        &[
            "+-------------+----------------------+-----------------------------------------------------------------------+-----------------+",
            "| customer_id | event_timestamp      | embedding                                                             | embedding_model |",
            "+-------------+----------------------+-----------------------------------------------------------------------+-----------------+",
            "| 2405        | 2026-01-01T17:18:03Z | [-0.002, -0.6907, 0.7705, 0.1864, 0.0019, -0.6487, 0.6244, -0.5625]   | rides-emb-v1    |",
            "| 2401        | 2026-01-03T15:49:52Z | [-0.4165, -0.7428, -0.1278, 0.5948, -0.752, -0.4169, 0.0124, 0.4889]  | rides-emb-v1    |",
            "| 2072        | 2026-01-04T19:58:02Z | [-0.6307, -0.1712, -0.5556, 0.836, -0.2675, -0.5128, -0.1058, 0.6421] | rides-emb-v2    |",
            "+-------------+----------------------+-----------------------------------------------------------------------+-----------------+",
        ],
        &head(Table::CustomerEmbeddings),
    );
    assert_table_eq(
        &[
            "+---------+-----------+-------------+----------------------+-------------+-------+--------------+",
            "| trip_id | driver_id | customer_id | event_timestamp      | distance_km | fare  | duration_min |",
            "+---------+-----------+-------------+----------------------+-------------+-------+--------------+",
            "| 1       | 1022      | 2499        | 2026-01-01T01:04:21Z | 6.21        | 12.79 | 12.59        |",
            "| 2       | 1076      | 2187        | 2026-01-01T04:32:03Z | 9.77        | 17.68 | 15.76        |",
            "| 3       | 1035      | 2410        | 2026-01-01T08:07:06Z | 38.58       | 68.08 | 84.85        |",
            "+---------+-----------+-------------+----------------------+-------------+-------+--------------+",
        ],
        &head(Table::Trips),
    );

    let head_lines = |table: Table, n: usize| {
        let text = fs::read_to_string(dir.path().join(&files_of(&summary, table)[0].0)).unwrap();
        text.lines().take(n).map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(
        head_lines(Table::ZoneDemand, 3),
        [
            "zone_id,event_timestamp,open_requests,surge_multiplier",
            "zone_049,2026-01-01 03:57:59,4,1.05",
            "zone_017,2026-01-01 17:22:41,72,1.41",
        ]
    );
    assert_eq!(
        head_lines(Table::DriverProfile, 2),
        [
            r#"{"driver_id":1073,"event_timestamp":"2026-01-02T22:04:13Z","vehicle_type":"electric","rating":4.51,"years_active":2}"#,
            r#"{"driver_id":1033,"event_timestamp":"2026-01-06T20:58:48Z","vehicle_type":"suv","rating":3.80,"years_active":3}"#,
        ]
    );
}
