//! Benchmark workload for the point-in-time join (see BENCHMARKS.md).
//!
//! `cargo run --release -p quiver-offline --example pit_bench -- DIR [SPINE_ROWS] [SCALE]`
//!
//! Writes two feature sources and a spine under DIR (once; reused when present), applies
//! two views, materializes them into Delta tables, and builds the training set, printing
//! one JSON line of timings and the process's peak memory. SCALE multiplies the source row
//! counts (1.0: 7.3 M rows over 10 k entities with ttl 2h, and 3 M rows over 50 k entities
//! with ttl 2d).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program: it stops loudly on any failure

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Float32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use quiver_core::definitions::FeatureRef;
use quiver_core::registry::Registry;
use quiver_core::repo::parse_documents;
use quiver_core::storage::resolve_location;
use quiver_offline::lake::Lake;
use quiver_offline::materialize::{Materializer, NoProgress, Span};
use quiver_offline::session::{SessionOverrides, offline_session};
use quiver_offline::store::OfflineStore;
use quiver_offline::training::{TrainingSetRequest, build};
use url::Url;

const BASE_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const DAYS: i64 = 30;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn writer(path: &Path, schema: Arc<Schema>) -> ArrowWriter<std::fs::File> {
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("create the folder");
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    ArrowWriter::try_new(std::fs::File::create(path).expect("create the file"), schema, Some(props))
        .expect("a writer")
}

/// A source of `rows` rows over `entities` keys, event times over 30 days at whole seconds.
fn write_source(path: &Path, key: &str, rows: u64, entities: u64, seed: u64) {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new(key, DataType::Int64, false),
        Field::new("event_timestamp", ts.clone(), false),
        Field::new("created", ts, false),
        Field::new("f1", DataType::Float32, true),
        Field::new("f2", DataType::Float32, true),
        Field::new("f3", DataType::Int64, true),
    ]));
    let mut w = writer(path, schema.clone());
    let mut rng = Rng(seed);
    let span_s = (DAYS * 86_400) as u64;
    let mut done = 0;
    while done < rows {
        let n = 65_536.min(rows - done) as usize;
        let mut k = Vec::with_capacity(n);
        let mut t = Vec::with_capacity(n);
        let mut c = Vec::with_capacity(n);
        let mut f1 = Vec::with_capacity(n);
        let mut f2 = Vec::with_capacity(n);
        let mut f3 = Vec::with_capacity(n);
        for _ in 0..n {
            let r = rng.next();
            k.push((r % entities) as i64);
            let e = BASE_US + ((rng.next() % span_s) as i64) * 1_000_000;
            t.push(e);
            c.push(e + (rng.next() % 600) as i64 * 1_000_000);
            let v = rng.next();
            f1.push((v % 1000) as f32 / 1000.0);
            f2.push(((v >> 20) % 1000) as f32 / 10.0);
            f3.push(((v >> 40) % 100) as i64);
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(k)),
                Arc::new(TimestampMicrosecondArray::from(t).with_timezone("UTC")),
                Arc::new(TimestampMicrosecondArray::from(c).with_timezone("UTC")),
                Arc::new(Float32Array::from(f1)),
                Arc::new(Float32Array::from(f2)),
                Arc::new(Int64Array::from(f3)),
            ],
        )
        .expect("a batch");
        w.write(&batch).expect("write");
        done += n as u64;
    }
    w.close().expect("close");
}

fn write_spine(path: &Path, rows: u64, a_entities: u64, b_entities: u64) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a_id", DataType::Int64, false),
        Field::new("b_id", DataType::Int64, false),
        Field::new("event_timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("label", DataType::Int64, false),
    ]));
    let mut w = writer(path, schema.clone());
    let mut rng = Rng(7);
    let span_us = (DAYS * 86_400 * 1_000_000) as u64;
    let mut done = 0;
    while done < rows {
        let n = 65_536.min(rows - done) as usize;
        let (mut a, mut b, mut t, mut l) = (vec![], vec![], vec![], vec![]);
        for i in 0..n {
            a.push((rng.next() % a_entities) as i64);
            b.push((rng.next() % b_entities) as i64);
            t.push(BASE_US + (rng.next() % span_us) as i64);
            l.push((done as usize + i) as i64);
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(a)),
                Arc::new(Int64Array::from(b)),
                Arc::new(TimestampMicrosecondArray::from(t).with_timezone("UTC")),
                Arc::new(Int64Array::from(l)),
            ],
        )
        .expect("a batch");
        w.write(&batch).expect("write");
        done += n as u64;
    }
    w.close().expect("close");
}

const DEFS: &str = "
entities:
  - {name: a, join_keys: [{name: a_id, dtype: int64}]}
  - {name: b, join_keys: [{name: b_id, dtype: int64}]}
sources:
  - {name: stats_a_src, path: stats_a/, format: parquet, timestamp_field: event_timestamp, created_timestamp_field: created}
  - {name: stats_b_src, path: stats_b/, format: parquet, timestamp_field: event_timestamp, created_timestamp_field: created}
feature_views:
  - name: stats_a
    entities: [a]
    source: stats_a_src
    ttl: 2h
    features: [{name: f1, dtype: float32}, {name: f2, dtype: float32}, {name: f3, dtype: int64}]
  - name: stats_b
    entities: [b]
    source: stats_b_src
    ttl: 2d
    features: [{name: f1, dtype: float32}, {name: f2, dtype: float32}, {name: f3, dtype: int64}]
";

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "/tmp/quiver-pit-bench".into()));
    let spine_rows: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let scale: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let memory: usize = std::env::var("QUIVER_MEMORY_LIMIT")
        .ok()
        .and_then(|s| quiver_offline::session::parse_size(&s).ok())
        .unwrap_or(1 << 30);
    let (a_rows, b_rows) = ((7_300_000.0 * scale) as u64, (3_000_000.0 * scale) as u64);
    let lake = dir.join("lake");
    let t0 = Instant::now();
    if !lake.join("stats_a/part-0.parquet").exists() {
        write_source(&lake.join("stats_a/part-0.parquet"), "a_id", a_rows, 10_000, 1);
        write_source(&lake.join("stats_b/part-0.parquet"), "b_id", b_rows, 50_000, 2);
    }
    let spine = dir.join(format!("spine-{spine_rows}.parquet"));
    if !spine.exists() {
        write_spine(&spine, spine_rows, 10_000, 50_000);
    }
    let generate_s = t0.elapsed().as_secs_f64();

    let loaded = parse_documents(&[("bench.yaml".into(), DEFS.into())]);
    assert!(loaded.problems.is_empty(), "{}", loaded.problems);
    let registry = Registry::open(&resolve_location("registry/", &dir).expect("registry URL"), "bench")
        .expect("registry");
    let head = registry.head_version().await.expect("registry head");
    let _ = registry.apply(&loaded.definitions, head, "bench").await.expect("apply");
    let snapshot = registry.head().await.expect("head").expect("a version");
    let ctx = offline_session(memory, &SessionOverrides::from_vars(std::env::vars())).expect("session");
    let lake = Lake::with_session(Url::from_directory_path(&lake).expect("lake URL"), ctx.clone());
    let store = OfflineStore::new(Url::from_directory_path(dir.join("offline")).expect("store URL"));

    let t1 = Instant::now();
    let materialized = store.latest_version("stats_a").await.expect("store").is_some();
    if !materialized {
        let m = Materializer::new(lake.clone(), store.clone(), registry).expect("state store");
        let start = chrono::DateTime::from_timestamp_micros(BASE_US).expect("time");
        let reports = m
            .run(Span::Window { start, end: start + chrono::Duration::days(DAYS) }, &[], &NoProgress)
            .await
            .expect("materialize");
        for r in reports {
            assert!(r.error.is_none(), "{r:?}");
        }
    }
    let materialize_s = t1.elapsed().as_secs_f64();

    let features: Vec<FeatureRef> =
        ["stats_a:f1", "stats_a:f2", "stats_a:f3", "stats_b:f1", "stats_b:f2", "stats_b:f3"]
            .iter()
            .map(|r| FeatureRef::parse(r).expect("a reference"))
            .collect();
    let request = TrainingSetRequest {
        overwrite: true,
        spine,
        out: dir.join("out_quiver.parquet"),
        features,
        feature_service: None,
        full_feature_names: true,
        timestamp_column: "event_timestamp".into(),
        table_versions: Default::default(),
    };
    let t2 = Instant::now();
    let manifest = build(&ctx, &snapshot, &store, &request).await.expect("training set");
    let join_s = t2.elapsed().as_secs_f64();
    println!(
        "{{\"spine_rows\": {}, \"a_rows\": {a_rows}, \"b_rows\": {b_rows}, \"generate_s\": {generate_s:.2}, \"materialize_s\": {materialize_s:.2}, \"materialized_now\": {}, \"historical_s\": {join_s:.2}, \"rows_per_s\": {:.0}, \"peak_rss_mib\": {:.0}, \"memory_limit_mib\": {}}}",
        manifest.output_rows,
        !materialized,
        manifest.output_rows as f64 / join_s,
        peak_rss_mib(),
        memory >> 20
    );
}
